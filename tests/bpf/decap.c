// SPDX-License-Identifier: GPL-2.0
// IP-in-IP decapsulation at tc ingress, for the DSR backends of the LB
// end-to-end tests (tests/tests/lb_dsr.rs). A real backend decapsulates
// with the kernel's ipip module (tunl0), but this kernel is built without
// CONFIG_NET_IPIP, so this program does the same job: an IPv4 packet with
// protocol 4 (IP-in-IP) and a plain 20-byte outer header loses that outer
// header (bpf_skb_adjust_room at the MAC layer) and goes up the stack as
// the inner packet, which is addressed to the VIP the backend holds on lo.
// Everything else passes untouched.
//
// Build: clang -O2 -g -target bpf -c decap.c -o decap.o
// Load:  tc qdisc add dev IF clsact
//        tc filter add dev IF ingress bpf da obj decap.o sec tc

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

// Newer than the installed uapi header (kernel 6.3); the running kernel
// has it.
#ifndef BPF_F_ADJ_ROOM_DECAP_L3_IPV4
#define BPF_F_ADJ_ROOM_DECAP_L3_IPV4 (1ULL << 7)
#endif

SEC("tc")
int decap(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *outer = data + sizeof(*eth);
	struct iphdr *inner = (void *)(outer + 1);

	if ((void *)(inner + 1) > end)
		return TC_ACT_OK;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || outer->protocol != IPPROTO_IPIP)
		return TC_ACT_OK;
	// Outer options or a fragment: not what the engine sends; let the
	// stack drop it (it has no handler for protocol 4).
	if (outer->ihl != 5 || (outer->frag_off & bpf_htons(0x3fff)) != 0)
		return TC_ACT_OK;
	if (inner->version != 4)
		return TC_ACT_SHOT;
	if (bpf_skb_adjust_room(skb, -(int)sizeof(struct iphdr), BPF_ADJ_ROOM_MAC,
				BPF_F_ADJ_ROOM_DECAP_L3_IPV4) != 0)
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
