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

use crate::memo::{SeqLock, each_word};
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

/// What one slot's value byte says of its path: the accesses recorded as allowed (the
/// `FileAccess` bits, 1..4), and the secret-content scope answer when it was recorded. One slot
/// per path holds both, so an open that needs both answers hashes and compares its name once.
const SCOPE_KNOWN: u32 = 0x40;
const SCOPE_IN: u32 = 0x80;

/// Where `path` lives: its slot, its tag (its length; the stored tag adds the value in bits
/// 24..). Computed from the bytes in place: building a zeroed copy of the key first (and a
/// `memcpy` per word) was most of the cost. `KEY_MAX` bounds the length, so its words fit a
/// slot.
struct Key {
    tag: u32,
    slot: usize,
}

fn key(path: &[u8]) -> Option<Key> {
    if path.is_empty() || path.len() > KEY_MAX {
        return None;
    }
    let mut h: u64 = 0x243f_6a88_85a3_08d3 ^ path.len() as u64;
    each_word(path, |_, w| {
        h = (h ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29);
    });
    let slot = (h ^ (h >> 32)) as usize % SLOTS;
    Some(Key {
        tag: path.len() as u32,
        slot,
    })
}

/// Whether slot `s`, whose stored tag is `tag`, holds `path` (key `k`). Every word is compared
/// (no early exit): a hit, the common case, reads them all anyway, and the loop stays
/// branch-free. The tag holds the length, so the path's words are the slot's.
fn holds(s: &Slot, tag: u32, k: &Key, path: &[u8]) -> bool {
    if tag & 0x00ff_ffff != k.tag {
        return false;
    }
    let mut diff = 0;
    each_word(path, |i, w| {
        diff |= s.words[i & (KEY_WORDS - 1)].load(Ordering::Relaxed) ^ w;
    });
    diff == 0
}

/// The value byte stored for `path`, if any.
fn get(path: &[u8]) -> Option<u32> {
    let k = key(path)?;
    let s = &TABLE[k.slot];
    s.seq.read(|| {
        let tag = s.tag.load(Ordering::Relaxed);
        holds(s, tag, &k, path).then_some(tag >> 24)
    })
}

/// Stores `update(old)` for `path`, `old` being the value already held for that very path (0
/// if the slot holds another path or none, which is then evicted). Gives up silently when the
/// slot is being written.
fn put(path: &[u8], update: impl FnOnce(u32) -> u32) {
    let Some(k) = key(path) else {
        return;
    };
    let s = &TABLE[k.slot];
    s.seq.try_write(|| {
        let tag = s.tag.load(Ordering::Relaxed);
        let same = holds(s, tag, &k, path);
        let old = if same { tag >> 24 } else { 0 };
        s.tag
            .store(k.tag | (update(old) & 0xff) << 24, Ordering::Relaxed);
        // Only the key's own words: a reader compares words only when the tag (which holds
        // the length) is its own, and then exactly this many.
        if !same {
            each_word(path, |i, w| {
                s.words[i & (KEY_WORDS - 1)].store(w, Ordering::Relaxed)
            });
        }
    });
}

/// What this process has recorded about one path (`lookup`).
#[derive(Clone, Copy, Default)]
pub struct Known(u32);

impl Known {
    /// True when `access` to the path was recorded as allowed.
    pub fn allows(self, access: FileAccess) -> bool {
        self.0 & u32::from(access.bit()) != 0
    }

    /// Whether the path is in the secret-content scope, if recorded (`scope`).
    pub fn scope(self) -> Option<bool> {
        (self.0 & SCOPE_KNOWN != 0).then_some(self.0 & SCOPE_IN != 0)
    }
}

/// Everything recorded about `path`, in one lookup.
pub fn lookup(path: &[u8]) -> Known {
    Known(get(path).unwrap_or(0))
}

/// True when `(path, access)` was recorded as allowed in this process.
pub fn allowed(path: &[u8], access: FileAccess) -> bool {
    lookup(path).allows(access)
}

/// Records that `(path, access)` is allowed. Only when verdicts depend on the path alone
/// (`enabled`): otherwise no access bit is ever stored, so `allows` stays false.
pub fn remember(path: &[u8], access: FileAccess) {
    if enabled() {
        put(path, |old| old | u32::from(access.bit()));
    }
}

/// Whether `path` is in the secret-content scope, if this process has recorded it. The scope
/// is a function of the path and the mapped ruleset alone (`content_scope.rs`), so unlike
/// verdicts it may be remembered whatever `when` keys the rules have.
pub fn scope(path: &[u8]) -> Option<bool> {
    lookup(path).scope()
}

/// Records the scope answer for `path`.
pub fn remember_scope(path: &[u8], in_scope: bool) {
    put(path, |old| {
        (old & !SCOPE_IN) | SCOPE_KNOWN | if in_scope { SCOPE_IN } else { 0 }
    });
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
        // One slot holds both answers: neither write erases the other.
        assert_eq!(scope(p), Some(false));
        remember_scope(p, true);
        assert!(allowed(p, FileAccess::Read) && !allowed(p, FileAccess::Write));
        assert_eq!(lookup(p).scope(), Some(true));
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
        let Some(k) = key(p) else { panic!("key") };
        // As if a fork had caught a writer: the slot stays odd, readers and writers skip it.
        TABLE[k.slot].seq.bump();
        assert!(!allowed(p, FileAccess::Read));
        remember(p, FileAccess::Read);
        assert!(!allowed(p, FileAccess::Read));
        TABLE[k.slot].seq.bump();
    }
}
