//! aarch64 half of the inline patcher: **designed, not enabled**. On aarch64 [`SUPPORTED`] is
//! false, so [`super::patch`] refuses with [`super::Refused::Arch`] and a process whose
//! OpenSSL is linked into the executable (node official builds) gets the `tls-unseen` audit
//! event on its first connect to port 443, exactly as for Go or rustls. It stays disabled until
//! it has run on aarch64 hardware (this project's CI is x86_64 only); the decoding and encoding
//! below are pure functions and are unit-tested on every host.
//!
//! # The plan
//! - **Entry jump, 16 bytes**: `LDR X16, #8; BR X16; .quad hook`. X16 (IP0) is the
//!   intra-procedure-call scratch register: AAPCS64 lets any call clobber it, so it is free at
//!   a function's entry. The 8-byte literal need not be aligned (normal memory). When the
//!   entry is a BTI landing pad (`BTI c`/`BTI jc`, or `PACIASP` which is one implicitly), the
//!   pad stays in place and the jump is written after it: an indirect call (`BLR`) into a
//!   BTI-guarded page must land on a pad, and the jump itself is a `BR X16`, which the hook's
//!   own `BTI c` accepts (X16/X17 are the registers `BTI c` allows for `BR`).
//! - **Relocation**: instructions are fixed 4-byte words, so there is no length decoder; the
//!   four (five with a pad) displaced words are classified ([`classify`]):
//!   - position-independent words are copied unchanged;
//!   - `ADR`/`ADRP Xd`: the target address is computed at patch time and loaded with
//!     `LDR Xd, <literal>` from a pool in the trampoline;
//!   - `B`/`BL`: `LDR X16, <literal>; BR X16` / `BLR X16` (so `BL` still sets LR to the next
//!     trampoline word, which continues the copied prologue);
//!   - `B.cond`, `CBZ`/`CBNZ`, `TBZ`/`TBNZ`: the same condition with the displacement
//!     rewritten to skip over a local `LDR X16, <literal>; BR X16` (the original target),
//!     falling through otherwise;
//!   - `LDR` literal (`LDR Wt/Xt/St/Dt/Qt`, `LDRSW`, `PRFM`): the literal's address goes in
//!     X16 (`LDR X16, <literal>`), then the same load from `[X16]`;
//!   - the pool of 8-byte literals follows the jump back, 8-aligned (`LDR` literal reaches
//!     ±1 MiB, always enough inside one trampoline page).
//!   - Refused: `RET`/`BR`/`BLR`/`ERET` in the displaced words (the function may end there and
//!     the jump would overwrite its neighbour), and anything in the `SYS` space other than hints.
//! - **Caches**: unlike x86_64, instruction fetch is not coherent with data writes: after
//!   writing the trampoline and the entry, `__clear_cache(start, end)` over both ranges
//!   (`DC CVAU` / `IC IVAU` / `DSB ISH` / `ISB`).
//! - **Timing**: as on x86_64, patching runs in the constructor before threads exist; the
//!   16-byte write is not atomic and need not be.
//!
//! The first version can (like the x86_64 one) refuse every PC-relative word instead of
//! rewriting it; node's `SSL_write` prologues on aarch64 are `PACIASP`/`STP`/`MOV` sequences.

use super::Refused;

/// Whether [`super::patch`] patches on this architecture: not yet (see the module doc).
pub const SUPPORTED: bool = false;

/// `LDR X16, #8; BR X16; .quad target`.
pub const JMP_LEN: usize = 16;

/// Filler for displaced words after the jump: `UDF #0` (never reached).
pub const FILL: u8 = 0x00;

/// What one instruction word needs when it runs from the trampoline instead of its address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Position-independent: copied unchanged.
    Plain,
    /// A BTI landing pad (or `PACIASP`/`PACIBSP`): stays at the entry, the jump goes after it.
    LandingPad,
    /// `ADR`/`ADRP`: rewritten as a literal load of the computed address.
    Adr,
    /// `B`/`BL`: rewritten as an absolute branch through X16.
    Branch,
    /// `B.cond`, `CBZ`/`CBNZ`, `TBZ`/`TBNZ`: rewritten around a local absolute branch.
    CondBranch,
    /// `LDR` literal (and `LDRSW`, `PRFM` literal): rewritten to load through X16.
    LoadLiteral,
    /// Register branch or return: the function may end here; never relocated.
    Return,
}

/// Classifies one instruction word.
pub fn classify(w: u32) -> Kind {
    // HINT space: BTI c/j/jc (and plain BTI), PACIASP, PACIBSP.
    if matches!(
        w,
        0xd503_241f | 0xd503_245f | 0xd503_249f | 0xd503_24df | 0xd503_233f | 0xd503_237f
    ) {
        return Kind::LandingPad;
    }
    if w & 0x1f00_0000 == 0x1000_0000 {
        return Kind::Adr; // ADR (op=0) and ADRP (op=1)
    }
    if w & 0x7c00_0000 == 0x1400_0000 {
        return Kind::Branch; // B (0x14..) and BL (0x94..)
    }
    if w & 0xff00_0000 == 0x5400_0000 || w & 0x7c00_0000 == 0x3400_0000 {
        return Kind::CondBranch; // B.cond/BC.cond; CBZ/CBNZ (0x34/0x35); TBZ/TBNZ (0x36/0x37)
    }
    if w & 0x3b00_0000 == 0x1800_0000 {
        return Kind::LoadLiteral;
    }
    if w & 0xfe00_0000 == 0xd600_0000 {
        return Kind::Return; // BR, BLR, RET, ERET, and their authenticated forms
    }
    Kind::Plain
}

