//! A port whose receive side is a queue the fuzz target fills and whose
//! transmit side discards (shared by the pipeline fuzz targets).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use patronus_engine::buffer::{Batch, PacketPool};
use patronus_engine::ports::{LinkInfo, Port, TxDone};

pub type Queue = Rc<RefCell<VecDeque<Vec<u8>>>>;

pub struct FuzzPort {
    pub mac: [u8; 6],
    pub rx: Queue,
}

impl Port for FuzzPort {
    fn name(&self) -> &str {
        "fuzz"
    }
    fn rx_burst(&mut self, pool: &mut PacketPool, batch: &mut Batch) -> usize {
        let mut n = 0;
        while batch.space() > 0 {
            let Some(f) = self.rx.borrow_mut().pop_front() else { break };
            if let Some(p) = pool.alloc_from(&f) {
                let _ = batch.push(p);
                n += 1;
            }
        }
        n
    }
    fn tx_burst(&mut self, batch: &mut Batch) -> TxDone {
        let n = batch.len();
        batch.clear();
        TxDone { packets: n, bytes: 0 }
    }
    fn link(&self) -> LinkInfo {
        LinkInfo { up: true, mtu: 1500, mac: self.mac, speed_mbps: None }
    }
}
