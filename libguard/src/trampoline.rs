//! Inline patching of a function's entry (x86_64): the few bytes at its start are replaced by
//! an absolute jump to a hook, and the instructions they held are copied into an executable
//! trampoline page, followed by a jump back, so the hook can still call the original.
//!
//! Used for the OpenSSL that node (official builds) links statically: node calls its own
//! `SSL_write`, so symbol interposition never sees it (see `hooks/tls.rs`).
//!
//! Safety discipline:
//! - Only instructions this module can prove position-independent are relocated (a small
//!   length decoder for the usual prologue forms: `endbr64`, `push`, register `mov`s, `sub`/`add`
//!   of `rsp`, `test`/`xor` between registers). Anything else (RIP-relative operands, branches,
//!   unknown opcodes) makes [`patch`] refuse, and the caller records an audit note instead.
//! - Patching happens in the library's constructor, before the program has started threads,
//!   so no thread can be executing the bytes being rewritten.
//! - Pages are made writable only for the write (`mprotect`), and returned to read+execute.
//!   The trampoline page is written, then made read+execute (never writable and executable).
//!   x86_64 keeps instruction and data caches coherent; an aarch64 port must add
//!   `__clear_cache` over both ranges after writing (marked below).
//!
//! aarch64 would follow the same structure: fixed 4-byte instructions (no length decoder),
//! the prologue check refusing `adr`/`adrp`/`b`/`bl`/`ldr literal`, and a 16-byte
//! `ldr x16, #8; br x16; .quad target` jump.

use core::ffi::c_void;

/// `jmp qword ptr [rip+0]` followed by the 8-byte target.
pub const JMP_LEN: usize = 14;

/// Why a function could not be patched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// An instruction in the bytes to be overwritten is not one the decoder can relocate.
    Unrelocatable { offset: usize, opcode: u8 },
    /// `mmap`/`mprotect` failed.
    Memory,
    /// Not x86_64.
    Arch,
}

impl Refused {
    pub fn as_str(&self) -> &'static str {
        match self {
            Refused::Unrelocatable { .. } => {
                "the function's prologue has an instruction that cannot be relocated (RIP-relative, branch or unknown)"
            }
            Refused::Memory => "mprotect/mmap of the code pages failed",
            Refused::Arch => "inline patching is only implemented on x86_64",
        }
    }
}

/// Length of one instruction at the start of `code` if it is one of the relocatable forms
/// (position-independent: it can run at any address unchanged); `None` otherwise.
pub fn insn_len(code: &[u8]) -> Option<usize> {
    let b0 = *code.first()?;
    // endbr64
    if code.starts_with(&[0xf3, 0x0f, 0x1e, 0xfa]) {
        return Some(4);
    }
    // push/pop r64 (50-5f); with REX.B (41).
    if (0x50..=0x5f).contains(&b0) {
        return Some(1);
    }
    let (rex, rest) = if (0x40..=0x4f).contains(&b0) {
        (true, code.get(1..)?)
    } else {
        (false, code)
    };
    let op = *rest.first()?;
    let pre = usize::from(rex);
    if rex && (0x50..=0x5f).contains(&op) {
        return Some(2);
    }
    let modrm = *rest.get(1)?;
    let reg_reg = modrm >> 6 == 3;
    match op {
        // mov r/m,r | mov r,r/m | test | xor | sub | add | and | or | cmp, register forms only
        0x89 | 0x8b | 0x85 | 0x31 | 0x33 | 0x29 | 0x2b | 0x01 | 0x03 | 0x21 | 0x23 | 0x09
        | 0x0b | 0x39 | 0x3b
            if reg_reg =>
        {
            Some(pre + 2)
        }
        // group 1 with imm8 / imm32 on a register (sub rsp, 0x48 etc.)
        0x83 if reg_reg => Some(pre + 3),
        0x81 if reg_reg => Some(pre + 6),
        _ => None,
    }
}

