//! Inline patching of a function's entry: the first bytes are replaced by an absolute jump to a
//! hook, and the instructions they held are copied into an executable trampoline page,
//! followed by a jump back, so the hook can still call the original.
//!
//! Used for the OpenSSL that node (official builds) links statically: node calls its own
//! `SSL_write`, so symbol interposition never sees it (see `hooks/tls.rs`).
//!
//! # Architecture split
//! This file is the architecture-independent sequence (mapping the trampoline page, the order
//! of writes and protection changes). What depends on the instruction set lives in one module
//! per architecture, with the same items: `SUPPORTED`, `JMP_LEN` (bytes the entry jump needs),
//! `prologue_len` (whole instructions covering them, or a refusal), `relocate` (the displaced
//! instructions as they must run from the trampoline), `jump`, `FILL` and `sync_icache`.
//! - `x86_64.rs`: enabled. A length decoder for position-independent prologue forms and a
//!   14-byte `jmp [rip+0]`.
//! - `aarch64.rs`: designed, disabled (`SUPPORTED = false`): [`patch`] refuses with
//!   [`Refused::Arch`] and the process gets the `tls-unseen` audit event instead. Its module
//!   doc is the plan (16-byte `LDR X16, #8; BR X16` jump, BTI landing pads, ADR/ADRP, B/BL,
//!   conditional branch and LDR-literal fixups through a literal pool, `__clear_cache`).
//! - Every other architecture uses the aarch64 module, and so is disabled the same way.
//!
//! Safety discipline:
//! - Only instructions the architecture module can prove position-independent are relocated;
//!   anything else makes [`patch`] refuse, and the caller records an audit note instead.
//! - Patching happens in the library's constructor, before the program has started threads,
//!   so no thread can be executing the bytes being rewritten.
//! - Pages are made writable only for the write (`mprotect`), and returned to read+execute.
//!   The trampoline page is written, then made read+execute (never writable and executable).

#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
#[cfg(any(test, target_arch = "x86_64"))]
pub mod x86_64;

#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
#[cfg(any(test, not(target_arch = "x86_64")))]
pub mod aarch64;

#[cfg(target_arch = "x86_64")]
use x86_64 as arch;

#[cfg(not(target_arch = "x86_64"))]
use aarch64 as arch;

use core::ffi::c_void;

/// Bytes the entry jump of this architecture takes.
pub const JMP_LEN: usize = arch::JMP_LEN;

/// Why a function could not be patched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// An instruction in the bytes to be overwritten is not one the decoder can relocate
    /// (`opcode`: its first byte on x86_64, the instruction word on aarch64).
    Unrelocatable { offset: usize, opcode: u32 },
    /// `mmap`/`mprotect` failed.
    Memory,
    /// Inline patching is not enabled on this architecture.
    Arch,
}

impl Refused {
    pub fn as_str(&self) -> &'static str {
        match self {
            Refused::Unrelocatable { .. } => {
                "the function's prologue has an instruction that cannot be relocated (PC-relative, branch or unknown)"
            }
            Refused::Memory => "mprotect/mmap of the code pages failed",
            Refused::Arch => "inline patching is only enabled on x86_64",
        }
    }
}

/// Whether [`patch`] can patch on this architecture.
pub const fn supported() -> bool {
    arch::SUPPORTED
}

/// How many bytes of whole, relocatable instructions cover at least `min` bytes of `code`.
pub fn prologue_len(code: &[u8], min: usize) -> Result<usize, Refused> {
    arch::prologue_len(code, min)
}

fn page() -> usize {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p <= 0 { 4096 } else { p as usize }
}

/// Longest displaced prologue any architecture module accepts (bytes read at the target).
const WINDOW: usize = 32;

/// Redirects `target` to `hook`; returns the trampoline: a function that behaves as the
/// original `target` did.
///
/// # Safety
/// `target` is the entry of a function whose first 32 bytes are readable code; no other
/// thread runs (or is about to run) those bytes; `hook` has the same signature.
pub unsafe fn patch(target: *mut u8, hook: *const c_void) -> Result<*const c_void, Refused> {
    if !arch::SUPPORTED {
        return Err(Refused::Arch);
    }
    // SAFETY: the caller guarantees WINDOW readable bytes of code.
    let code = unsafe { core::slice::from_raw_parts(target as *const u8, WINDOW) };
    let n = arch::prologue_len(code, JMP_LEN)?;
    let mut copy = [0u8; 4 * WINDOW];
    let m = arch::relocate(code, n, &mut copy).ok_or(Refused::Unrelocatable {
        offset: 0,
        opcode: 0,
    })?;
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
    let back = arch::jump(target as usize + n);
    // SAFETY: the page is ours, writable and larger than m + JMP_LEN (m <= 128).
    unsafe {
        core::ptr::copy_nonoverlapping(copy.as_ptr(), t, m);
        core::ptr::copy_nonoverlapping(back.as_ptr(), t.add(m), JMP_LEN);
    }
    arch::sync_icache(t, m + JMP_LEN);
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
    let jmp = arch::jump(hook as usize);
    // SAFETY: the pages are writable now; n >= JMP_LEN bytes at target are ours to rewrite;
    // the rest of the displaced instructions become the architecture's trap filler (never
    // reached: the jump leaves first).
    unsafe {
        core::ptr::copy_nonoverlapping(jmp.as_ptr(), target, JMP_LEN);
        for i in JMP_LEN..n {
            *target.add(i) = arch::FILL;
        }
    }
    arch::sync_icache(target, n);
    // SAFETY: as above; back to the text segment's usual protection.
    unsafe { libc::mprotect(start as *mut c_void, len, libc::PROT_READ | libc::PROT_EXEC) };
    Ok(tramp as *const c_void)
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

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
