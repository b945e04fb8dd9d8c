//! Building blocks of the per-process memos (`allow_cache.rs`, `cwd_cache.rs`): a seqlock whose
//! writer only ever *tries* to take it, and byte strings packed into atomic words.
//!
//! Rules for code in the library hold: no allocation, no lock anyone waits on (a signal
//! handler or a thread racing a writer just misses), fork-safe (a lock a fork caught mid-write
//! stays odd in the child and is never read or written again).

use core::sync::atomic::{AtomicU32, Ordering, fence};

/// Even: stable; odd: being written. Bumped by 2 per write.
pub struct SeqLock(AtomicU32);

impl Default for SeqLock {
    fn default() -> SeqLock {
        SeqLock::new()
    }
}

impl SeqLock {
    pub const fn new() -> SeqLock {
        SeqLock(AtomicU32::new(0))
    }

    /// Runs `write` under the lock if it can be taken at once; false (nothing written) when a
    /// write is under way.
    pub fn try_write(&self, write: impl FnOnce()) -> bool {
        let cur = self.0.load(Ordering::Relaxed);
        if cur & 1 != 0
            || self
                .0
                .compare_exchange(
                    cur,
                    cur.wrapping_add(1),
                    Ordering::Acquire,
                    Ordering::Relaxed,
                )
                .is_err()
        {
            return false;
        }
        fence(Ordering::Release);
        write();
        self.0.store(cur.wrapping_add(2), Ordering::Release);
        true
    }

    /// `read`'s answer, if no write was under way or overlapped it (relaxed loads inside
    /// `read` are ordered by the lock).
    pub fn read<T>(&self, read: impl FnOnce() -> Option<T>) -> Option<T> {
        let before = self.0.load(Ordering::Acquire);
        if before & 1 != 0 {
            return None;
        }
        let r = read()?;
        fence(Ordering::Acquire);
        (self.0.load(Ordering::Relaxed) == before).then_some(r)
    }

    /// Leaves the lock as a fork that caught a writer would (tests).
    #[cfg(test)]
    pub fn bump(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }
}

/// Calls `f(i, word)` for each 8-byte word of `b` in order, little-endian, the last one
/// zero-padded past the end of `b`: one unaligned load per word (the tail is the last 8 bytes
/// shifted), no bounds checks. A memo lookup runs this twice per open (hash, then compare), so
/// it is on the allow path of every memoised open.
#[inline(always)]
pub fn each_word(b: &[u8], mut f: impl FnMut(usize, u64)) {
    let len = b.len();
    if len == 0 {
        return;
    }
    if len < 8 {
        let mut w = [0u8; 8];
        w[..len].copy_from_slice(b);
        f(0, u64::from_le_bytes(w));
        return;
    }
    let n = len.div_ceil(8);
    let p = b.as_ptr();
    for i in 0..n - 1 {
        // SAFETY: i * 8 + 8 <= (n - 1) * 8 < len.
        f(
            i,
            u64::from_le(unsafe { p.add(i * 8).cast::<u64>().read_unaligned() }),
        );
    }
    // SAFETY: len >= 8, so the last 8 bytes are in `b`; they end with word n-1's bytes, and the
    // shift drops the (n * 8 - len) bytes before them that belong to word n-2.
    let last = u64::from_le(unsafe { p.add(len - 8).cast::<u64>().read_unaligned() });
    f(n - 1, last >> ((n * 8 - len) * 8));
}

/// The `i`-th 8-byte word of `b`, little-endian, zero-padded past its end (0 past the last).
#[cfg(test)]
pub fn word(b: &[u8], i: usize) -> u64 {
    let mut out = 0;
    each_word(b, |j, w| {
        if j == i {
            out = w;
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Words are the bytes, little-endian, zero-padded: the overlapping tail load gives what a
    /// byte-by-byte build gives, and `each_word` visits exactly `len.div_ceil(8)` of them.
    #[test]
    fn words_are_zero_padded_little_endian() {
        let p: Vec<u8> = (1..=40u8).collect();
        for len in 0..=p.len() {
            let path = &p[..len];
            for i in 0..len.div_ceil(8) + 1 {
                let mut want = 0u64;
                for (j, &c) in path.iter().skip(i * 8).take(8).enumerate() {
                    want |= u64::from(c) << (8 * j);
                }
                assert_eq!(word(path, i), want, "len {len} word {i}");
            }
            let mut seen = Vec::new();
            each_word(path, |i, w| seen.push((i, w)));
            let want: Vec<(usize, u64)> =
                (0..len.div_ceil(8)).map(|i| (i, word(path, i))).collect();
            assert_eq!(seen, want, "len {len}");
        }
    }

    #[test]
    fn a_read_overlapping_a_write_or_a_stuck_lock_misses() {
        let l = SeqLock::new();
        assert_eq!(l.read(|| Some(1)), Some(1));
        // A write inside the read: the read's answer is thrown away.
        assert_eq!(l.read(|| Some(l.try_write(|| {}))), None);
        assert!(l.try_write(|| {}));
        l.bump();
        assert!(!l.try_write(|| panic!("a stuck lock must not be written")));
        assert_eq!(l.read(|| Some(1)), None);
    }
}
