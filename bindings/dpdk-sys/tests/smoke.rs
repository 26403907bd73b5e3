//! Smoke test of the raw bindings: EAL with virtual devices only (no NIC,
//! no hugepages), a mempool, a `net_ring` port that loops TX back to RX and
//! a `net_null` port. EAL initialises once per process, so this binary holds
//! one test that does everything.

use std::ffi::CString;
use std::os::raw::c_char;
use std::ptr;

use patronus_dpdk_sys as sys;

fn eal_init(args: &[String]) {
    let cargs: Vec<CString> = args
        .iter()
        .map(|a| CString::new(a.as_str()).unwrap())
        .collect();
    let mut argv: Vec<*mut c_char> = cargs.iter().map(|c| c.as_ptr() as *mut c_char).collect();
    // SAFETY: argv points at NUL-terminated strings that outlive the call
    // (EAL keeps pointers into them, so `cargs` is leaked below).
    let ret = unsafe { sys::rte_eal_init(argv.len() as i32, argv.as_mut_ptr()) };
    // SAFETY: reads the calling thread's rte_errno.
    assert!(ret >= 0, "rte_eal_init failed: errno {}", unsafe {
        sys::patronus_errno()
    });
    std::mem::forget(cargs);
}

fn port_by_name(name: &str) -> u16 {
    let c = CString::new(name).unwrap();
    let mut id = 0u16;
    // SAFETY: `c` is NUL-terminated and `id` a valid out-pointer.
    let r = unsafe { sys::rte_eth_dev_get_port_by_name(c.as_ptr(), &mut id) };
    assert_eq!(r, 0, "no DPDK port {name}");
    id
}

fn setup_port(port: u16, pool: *mut sys::rte_mempool) {
    let conf = sys::rte_eth_conf::default();
    // SAFETY: valid port id, conf lives across the call; queue setups use
    // a live mempool; the port is started after every queue is set up.
    unsafe {
        assert_eq!(sys::rte_eth_dev_configure(port, 1, 1, &conf), 0);
        assert_eq!(
            sys::rte_eth_rx_queue_setup(port, 0, 256, 0, ptr::null(), pool),
            0
        );
        assert_eq!(sys::rte_eth_tx_queue_setup(port, 0, 256, 0, ptr::null()), 0);
        assert_eq!(sys::rte_eth_dev_start(port), 0);
    }
}

