//! The address→host-name table filled by the `getaddrinfo` hook, so `connect` rules can match
//! host names. Fixed size, lock-free (a seqlock per slot, atomics only), oldest entry overwritten;
//! a writer that finds its slot busy just skips the store (the table is a best-effort hint).

use core::net::IpAddr;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

const SLOTS: usize = 64;
const NAME_WORDS: usize = 16; // 128 bytes of name
pub const NAME_MAX: usize = NAME_WORDS * 8;

struct Slot {
    seq: AtomicU64,
    ip: [AtomicU64; 2],
    /// Family in the low byte, name length above it.
    meta: AtomicU64,
    name: [AtomicU64; NAME_WORDS],
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Slot = Slot {
    seq: AtomicU64::new(0),
    ip: [AtomicU64::new(0), AtomicU64::new(0)],
    meta: AtomicU64::new(0),
    name: [const { AtomicU64::new(0) }; NAME_WORDS],
};

static TABLE: [Slot; SLOTS] = [EMPTY; SLOTS];
static NEXT: AtomicUsize = AtomicUsize::new(0);

fn ip_words(ip: IpAddr) -> (u64, [u64; 2]) {
    match ip {
        IpAddr::V4(v4) => (4, [u32::from(v4) as u64, 0]),
        IpAddr::V6(v6) => {
            let b = u128::from(v6);
            (6, [(b >> 64) as u64, b as u64])
        }
    }
}

/// Remembers that `name` resolved to `ip` (the name lower-cased, trailing dot dropped).
pub fn remember(name: &[u8], ip: IpAddr) {
    let name = name.strip_suffix(b".").unwrap_or(name);
    if name.is_empty() || name.len() > NAME_MAX {
        return;
    }
    let idx = NEXT.fetch_add(1, Ordering::Relaxed) % SLOTS;
    let Some(slot) = TABLE.get(idx) else { return };
    let s = slot.seq.load(Ordering::Relaxed);
    if s & 1 == 1
        || slot
            .seq
            .compare_exchange(s, s.wrapping_add(1), Ordering::Acquire, Ordering::Relaxed)
            .is_err()
    {
        return;
    }
    let (fam, w) = ip_words(ip);
    slot.ip[0].store(w[0], Ordering::Relaxed);
    slot.ip[1].store(w[1], Ordering::Relaxed);
    slot.meta
        .store(fam | ((name.len() as u64) << 8), Ordering::Relaxed);
    for (i, word) in slot.name.iter().enumerate() {
        let mut b = [0u8; 8];
        for (j, byte) in b.iter_mut().enumerate() {
            if let Some(c) = name.get(i * 8 + j) {
                *byte = c.to_ascii_lowercase();
            }
        }
        word.store(u64::from_le_bytes(b), Ordering::Relaxed);
    }
    slot.seq.store(s.wrapping_add(2), Ordering::Release);
}

/// The most recent name that resolved to `ip`, copied into `out`; returns its length.
pub fn lookup(ip: IpAddr, out: &mut [u8; NAME_MAX]) -> Option<usize> {
    let (fam, w) = ip_words(ip);
    let newest = NEXT.load(Ordering::Relaxed);
    for k in 0..SLOTS {
        let idx = (newest.wrapping_sub(1).wrapping_sub(k)) % SLOTS;
        let Some(slot) = TABLE.get(idx) else { continue };
        let s1 = slot.seq.load(Ordering::Acquire);
        if s1 == 0 || s1 & 1 == 1 {
            continue;
        }
        let meta = slot.meta.load(Ordering::Relaxed);
        if meta & 0xff != fam
            || slot.ip[0].load(Ordering::Relaxed) != w[0]
            || slot.ip[1].load(Ordering::Relaxed) != w[1]
        {
            continue;
        }
        let len = ((meta >> 8) as usize).min(NAME_MAX);
        for (i, word) in slot.name.iter().enumerate() {
            let b = word.load(Ordering::Relaxed).to_le_bytes();
            if let Some(dst) = out.get_mut(i * 8..i * 8 + 8) {
                dst.copy_from_slice(&b);
            }
        }
        core::sync::atomic::fence(Ordering::Acquire);
        if slot.seq.load(Ordering::Relaxed) == s1 {
            return Some(len);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_and_overwrites() {
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        remember(b"Example.COM.", ip);
        let mut out = [0u8; NAME_MAX];
        let n = lookup(ip, &mut out).unwrap();
        assert_eq!(&out[..n], b"example.com");
        remember(b"other.test", ip);
        let n = lookup(ip, &mut out).unwrap();
        assert_eq!(&out[..n], b"other.test");
        assert!(lookup("10.9.9.9".parse().unwrap(), &mut out).is_none());
        for i in 0..200u32 {
            remember(b"filler", IpAddr::V4(i.into()));
        }
        assert!(
            lookup(ip, &mut out).is_none(),
            "oldest entries are overwritten"
        );
    }
}