/// How many whole instructions cover at least `min` bytes of `code`; `Err(offset, opcode)` at
/// the first instruction that cannot be relocated.
pub fn prologue_len(code: &[u8], min: usize) -> Result<usize, Refused> {
    let mut off = 0;
    while off < min {
        let rest = code.get(off..).unwrap_or(&[]);
        match insn_len(rest) {
            Some(n) => off += n,
            None => {
                return Err(Refused::Unrelocatable {
                    offset: off,
                    opcode: rest.first().copied().unwrap_or(0),
                });
            }
        }
    }
    Ok(off)
}

fn abs_jmp(to: usize) -> [u8; JMP_LEN] {
    let mut j = [0u8; JMP_LEN];
    j[0] = 0xff;
    j[1] = 0x25;
    j[6..14].copy_from_slice(&(to as u64).to_le_bytes());
    j
}

fn page() -> usize {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p <= 0 { 4096 } else { p as usize }
}

/// Redirects `target` to `hook`; returns the trampoline: a function that behaves as the
/// original `target` did.
///
/// # Safety
/// `target` is the entry of a function whose first 32 bytes are readable code; no other
/// thread runs (or is about to run) those bytes; `hook` has the same signature.
pub unsafe fn patch(target: *mut u8, hook: *const c_void) -> Result<*const c_void, Refused> {
    if !cfg!(target_arch = "x86_64") {
        return Err(Refused::Arch);
    }
    // SAFETY: the caller guarantees 32 readable bytes of code.
    let code = unsafe { core::slice::from_raw_parts(target as *const u8, 32) };
    let n = prologue_len(code, JMP_LEN)?;
    let pg = page();
    // The trampoline: the relocated prologue, then a jump back after it.
    // SAFETY: anonymous private mapping, checked for failure.
    let tramp = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            pg,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if tramp == libc::MAP_FAILED {
        return Err(Refused::Memory);
    }
    let t = tramp as *mut u8;
    let back = abs_jmp(target as usize + n);
    // SAFETY: the page is ours, writable and larger than n + JMP_LEN (n <= 32).
    unsafe {
        core::ptr::copy_nonoverlapping(code.as_ptr(), t, n);
        core::ptr::copy_nonoverlapping(back.as_ptr(), t.add(n), JMP_LEN);
    }
    // aarch64: __clear_cache(t, t + n + JMP_LEN) here.
    // SAFETY: our own mapping.
    if unsafe { libc::mprotect(tramp, pg, libc::PROT_READ | libc::PROT_EXEC) } != 0 {
        unsafe { libc::munmap(tramp, pg) };
        return Err(Refused::Memory);
    }
    // The entry: writable for the moment of the write (both pages if it straddles one).
    let start = (target as usize) & !(pg - 1);
    let end = (target as usize + n + pg - 1) & !(pg - 1);
    let len = end - start;
    let rw = libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC;
    // SAFETY: the range covers mapped code pages of the executable.
    if unsafe { libc::mprotect(start as *mut c_void, len, rw) } != 0 {
        unsafe { libc::munmap(tramp, pg) };
        return Err(Refused::Memory);
    }
    let jmp = abs_jmp(hook as usize);
    // SAFETY: the pages are writable now; n >= JMP_LEN bytes at target are ours to rewrite;
    // the rest of the relocated instructions become int3 (never reached: the jmp leaves first).
    unsafe {
        core::ptr::copy_nonoverlapping(jmp.as_ptr(), target, JMP_LEN);
        for i in JMP_LEN..n {
            *target.add(i) = 0xcc;
        }
    }
    // aarch64: __clear_cache(target, target + n) here.
    // SAFETY: as above; back to the text segment's usual protection.
    unsafe { libc::mprotect(start as *mut c_void, len, libc::PROT_READ | libc::PROT_EXEC) };
    Ok(tramp as *const c_void)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_node_prologues() {
        // node 20's SSL_write and SSL_write_ex entries (objdump).
        let w = [
            0x55, 0x48, 0x89, 0xe5, 0x41, 0x56, 0x41, 0x55, 0x41, 0x54, 0x48, 0x83, 0xec, 0x48,
            0x85, 0xd2, 0x0f, 0x88,
        ];
        assert_eq!(prologue_len(&w, JMP_LEN), Ok(14));
        let wx = [
            0x55, 0x48, 0x89, 0xe5, 0x41, 0x57, 0x41, 0x56, 0x41, 0x55, 0x41, 0x54, 0x53, 0x48,
            0x83, 0xec, 0x38, 0x48, 0x83, 0x7f, 0x30, 0x00,
        ];
        assert_eq!(prologue_len(&wx, JMP_LEN), Ok(17));
        let cet = [
            0xf3, 0x0f, 0x1e, 0xfa, 0x55, 0x48, 0x89, 0xe5, 0x48, 0x81, 0xec, 1, 2, 0, 0,
        ];
        assert_eq!(prologue_len(&cet, JMP_LEN), Ok(15));
    }

    #[test]
    fn refuses_rip_relative_and_branches() {
        // lea rax,[rip+x] at offset 1
        let lea = [
            0x55, 0x48, 0x8d, 0x05, 0, 0, 0, 0, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90,
        ];
        assert_eq!(
            prologue_len(&lea, JMP_LEN),
            Err(Refused::Unrelocatable {
                offset: 1,
                opcode: 0x48
            })
        );
        // mov rax, [rip+x] (memory operand, mod=00 rm=101)
        let mov = [0x48, 0x8b, 0x05, 0, 0, 0, 0];
        assert!(prologue_len(&mov, JMP_LEN).is_err());
        // jmp rel32 and call rel32
        assert!(prologue_len(&[0xe9, 0, 0, 0, 0], JMP_LEN).is_err());
        assert!(prologue_len(&[0x55, 0xe8, 0, 0, 0, 0], JMP_LEN).is_err());
        assert!(prologue_len(&[], JMP_LEN).is_err());
    }

    #[test]
    fn patches_a_function_in_a_private_page() {
        // A function `mov eax, edi; add eax, 1 (via 83 c0 01); ...` built in an RWX-free way:
        // write it into a page, make it RX, patch it to a hook that returns 42, and check the
        // trampoline still computes the original.
        let pg = page();
        unsafe {
            let m = libc::mmap(
                core::ptr::null_mut(),
                pg,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            ) as *mut u8;
            assert_ne!(m as *mut c_void, libc::MAP_FAILED);
            // push rbp; mov rbp,rsp; mov eax,edi (89 f8); add eax,1 (83 c0 01);
            // add eax,1 x3; pop rbp; ret
            let f: [u8; 20] = [
                0x55, 0x48, 0x89, 0xe5, 0x89, 0xf8, 0x83, 0xc0, 0x01, 0x83, 0xc0, 0x01, 0x83, 0xc0,
                0x01, 0x83, 0xc0, 0x01, 0x5d, 0xc3,
            ];
            core::ptr::copy_nonoverlapping(f.as_ptr(), m, f.len());
            for i in f.len()..32 {
                *m.add(i) = 0xcc;
            }
            assert_eq!(
                libc::mprotect(m as *mut c_void, pg, libc::PROT_READ | libc::PROT_EXEC),
                0
            );
            extern "C" fn hook(_x: i32) -> i32 {
                42
            }
            let orig: extern "C" fn(i32) -> i32 = core::mem::transmute(m);
            assert_eq!(orig(1), 5);
            let tramp = patch(m, hook as *const c_void).unwrap();
            assert_eq!(orig(1), 42, "the entry now jumps to the hook");
            let t: extern "C" fn(i32) -> i32 = core::mem::transmute(tramp);
            assert_eq!(t(1), 5, "the trampoline behaves as the original");
        }
    }
}
