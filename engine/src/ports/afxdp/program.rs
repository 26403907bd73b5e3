//! The driver's XDP program, assembled here as eBPF instructions (no clang,
//! no object file, no libbpf at build or run time):
//!
//! ```text
//! if frame has an EtherType in `kernel_ethertypes`           -> XDP_PASS
//! if IPv4 and its protocol is in `kernel_ip_protocols`       -> XDP_PASS
//! otherwise bpf_redirect_map(xsks, ctx->rx_queue_index, no_socket)
//! ```
//!
//! `no_socket` is the verdict when the frame's RX queue has no socket in the
//! XSKMAP (more NIC queues than workers, or a queue still opening).
//! Only the outer EtherType is looked at: a VLAN-tagged frame is the engine's.

/// XDP verdicts (`enum xdp_action`).
#[cfg(test)]
pub const XDP_DROP: u32 = 1;
pub const XDP_PASS: u32 = 2;

/// What the program lets through to the kernel.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KernelShare {
    pub ethertypes: Vec<u16>,
    pub ip_protocols: Vec<u8>,
}

// Opcodes (include/uapi/linux/bpf.h, bpf_common.h).
const LDX_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const LDX_H: u8 = 0x69; // BPF_LDX | BPF_MEM | BPF_H
const LDX_B: u8 = 0x71; // BPF_LDX | BPF_MEM | BPF_B
const MOV64_X: u8 = 0xbf; // BPF_ALU64 | BPF_MOV | BPF_X
const MOV64_K: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
const ADD64_K: u8 = 0x07; // BPF_ALU64 | BPF_ADD | BPF_K
const JGT_X: u8 = 0x2d; // BPF_JMP | BPF_JGT | BPF_X
const JEQ_K: u8 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const LD_IMM64: u8 = 0x18; // BPF_LD | BPF_IMM | BPF_DW
const CALL: u8 = 0x85; // BPF_JMP | BPF_CALL
const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT
/// `src_reg` of an LD_IMM64 whose immediate is a map descriptor.
const PSEUDO_MAP_FD: u8 = 1;
/// `bpf_redirect_map(map, key, flags)`.
const HELPER_REDIRECT_MAP: i32 = 51;

/// `struct xdp_md` field offsets.
const MD_DATA: i16 = 0;
const MD_DATA_END: i16 = 4;
const MD_RX_QUEUE_INDEX: i16 = 16;

/// One instruction in its wire form (little-endian host).
pub fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> u64 {
    (code as u64)
        | ((dst as u64 & 0xf) << 8)
        | ((src as u64 & 0xf) << 12)
        | ((off as u16 as u64) << 16)
        | ((imm as u32 as u64) << 32)
}

/// Jump targets, resolved once the program is laid out.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Label {
    Redirect,
    Pass,
}

struct Asm {
    code: Vec<u64>,
    fixups: Vec<(usize, Label)>,
}

impl Asm {
    fn op(&mut self, code: u8, dst: u8, src: u8, off: i16, imm: i32) {
        self.code.push(insn(code, dst, src, off, imm));
    }
    fn jump(&mut self, code: u8, dst: u8, src: u8, imm: i32, to: Label) {
        self.fixups.push((self.code.len(), to));
        self.op(code, dst, src, 0, imm);
    }
    fn resolve(&mut self, label: Label) {
        let here = self.code.len() as i64;
        for (at, l) in &self.fixups {
            if *l == label {
                let off = (here - *at as i64 - 1) as i16 as u16 as u64;
                self.code[*at] = (self.code[*at] & !(0xffff << 16)) | (off << 16);
            }
        }
    }
}

/// Assembles the program for an XSKMAP descriptor `map_fd`.
pub fn assemble(map_fd: i32, share: &KernelShare, no_socket: u32) -> Vec<u64> {
    let mut a = Asm {
        code: Vec::with_capacity(32),
        fixups: Vec::new(),
    };
    // r6 = ctx; r2 = data; r3 = data_end
    a.op(MOV64_X, 6, 1, 0, 0);
    if !share.ethertypes.is_empty() || !share.ip_protocols.is_empty() {
        a.op(LDX_W, 2, 6, MD_DATA, 0);
        a.op(LDX_W, 3, 6, MD_DATA_END, 0);
        // Shorter than an Ethernet header: the engine counts it as malformed.
        a.op(MOV64_X, 4, 2, 0, 0);
        a.op(ADD64_K, 4, 0, 0, 14);
        a.jump(JGT_X, 4, 3, 0, Label::Redirect);
        // r5 = EtherType as loaded from the wire: a byte-swapped u16.
        a.op(LDX_H, 5, 2, 12, 0);
        for t in &share.ethertypes {
            a.jump(JEQ_K, 5, 0, t.swap_bytes() as i32, Label::Pass);
        }
        if !share.ip_protocols.is_empty() {
            a.jump(JNE_K, 5, 0, 0x0800u16.swap_bytes() as i32, Label::Redirect);
            a.op(MOV64_X, 4, 2, 0, 0);
            a.op(ADD64_K, 4, 0, 0, 24);
            a.jump(JGT_X, 4, 3, 0, Label::Redirect);
            a.op(LDX_B, 5, 2, 23, 0);
            for p in &share.ip_protocols {
                a.jump(JEQ_K, 5, 0, *p as i32, Label::Pass);
            }
        }
    }
    a.resolve(Label::Redirect);
    // return bpf_redirect_map(&xsks, ctx->rx_queue_index, no_socket);
    a.op(LDX_W, 2, 6, MD_RX_QUEUE_INDEX, 0);
    a.op(LD_IMM64, 1, PSEUDO_MAP_FD, 0, map_fd);
    a.op(0, 0, 0, 0, 0);
    a.op(MOV64_K, 3, 0, 0, no_socket as i32);
    a.op(CALL, 0, 0, 0, HELPER_REDIRECT_MAP);
    a.op(EXIT, 0, 0, 0, 0);
    // The verifier rejects unreachable code: a pass block only if used.
    if a.fixups.iter().any(|(_, l)| *l == Label::Pass) {
        a.resolve(Label::Pass);
        a.op(MOV64_K, 0, 0, 0, XDP_PASS as i32);
        a.op(EXIT, 0, 0, 0, 0);
    }
    a.code
}
