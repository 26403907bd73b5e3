//! Goldens made with scapy (/usr/bin/python3, `raw(p).hex()`): a fresh NAT
//! with pool 203.0.113.1 must turn each input into exactly the expected
//! bytes (checksums included, though NAT updates them incrementally).

use super::pkt::*;
use crate::nat::*;
use crate::wire::hex;

#[test]
fn scapy_goldens() {
    let mut nat = Nat::new(cfg()).unwrap();
    // IP(src="10.0.0.2",dst="198.51.100.7",id=0x0101,ttl=64)/TCP(sport=80,dport=443,flags="S",seq=1000,window=64240)
    let mut p =
        hex("4500002801010000400645930a000002c6336407005001bb000003e8000000005002faf07ac20000");
    assert_eq!(nat.outbound(&mut p, 0), Verdict::Translated);
    // Same with src="203.0.113.1", sport=1024 (80 is below the dynamic range; 1024 is the first free port).
    assert_eq!(
        p,
        hex("450000280101000040061393cb007101c6336407040001bb000003e8000000005002faf045120000")
    );

    // IP(src="10.0.0.2",dst="198.51.100.7",id=2)/UDP(sport=80,dport=53)/b"q"
    let mut q = hex("4500001d00020000401146920a000002c63364070050003500095a1a71");
    assert_eq!(nat.outbound(&mut q, 0), Verdict::Translated);
    // IP(src="203.0.113.1",dst="198.51.100.7",id=2)/UDP(sport=1024,dport=53)/b"q" (UDP has its own port space)
    assert_eq!(
        q,
        hex("4500001d0002000040111492cb007101c6336407040000350009246a71")
    );

    // IP(src="198.51.100.7",dst="203.0.113.1",id=3)/UDP(sport=53,dport=1024)/b"answer"
    let mut r = hex("45000022000300004011148cc6336407cb00710100350400000e5b08616e73776572");
    assert_eq!(nat.inbound(&mut r, 0), Verdict::Translated);
    // IP(src="198.51.100.7",dst="10.0.0.2",id=3)/UDP(sport=53,dport=80)/b"answer"
    assert_eq!(
        r,
        hex("45000022000300004011468cc63364070a00000200350050000e90b8616e73776572")
    );

    // IP(src="198.51.100.7",dst="203.0.113.1",id=4)/ICMP(type=3,code=3)/IP(raw(<the translated UDP above>))
    let mut e = hex(
        "450000390004000040011484c6336407cb00710103036354000000004500001d0002000040111492cb007101c6336407040000350009246a71",
    );
    assert_eq!(nat.inbound(&mut e, 0), Verdict::Translated);
    // IP(src="198.51.100.7",dst="10.0.0.2",id=4)/ICMP(type=3,code=3)/IP(raw(<the original UDP>))
    assert_eq!(
        e,
        hex("450000390004000040014684c63364070a00000203033154000000004500001d00020000401146920a000002c63364070050003500095a1a71")
    );
}
