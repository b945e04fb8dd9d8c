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

/// The `i`-th 8-byte word of `b`, little-endian, zero-padded past its end.
#[inline]
pub fn word(b: &[u8], i: usize) -> u64 {
    let at = i * 8;
    let load = |from: usize| {
        let mut w = [0u8; 8];
        if let Some(s) = b.get(from..from + 8) {
            w.copy_from_slice(s);
        }
        u64::from_le_bytes(w)
    };
    if at + 8 <= b.len() {
        return load(at);
    }
    let tail = b.len().saturating_sub(at);
    if tail == 0 {
        return 0;
    }
    if b.len() >= 8 {
        // The last 8 bytes end with the tail: shift the bytes before it out.
        return load(b.len() - 8) >> (8 * (8 - tail));
    }
    let mut w = 0u64;
    for (j, &c) in b.iter().enumerate() {
        w |= u64::from(c) << (8 * j);
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Words are the bytes, little-endian, zero-padded: the overlapping tail load gives what a
    /// byte-by-byte build gives.
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
