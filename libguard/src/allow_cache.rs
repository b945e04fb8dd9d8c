//! A per-process memo of the file accesses the policy allows, for the open fast path.
//!
//! Evaluating a path against the default policy costs a few thousand instructions (hash lookups
//! for every ancestor directory, then the candidate rules' globs); programs open the same files
//! again and again (module resolution, headers, config files). When every file verdict of the
//! loaded ruleset depends only on (path, access) — no file rule has a `when` on the cwd or the
//! environment, which can change within a process — an `allow` verdict is remembered here and
//! the next identical access skips the evaluation.
//!
//! Only `allow` is memoised, and only the *lexical verdict*: everything else the fast path does
//! (self-protection, `openat2` without symlinks, content detection after the open) still runs on
//! every call. A miss is always safe: the caller evaluates as if the memo did not exist.
//!
//! Rules for code in the library hold: no allocation (a fixed table in `.bss`), no lock (each
//! slot is a seqlock whose writer only ever *tries* to take it, so a signal handler or a thread
//! racing a writer just misses), fork-safe (a child inherits valid entries; a slot a fork caught
//! mid-write stays odd and is never read or written again), and the full key is compared, so a
//! hash collision can only cost a miss, never allow a different path.

use crate::memo::{SeqLock, word};
use core::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use guard_proto::FileAccess;

/// Paths up to this many bytes are memoised (longer ones are always evaluated).
const KEY_WORDS: usize = 32;
const KEY_MAX: usize = KEY_WORDS * 8;
const SLOTS: usize = 512;