/// How many bytes of whole words the entry jump displaces, refusing every word the first
/// version does not relocate (all but [`Kind::Plain`]; a leading landing pad is counted and
/// stays in place once implemented).
pub fn prologue_len(code: &[u8], min: usize) -> Result<usize, Refused> {
    let mut off = 0;
    while off < min {
        let w = code
            .get(off..off + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
            .ok_or(Refused::Unrelocatable {
                offset: off,
                opcode: 0,
            })?;
        if classify(w) != Kind::Plain {
            return Err(Refused::Unrelocatable {
                offset: off,
                opcode: w,
            });
        }
        off += 4;
    }
    Ok(off)
}

/// The relocated copy of the first `n` bytes (only [`Kind::Plain`] words were accepted).
pub fn relocate(code: &[u8], n: usize, out: &mut [u8]) -> Option<usize> {
    out.get_mut(..n)?.copy_from_slice(code.get(..n)?);
    Some(n)
}

/// `LDR X16, #8; BR X16; .quad to`.
pub fn jump(to: usize) -> [u8; JMP_LEN] {
    let mut j = [0u8; JMP_LEN];
    j[0..4].copy_from_slice(&0x5800_0050u32.to_le_bytes());
    j[4..8].copy_from_slice(&0xd61f_0200u32.to_le_bytes());
    j[8..16].copy_from_slice(&(to as u64).to_le_bytes());
    j
}

/// Makes freshly written code visible to instruction fetch.
pub fn sync_icache(start: *const u8, len: usize) {
    #[cfg(target_arch = "aarch64")]
    {
        unsafe extern "C" {
            fn __clear_cache(start: *mut core::ffi::c_char, end: *mut core::ffi::c_char);
        }
        // SAFETY: the range is code this module just wrote; __clear_cache only maintains caches.
        unsafe {
            __clear_cache(
                start as *mut core::ffi::c_char,
                start.wrapping_add(len) as *mut core::ffi::c_char,
            )
        };
    }
    #[cfg(not(target_arch = "aarch64"))]
    let _ = (start, len);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(ws: &[u32]) -> Vec<u8> {
        ws.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    #[test]
    fn classifies_pc_relative_words() {
        assert_eq!(classify(0xd503_233f), Kind::LandingPad); // paciasp
        assert_eq!(classify(0xd503_245f), Kind::LandingPad); // bti c
        assert_eq!(classify(0xa9bf_7bfd), Kind::Plain); // stp x29, x30, [sp, #-16]!
        assert_eq!(classify(0x9100_03fd), Kind::Plain); // mov x29, sp
        assert_eq!(classify(0xd100_83ff), Kind::Plain); // sub sp, sp, #0x20
        assert_eq!(classify(0x9000_0000), Kind::Adr); // adrp x0, .
        assert_eq!(classify(0x1000_0000), Kind::Adr); // adr x0, .
        assert_eq!(classify(0x1400_0001), Kind::Branch); // b .+4
        assert_eq!(classify(0x9400_0001), Kind::Branch); // bl .+4
        assert_eq!(classify(0x5400_0040), Kind::CondBranch); // b.eq .+8
        assert_eq!(classify(0xb400_0040), Kind::CondBranch); // cbz x0, .+8
        assert_eq!(classify(0x3500_0040), Kind::CondBranch); // cbnz w0, .+8
        assert_eq!(classify(0x3600_0040), Kind::CondBranch); // tbz w0, #0, .+8
        assert_eq!(classify(0x5800_0050), Kind::LoadLiteral); // ldr x16, #8
        assert_eq!(classify(0x9800_0040), Kind::LoadLiteral); // ldrsw x0, #8
        assert_eq!(classify(0x1c00_0040), Kind::LoadLiteral); // ldr s0, #8
        assert_eq!(classify(0xd65f_03c0), Kind::Return); // ret
        assert_eq!(classify(0xd61f_0200), Kind::Return); // br x16
        assert_eq!(classify(0xd63f_0200), Kind::Return); // blr x16
    }

    #[test]
    fn prologue_accepts_plain_words_and_refuses_the_rest() {
        let ok = words(&[0xa9bf_7bfd, 0x9100_03fd, 0xd100_83ff, 0xaa00_03f3, 0x0]);
        assert_eq!(prologue_len(&ok, JMP_LEN), Ok(16));
        let adrp = words(&[0xa9bf_7bfd, 0x9000_0000, 0x9100_03fd, 0xd100_83ff]);
        assert_eq!(
            prologue_len(&adrp, JMP_LEN),
            Err(Refused::Unrelocatable {
                offset: 4,
                opcode: 0x9000_0000
            })
        );
        let ret = words(&[0x5280_0000, 0xd65f_03c0, 0, 0]); // mov w0,#0; ret: too short
        assert!(prologue_len(&ret, JMP_LEN).is_err());
        assert!(prologue_len(&[0x1f, 0x20], JMP_LEN).is_err());
    }

    #[test]
    fn jump_is_ldr_br_literal() {
        let j = jump(0x0102_0304_0506_0708);
        assert_eq!(
            classify(u32::from_le_bytes(j[0..4].try_into().unwrap())),
            Kind::LoadLiteral
        );
        assert_eq!(u32::from_le_bytes(j[0..4].try_into().unwrap()) & 0x1f, 16); // Rt = x16
        assert_eq!(u32::from_le_bytes(j[4..8].try_into().unwrap()), 0xd61f_0200); // br x16
        assert_eq!(
            u64::from_le_bytes(j[8..16].try_into().unwrap()),
            0x0102_0304_0506_0708
        );
    }
}
