//! Test-time generation of secret-shaped data: random characters of the right alphabet and
//! length, so that no real-looking secret is ever committed as a literal.
//!
//! The seed is random per run (printed in assertion messages); set `GUARD_SECRETS_SEED` to
//! replay a failure.

use std::hash::{BuildHasher, RandomState};

pub const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
pub const UPPER_B32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
pub const UPPER_NUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
pub const LOWER_HEX: &[u8] = b"0123456789abcdef";
pub const LETTERS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
pub const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
pub const URLSAFE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
pub const DIGITS: &[u8] = b"0123456789";

/// SplitMix64: tiny, good enough for test data, no dependency.
pub struct Rng {
    state: u64,
    seed: u64,
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng { state: seed, seed }
    }

    pub fn from_env() -> Self {
        let seed = std::env::var("GUARD_SECRETS_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| RandomState::new().hash_one(0x5eed_u64));
        Rng::new(seed)
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// `len` characters drawn from `alphabet`, re-drawn until the allowlist's made-up-run rule
    /// cannot fire (a real token with 8 identical characters in a row is a one-in-millions
    /// event, and tests must not flake on it).
    pub fn string(&mut self, alphabet: &[u8], len: usize) -> String {
        loop {
            let s: String = (0..len)
                .map(|_| alphabet[self.below(alphabet.len())] as char)
                .collect();
            if !crate::Allowlist::default().is_placeholder(s.as_bytes()) {
                return s;
            }
        }
    }
}
