/* Patronus dpdk-sys shim: see shim.h. */
#include "shim.h"

#include <string.h>

/* The engine finds an mbuf from its buffer by this distance (header plus a
 * 64-byte private area); a DPDK whose mbuf header differs needs a rebuild
 * of this shim and a look at patronus' buffer layout. */
_Static_assert(sizeof(struct rte_mbuf) == 128, "struct rte_mbuf is not 128 bytes");

uint16_t patronus_eth_rx_burst(uint16_t port_id, uint16_t queue_id,
                               struct rte_mbuf **rx_pkts, uint16_t nb_pkts) {
    return rte_eth_rx_burst(port_id, queue_id, rx_pkts, nb_pkts);
}

uint16_t patronus_eth_tx_burst(uint16_t port_id, uint16_t queue_id,
                               struct rte_mbuf **tx_pkts, uint16_t nb_pkts) {
    return rte_eth_tx_burst(port_id, queue_id, tx_pkts, nb_pkts);
}

struct rte_mbuf *patronus_pktmbuf_alloc(struct rte_mempool *mp) {
    return rte_pktmbuf_alloc(mp);
}

int patronus_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs,
                                unsigned int count) {
    return rte_pktmbuf_alloc_bulk(mp, mbufs, count);
}

void patronus_pktmbuf_free(struct rte_mbuf *m) { rte_pktmbuf_free(m); }

void *patronus_pktmbuf_data(struct rte_mbuf *m) { return rte_pktmbuf_mtod(m, void *); }

uint16_t patronus_pktmbuf_data_len(const struct rte_mbuf *m) { return m->data_len; }

uint32_t patronus_pktmbuf_pkt_len(const struct rte_mbuf *m) { return m->pkt_len; }

uint16_t patronus_pktmbuf_nb_segs(const struct rte_mbuf *m) { return m->nb_segs; }

uint16_t patronus_pktmbuf_tailroom(const struct rte_mbuf *m) { return rte_pktmbuf_tailroom(m); }

uint16_t patronus_pktmbuf_headroom(const struct rte_mbuf *m) { return rte_pktmbuf_headroom(m); }

void patronus_pktmbuf_set_len(struct rte_mbuf *m, uint16_t len) {
    m->data_len = len;
    m->pkt_len = len;
}

void patronus_pktmbuf_set_data_off(struct rte_mbuf *m, uint16_t off) { m->data_off = off; }

struct rte_mempool *patronus_pktmbuf_pool(const struct rte_mbuf *m) { return m->pool; }

void *patronus_pktmbuf_buf_addr(struct rte_mbuf *m) { return m->buf_addr; }

uint16_t patronus_pktmbuf_buf_len(const struct rte_mbuf *m) { return m->buf_len; }

uint32_t patronus_pktmbuf_read(const struct rte_mbuf *m, void *dst, uint32_t len) {
    uint32_t copied = 0;
    for (const struct rte_mbuf *s = m; s != NULL && copied < len; s = s->next) {
        uint32_t n = s->data_len;
        if (n > len - copied)
            n = len - copied;
        memcpy((char *)dst + copied, rte_pktmbuf_mtod(s, const char *), n);
        copied += n;
    }
    return copied;
}

unsigned patronus_ring_enqueue_burst(struct rte_ring *r, void *const *objs, unsigned n) {
    return rte_ring_enqueue_burst(r, objs, n, NULL);
}

unsigned patronus_ring_dequeue_burst(struct rte_ring *r, void **objs, unsigned n) {
    return rte_ring_dequeue_burst(r, objs, n, NULL);
}

unsigned patronus_ring_count(const struct rte_ring *r) { return rte_ring_count(r); }

int patronus_errno(void) { return rte_errno; }

unsigned patronus_lcore_id(void) { return rte_lcore_id(); }

unsigned patronus_socket_id(void) { return rte_socket_id(); }

uint64_t patronus_rss_hf_ip_tcp_udp(void) {
    return RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP;
}

unsigned patronus_mbuf_header_size(void) { return sizeof(struct rte_mbuf); }

unsigned patronus_pktmbuf_headroom_default(void) { return RTE_PKTMBUF_HEADROOM; }
