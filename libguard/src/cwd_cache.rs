//! The process's current directory, remembered for the open fast path.
//!
//! A relative open needs the absolute name to be judged, and `getcwd` is a syscall (~250 ns on
//! the benchmark VM, a quarter of a bare `open`). The directory only changes through `chdir`,
//! `fchdir` (hooked here, and through `syscall()`) and `unshare(CLONE_FS)`; each bumps an epoch
//! *after* the change, and a remembered name is used only while the epoch it was taken under
//! is current, so no change is missed by a name read before it.
//!
//! What the memo cannot see: a raw `chdir` syscall (Go with cgo; the cache is off in Go
//! processes) and a rename of the directory or one of its ancestors by someone else. The fast
//! path therefore opens the caller's name under the remembered directory, as an absolute name
//! (`path::fast_open`), never the relative one: with a stale name the program may get the file
//! that name now denotes, but never a file other than the one the policy was asked about.
//!
//! Rules for code in the library: no allocation, no lock (a seqlock the writer only tries to
//! take; a busy slot is a miss), fork-safe (the child has the same directory and a copy of the
//! memo), vfork-safe: a vfork child shares this memo but not the parent's directory, so a
//! `chdir` there bumps the shared epoch (the parent asks the kernel again), and every exec hook
//! bumps it too (`hooks/exec.rs`), so a name the child remembered after its own `chdir` never
//! outlives the child's exec. (A vfork child that changes directory, opens a relative name and
//! then `_exit`s without any exec would leave its directory remembered; no runtime we know
//! does that: they exec or report the exec's failure.)

use crate::memo::{SeqLock, each_word};
use crate::path::PathBuf;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

const WORDS: usize = 128;
const MAX: usize = WORDS * 8;

static EPOCH: AtomicU64 = AtomicU64::new(1);
static SEQ: SeqLock = SeqLock::new();
/// The epoch the stored name was taken under (0: none).
static TAKEN: AtomicU64 = AtomicU64::new(0);
static LEN: AtomicU32 = AtomicU32::new(0);
static NAME: [AtomicU64; WORDS] = [const { AtomicU64::new(0) }; WORDS];

/// Called after anything that may have changed the current directory.
pub fn invalidate() {
    EPOCH.fetch_add(1, Ordering::AcqRel);
}

fn usable() -> bool {
    // Go changes directory with raw syscalls that no hook sees.
    crate::state::cfg().runtime != "go"
}

/// The current directory into `out`: the remembered name while it is current, else `getcwd`
/// (remembered for next time). False when the directory cannot be named.
pub fn get(out: &mut PathBuf) -> bool {
    if !usable() {
        return crate::path::getcwd(out);
    }
    let epoch = EPOCH.load(Ordering::Acquire);
    // Not zeroed (1 KiB per relative open): only the words the name covers are written and read.
    let mut buf = [const { core::mem::MaybeUninit::<u64>::uninit() }; WORDS];
    let remembered = SEQ.read(|| {
        let len = LEN.load(Ordering::Relaxed) as usize;
        if TAKEN.load(Ordering::Relaxed) != epoch || len == 0 || len > MAX {
            return None;
        }
        for (slot, w) in buf.iter_mut().zip(NAME.iter()).take(len.div_ceil(8)) {
            slot.write(u64::from_le(w.load(Ordering::Relaxed)));
        }
        Some(len)
    });
    if let Some(len) = remembered {
        // SAFETY: the first len.div_ceil(8) words were written above (len <= MAX), so the
        // first `len` bytes are initialised; the words were stored little-endian and read back
        // as such, so the bytes are the name's.
        let name = unsafe { core::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), len) };
        out.clear();
        if out.push(name) {
            return true;
        }
    }
    if !crate::path::getcwd(out) {
        return false;
    }
    store(out.as_bytes(), epoch);
    true
}

fn store(name: &[u8], epoch: u64) {
    if name.is_empty() || name.len() > MAX {
        return;
    }
    SEQ.try_write(|| {
        each_word(name, |i, w| {
            if let Some(slot) = NAME.get(i) {
                slot.store(w, Ordering::Relaxed);
            }
        });
        LEN.store(name.len() as u32, Ordering::Relaxed);
        TAKEN.store(epoch, Ordering::Relaxed);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One test: the memo is process-wide.
    #[test]
    fn a_name_is_used_only_under_the_epoch_it_was_taken() {
        let e = EPOCH.load(Ordering::Acquire);
        store(b"/stale/name", e);
        let mut out = PathBuf::new();
        // (cfg().runtime is "native" in unit tests.)
        assert!(get(&mut out));
        assert_eq!(
            out.as_bytes(),
            b"/stale/name",
            "current epoch: the memo answers"
        );
        invalidate();
        assert!(get(&mut out));
        let mut real = PathBuf::new();
        assert!(crate::path::getcwd(&mut real));
        assert_eq!(
            out.as_bytes(),
            real.as_bytes(),
            "after a change: the kernel's answer"
        );
        // A long name round-trips through the words.
        let long: Vec<u8> = (0..700).map(|i| b'a' + (i % 26) as u8).collect();
        let e = EPOCH.load(Ordering::Acquire);
        store(&long, e);
        assert!(get(&mut out));
        assert_eq!(out.as_bytes(), &long[..]);
        invalidate();
    }
}