struct Slot {
    seq: SeqLock,
    /// `len | access << 16`; 0 = empty.
    tag: AtomicU32,
    words: [AtomicU64; KEY_WORDS],
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY_WORD: AtomicU64 = AtomicU64::new(0);
#[allow(clippy::declare_interior_mutable_const)]
const EMPTY_SLOT: Slot = Slot {
    seq: SeqLock::new(),
    tag: AtomicU32::new(0),
    words: [EMPTY_WORD; KEY_WORDS],
};
static TABLE: [Slot; SLOTS] = [EMPTY_SLOT; SLOTS];

const UNKNOWN: u8 = 0;
const ON: u8 = 1;
const OFF: u8 = 2;
static ENABLED: AtomicU8 = AtomicU8::new(UNKNOWN);

/// Whether file verdicts depend only on (path, access) in this process (see the module doc):
/// when false, evaluating a file access needs the current directory and the environment.
pub fn enabled() -> bool {
    match ENABLED.load(Ordering::Relaxed) {
        ON => true,
        OFF => false,
        _ => {
            // Idempotent: racing threads compute the same answer from the same mapped ruleset.
            let on = crate::state::ruleset().is_some_and(|rs| rs.file_verdicts_are_path_only());
            ENABLED.store(if on { ON } else { OFF }, Ordering::Relaxed);
            on
        }
    }
}

/// Key class of the scope answers (`scope`), next to the access bits of allow verdicts.
const SCOPE_CLASS: u32 = 0x80;

/// Where `(path, class)` lives: its slot, its tag (`len | class << 16`; the stored tag adds the
/// value in bits 24..) and how many words its path has. Computed from the bytes in place:
/// building a zeroed copy of the key first (and a `memcpy` per word) was most of the cost.
struct Key {
    n: usize,
    tag: u32,
    slot: usize,
}

fn key(path: &[u8], class: u32) -> Option<Key> {
    if path.is_empty() || path.len() > KEY_MAX {
        return None;
    }
    let n = path.len().div_ceil(8);
    let mut h: u64 = 0x243f_6a88_85a3_08d3 ^ path.len() as u64 ^ u64::from(class) << 32;
    for i in 0..n {
        h = (h ^ word(path, i))
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(29);
    }
    let tag = path.len() as u32 | class << 16;
    let slot = (h ^ (h >> 32)) as usize % SLOTS;
    Some(Key { n, tag, slot })
}

/// The value stored for `(path, class)`, if any.
fn get(path: &[u8], class: u32) -> Option<u32> {
    let k = key(path, class)?;
    let s = &TABLE[k.slot];
    s.seq.read(|| {
        let tag = s.tag.load(Ordering::Relaxed);
        let same = tag & 0x00ff_ffff == k.tag
            && (0..k.n).all(|i| s.words[i].load(Ordering::Relaxed) == word(path, i));
        same.then_some(tag >> 24)
    })
}

/// Stores `value` (8 bits) for `(path, class)`. Gives up silently when the slot is being written.
fn put(path: &[u8], class: u32, value: u32) {
    let Some(k) = key(path, class) else {
        return;
    };
    let s = &TABLE[k.slot];
    s.seq.try_write(|| {
        s.tag.store(k.tag | (value & 0xff) << 24, Ordering::Relaxed);
        // Only the key's own words: a reader compares words only when the tag (which holds
        // the length) is its own, and then exactly this many.
        for i in 0..k.n {
            s.words[i].store(word(path, i), Ordering::Relaxed);
        }
    });
}

/// True when `(path, access)` was recorded as allowed in this process.
pub fn allowed(path: &[u8], access: FileAccess) -> bool {
    enabled() && get(path, u32::from(access.bit())).is_some()
}

/// Records that `(path, access)` is allowed.
pub fn remember(path: &[u8], access: FileAccess) {
    if enabled() {
        put(path, u32::from(access.bit()), 1);
    }
}

/// Whether `path` is in the secret-content scope, if this process has recorded it. The scope
/// is a function of the path and the mapped ruleset alone (`content_scope.rs`), so unlike
/// verdicts it may be remembered whatever `when` keys the rules have.
pub fn scope(path: &[u8]) -> Option<bool> {
    get(path, SCOPE_CLASS).map(|v| v == 1)
}

/// Records the scope answer for `path`.
pub fn remember_scope(path: &[u8], in_scope: bool) {
    put(path, SCOPE_CLASS, u32::from(in_scope));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn force_on() {
        ENABLED.store(ON, Ordering::Relaxed);
    }

    /// One test: the table is process-wide and parallel tests would evict each other's keys.
    #[test]
    fn memo_behaviour() {
        force_on();
        remembers_exact_path_and_access_only();
        a_colliding_key_evicts_and_never_aliases();
        a_slot_left_mid_write_is_skipped();
        scope_answers_are_kept_apart_from_verdicts();
    }

    fn scope_answers_are_kept_apart_from_verdicts() {
        let p = b"/home/u/project/notes.md";
        assert_eq!(scope(p), None);
        remember_scope(p, true);
        assert_eq!(scope(p), Some(true));
        assert!(
            !allowed(p, FileAccess::Read),
            "a scope answer is no verdict"
        );
        remember_scope(p, false);
        assert_eq!(scope(p), Some(false));
        remember(p, FileAccess::Read);
        assert!(allowed(p, FileAccess::Read));
        assert_eq!(scope(b"/home/u/project/notes.mdx"), None);
    }

    fn remembers_exact_path_and_access_only() {
        let p = b"/home/u/project/src/main.rs";
        assert!(!allowed(p, FileAccess::Read));
        remember(p, FileAccess::Read);
        assert!(allowed(p, FileAccess::Read));
        assert!(!allowed(p, FileAccess::Write));
        assert!(!allowed(b"/home/u/project/src/main.r", FileAccess::Read));
        assert!(!allowed(b"/home/u/project/src/main.rs2", FileAccess::Read));
        // Too long to memoise: never reported as allowed.
        let long = [b'a'; KEY_MAX + 1];
        remember(&long, FileAccess::Read);
        assert!(!allowed(&long, FileAccess::Read));
    }

    fn a_colliding_key_evicts_and_never_aliases() {
        // Fill far more keys than slots: every lookup is either a true hit or a miss.
        let mut names = Vec::new();
        for i in 0..(SLOTS * 4) {
            names.push(format!("/t/{i}/f"));
        }
        for n in &names {
            remember(n.as_bytes(), FileAccess::Read);
        }
        for n in &names {
            let other = format!("{n}x");
            assert!(!allowed(other.as_bytes(), FileAccess::Read));
        }
        let last = names.last().map(String::as_bytes).unwrap_or(b"");
        assert!(allowed(last, FileAccess::Read));
    }

    fn a_slot_left_mid_write_is_skipped() {
        let p = b"/stuck/slot";
        remember(p, FileAccess::Read);
        let Some(k) = key(p, u32::from(FileAccess::Read.bit())) else {
            panic!("key")
        };
        // As if a fork had caught a writer: the slot stays odd, readers and writers skip it.
        TABLE[k.slot].seq.bump();
        assert!(!allowed(p, FileAccess::Read));
        remember(p, FileAccess::Read);
        assert!(!allowed(p, FileAccess::Read));
        TABLE[k.slot].seq.bump();
    }
}
