/* Patronus dpdk-sys shim: DPDK's static-inline functions and function-like
 * macros, as real symbols Rust can call. Everything here is a thin wrapper. */
#ifndef PATRONUS_DPDK_SHIM_H
#define PATRONUS_DPDK_SHIM_H

#include <stdint.h>
#include <rte_config.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#include <rte_version.h>

uint16_t patronus_eth_rx_burst(uint16_t port_id, uint16_t queue_id,
                               struct rte_mbuf **rx_pkts, uint16_t nb_pkts);
uint16_t patronus_eth_tx_burst(uint16_t port_id, uint16_t queue_id,
                               struct rte_mbuf **tx_pkts, uint16_t nb_pkts);

struct rte_mbuf *patronus_pktmbuf_alloc(struct rte_mempool *mp);
int patronus_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs,
                                unsigned int count);
void patronus_pktmbuf_free(struct rte_mbuf *m);

/* Address of the first data byte (rte_pktmbuf_mtod). */
void *patronus_pktmbuf_data(struct rte_mbuf *m);
/* Bytes in the first segment / in the whole chain. */
uint16_t patronus_pktmbuf_data_len(const struct rte_mbuf *m);
uint32_t patronus_pktmbuf_pkt_len(const struct rte_mbuf *m);
uint16_t patronus_pktmbuf_nb_segs(const struct rte_mbuf *m);
/* Free bytes after the data of the first segment. */
uint16_t patronus_pktmbuf_tailroom(const struct rte_mbuf *m);
uint16_t patronus_pktmbuf_headroom(const struct rte_mbuf *m);
/* Sets data_len and pkt_len of a single-segment mbuf (no checks). */
void patronus_pktmbuf_set_len(struct rte_mbuf *m, uint16_t len);
/* Sets data_off (offset of the data in the buffer) of a single-segment mbuf. */
void patronus_pktmbuf_set_data_off(struct rte_mbuf *m, uint16_t off);
/* The mempool an mbuf belongs to. */
struct rte_mempool *patronus_pktmbuf_pool(const struct rte_mbuf *m);
/* Start of the mbuf's buffer (buf_addr) and its size. */
void *patronus_pktmbuf_buf_addr(struct rte_mbuf *m);
uint16_t patronus_pktmbuf_buf_len(const struct rte_mbuf *m);
/* Copies the chain's bytes [0, len) into dst (multi-segment safe);
 * returns the bytes copied (min(len, pkt_len)). */
uint32_t patronus_pktmbuf_read(const struct rte_mbuf *m, void *dst, uint32_t len);

/* rte_ring bursts of object pointers (e.g. mbufs into the ring a net_ring
 * device receives from, out of the one it transmits to): objects moved. */
unsigned patronus_ring_enqueue_burst(struct rte_ring *r, void *const *objs, unsigned n);
unsigned patronus_ring_dequeue_burst(struct rte_ring *r, void **objs, unsigned n);
/* Objects in the ring. */
unsigned patronus_ring_count(const struct rte_ring *r);

int patronus_errno(void);
unsigned patronus_lcore_id(void);
unsigned patronus_socket_id(void);

/* RSS hash-function sets (function-like macros in rte_ethdev.h). */
uint64_t patronus_rss_hf_ip_tcp_udp(void);
/* Size of struct rte_mbuf (the header in front of every buffer). */
unsigned patronus_mbuf_header_size(void);
/* RTE_PKTMBUF_HEADROOM as built into this DPDK. */
unsigned patronus_pktmbuf_headroom_default(void);

/* Where the fields the per-packet path touches lie in struct rte_mbuf, so
 * Rust reads and writes them inline (bindgen keeps the struct opaque: its
 * cache-line markers and unions do not map to Rust). A call per field per
 * packet cost several percent of the engine's time. */
#include <stddef.h>
enum patronus_mbuf_layout {
    PATRONUS_MBUF_OFF_BUF_ADDR = offsetof(struct rte_mbuf, buf_addr),
    PATRONUS_MBUF_OFF_DATA_OFF = offsetof(struct rte_mbuf, data_off),
    PATRONUS_MBUF_OFF_NB_SEGS = offsetof(struct rte_mbuf, nb_segs),
    PATRONUS_MBUF_OFF_PKT_LEN = offsetof(struct rte_mbuf, pkt_len),
    PATRONUS_MBUF_OFF_DATA_LEN = offsetof(struct rte_mbuf, data_len),
    PATRONUS_MBUF_OFF_POOL = offsetof(struct rte_mbuf, pool),
    PATRONUS_MBUF_OFF_NEXT = offsetof(struct rte_mbuf, next),
};

#endif
