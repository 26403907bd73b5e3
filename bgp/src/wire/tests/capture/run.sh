#!/bin/bash
# Captures the golden BGP messages of ../golden.rs: BIRD 2 (three
# instances, ns A) and FRR bgpd (ns B) on one veth, tcpdump in ns B.
# Not part of the test suite (needs root, bird2, frr). Run as root:
#   bash run.sh && python3 dump.py /tmp/bgpwire-cap/bgp.pcap
# Namespaces and veth carry this shell's pid and are removed on exit.
set -x
D=/tmp/bgpwire-cap; P=$$
mkdir -p $D && cp "$(dirname "$0")"/*.conf $D/
A=bgpw$P-a; B=bgpw$P-b
cleanup() {
  [ -f $D/bird.pid ] && kill $(cat $D/bird.pid) 2>/dev/null
  [ -f $D/bird11.pid ] && kill $(cat $D/bird11.pid) 2>/dev/null
  [ -f $D/bird12.pid ] && kill $(cat $D/bird12.pid) 2>/dev/null
  [ -f $D/bgpd.pid ] && kill $(cat $D/bgpd.pid) 2>/dev/null
  [ -n "$TD" ] && kill $TD 2>/dev/null
  sleep 1
  ip netns del $A 2>/dev/null; ip netns del $B 2>/dev/null
}
trap cleanup EXIT
ip netns add $A; ip netns add $B
ip link add va$P netns $A type veth peer name vb$P netns $B
ip -n $A link set lo up; ip -n $B link set lo up
ip -n $A addr add 10.0.0.1/24 dev va$P; ip -n $A addr add 10.0.0.11/24 dev va$P; ip -n $A addr add 10.0.0.12/24 dev va$P
ip -n $A addr add fd00::1/64 dev va$P nodad
ip -n $B addr add 10.0.0.2/24 dev vb$P; ip -n $B addr add fd00::2/64 dev vb$P nodad
ip -n $A link set va$P up; ip -n $B link set vb$P up
sleep 2
ip netns exec $B tcpdump -i vb$P -U -w $D/bgp.pcap -s 0 'tcp port 179' & TD=$!
sleep 1
ip netns exec $B /usr/lib/frr/bgpd -f $D/frr.conf -i $D/bgpd.pid -z $D/zserv.api --vty_socket $D -S -Z -n -d
ip netns exec $A bird -c $D/bird.conf -s $D/bird.ctl -P $D/bird.pid
ip netns exec $A bird -c $D/bird11.conf -s $D/bird11.ctl -P $D/bird11.pid
ip netns exec $A bird -c $D/bird12.conf -s $D/bird12.ctl -P $D/bird12.pid
sleep 25
ip netns exec $A birdc -s $D/bird.ctl show protocols
ip netns exec $A birdc -s $D/bird.ctl reload in p1
sleep 2
ip netns exec $A birdc -s $D/bird11.ctl disable p3 \"maintenance\"
sleep 2
ip netns exec $A birdc -s $D/bird.ctl disable p1
sleep 2