#[test]
fn eal_ring_loopback_and_null() {
    let prefix = format!("--file-prefix=patronus-smoke-{}", std::process::id());
    let args: Vec<String> = [
        "smoke",
        "--no-huge",
        "--no-shconf",
        "-m",
        "256",
        "--no-pci",
        "-l",
        "0",
        "--vdev=net_null0",
        "--vdev=net_ring0",
        "--log-level=warning",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([prefix])
    .collect();
    eal_init(&args);
    // SAFETY: EAL is initialised.
    assert_eq!(unsafe { sys::rte_eth_dev_count_avail() }, 2);

    let name = CString::new("smoke_pool").unwrap();
    // SAFETY: EAL is up; the name is NUL-terminated.
    let pool = unsafe {
        sys::rte_pktmbuf_pool_create(name.as_ptr(), 1023, 0, 0, 2048 + 128, sys::SOCKET_ID_ANY)
    };
    // SAFETY: reads the calling thread's rte_errno.
    let errno = unsafe { sys::patronus_errno() };
    assert!(!pool.is_null(), "mempool: errno {errno}");
    // SAFETY: `pool` is a live mempool.
    let avail_at_start = unsafe { sys::rte_mempool_avail_count(pool) };
    assert_eq!(avail_at_start, 1023);

    let ring = port_by_name("net_ring0");
    let null = port_by_name("net_null0");
    setup_port(ring, pool);
    setup_port(null, pool);

    // TX four frames with distinct contents on the ring port; they come back on RX.
    let mut mbufs = [ptr::null_mut::<sys::rte_mbuf>(); 4];
    // SAFETY: `mbufs` has room for 4 pointers.
    let r = unsafe { sys::patronus_pktmbuf_alloc_bulk(pool, mbufs.as_mut_ptr(), 4) };
    assert_eq!(r, 0);
    for (i, &m) in mbufs.iter().enumerate() {
        // SAFETY: `m` is a fresh single-segment mbuf with ≥ 2048 B tailroom.
        unsafe {
            assert!(sys::patronus_pktmbuf_tailroom(m) >= 64);
            let head = sys::patronus_pktmbuf_headroom(m);
            sys::mbuf_fields::set_single(m, head, 64);
            assert_eq!(sys::patronus_pktmbuf_pkt_len(m), 64);
            let d = sys::patronus_pktmbuf_data(m) as *mut u8;
            ptr::write_bytes(d, i as u8 + 1, 64);
        }
    }
    // SAFETY: the port is started, queue 0 exists; sent mbufs belong to the PMD.
    let sent = unsafe { sys::patronus_eth_tx_burst(ring, 0, mbufs.as_mut_ptr(), 4) };
    assert_eq!(sent, 4);
    let mut rx = [ptr::null_mut::<sys::rte_mbuf>(); 32];
    // SAFETY: as above; `rx` has room for 32 pointers.
    let got = unsafe { sys::patronus_eth_rx_burst(ring, 0, rx.as_mut_ptr(), 32) };
    assert_eq!(got, 4);
    for (i, &m) in rx[..4].iter().enumerate() {
        // SAFETY: received mbufs are ours until freed; 64 bytes were written.
        unsafe {
            assert_eq!(sys::patronus_pktmbuf_data_len(m), 64);
            // The inline field accessors read what the C accessors read.
            assert_eq!(sys::mbuf_fields::data_len(m), 64);
            assert_eq!(
                sys::mbuf_fields::data_off(m),
                sys::patronus_pktmbuf_headroom(m)
            );
            assert_eq!(
                sys::mbuf_fields::nb_segs(m),
                sys::patronus_pktmbuf_nb_segs(m)
            );
            assert_eq!(sys::mbuf_fields::pool(m), sys::patronus_pktmbuf_pool(m));
            assert_eq!(
                sys::mbuf_fields::buf_addr(m),
                sys::patronus_pktmbuf_buf_addr(m).cast::<u8>()
            );
            let d = std::slice::from_raw_parts(sys::patronus_pktmbuf_data(m) as *const u8, 64);
            assert!(d.iter().all(|b| *b == i as u8 + 1), "frame {i} content");
            sys::patronus_pktmbuf_free(m);
        }
    }

    // net_null makes up frames on RX and swallows TX.
    // SAFETY: as above.
    let got = unsafe { sys::patronus_eth_rx_burst(null, 0, rx.as_mut_ptr(), 32) };
    assert!(got > 0, "net_null RX returned nothing");
    // SAFETY: the received mbufs are handed to TX, which frees them.
    let sent = unsafe { sys::patronus_eth_tx_burst(null, 0, rx.as_mut_ptr(), got) };
    assert_eq!(sent, got);

    let mut stats = sys::rte_eth_stats::default();
    // SAFETY: valid port, valid out-pointer.
    assert_eq!(unsafe { sys::rte_eth_stats_get(ring, &mut stats) }, 0);
    assert_eq!((stats.ipackets, stats.opackets), (4, 4));
    // SAFETY: `pool` is live.
    let avail_at_end = unsafe { sys::rte_mempool_avail_count(pool) };
    // Every mbuf went back: nothing is queued in the null port, and the ring
    // port's queue is empty.
    assert_eq!(avail_at_end, avail_at_start);

    // SAFETY: EAL is initialised; the string is copied at once.
    let runtime_dir = unsafe { std::ffi::CStr::from_ptr(sys::rte_eal_get_runtime_dir()) }
        .to_string_lossy()
        .into_owned();
    assert!(runtime_dir.ends_with(&format!("patronus-smoke-{}", std::process::id())));
    // SAFETY: ports are stopped before EAL is cleaned up, once, at the end.
    unsafe {
        assert_eq!(sys::rte_eth_dev_stop(ring), 0);
        assert_eq!(sys::rte_eth_dev_stop(null), 0);
        sys::rte_eal_cleanup();
    }
    // EAL leaves its runtime directory behind.
    std::fs::remove_dir_all(runtime_dir).unwrap();
}
