//! Test-time generation of secret-shaped strings (random characters of the right alphabet),
//! shared by the integration tests. Seed from `GUARD_SECRETS_SEED` to replay a failure.

#![allow(dead_code)]

use std::hash::{BuildHasher, RandomState};

pub const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
pub const UPPER_B32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
pub const LOWER_HEX: &[u8] = b"0123456789abcdef";
pub const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
pub const URLSAFE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

pub struct Rng {
    state: u64,
    pub seed: u64,
}

impl Rng {
    pub fn from_env() -> Self {
        let seed = std::env::var("GUARD_SECRETS_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| RandomState::new().hash_one(0x5eed_u64));
        Rng { state: seed, seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Random characters from `alphabet`, redrawn if the placeholder allowlist would treat
    /// them as made up (8 identical or ascending characters in a row).
    pub fn string(&mut self, alphabet: &[u8], len: usize) -> String {
        let allow = guard_secrets::Allowlist::default();
        loop {
            let s: String = (0..len)
                .map(|_| alphabet[(self.next_u64() % alphabet.len() as u64) as usize] as char)
                .collect();
            if !allow.is_placeholder(s.as_bytes()) {
                return s;
            }
        }
    }

    /// Secrets of several detectors, each with a line of context that places it.
    pub fn secret_lines(&mut self) -> Vec<(String, String)> {
        let gh = ["gh", "p_", &self.string(ALNUM, 36)].concat();
        let aws = ["AK", "IA", &self.string(UPPER_B32, 16)].concat();
        let awss = self.string(B64, 40);
        let npm = ["np", "m_", &self.string(ALNUM, 36)].concat();
        let dop = ["do", "p_v1_", &self.string(LOWER_HEX, 64)].concat();
        let ant = ["sk-", "ant-", "api03-", &self.string(URLSAFE, 93), "AA"].concat();
        let pw = [&self.string(ALNUM, 8), "7", &self.string(ALNUM, 7)].concat();
        vec![
            (format!("GITHUB_TOKEN={gh}\n"), gh),
            (format!("aws_access_key_id = {aws}\n"), aws),
            (format!("aws_secret_access_key = {awss}\n"), awss),
            (format!("//registry.npmjs.org/:_authToken={npm}\n"), npm),
            (format!("DO_TOKEN=\"{dop}\"\n"), dop),
            (format!("ANTHROPIC_API_KEY={ant}\n"), ant),
            (format!("DB_URL=mysql://app:{pw}@db:3306/app\n"), pw),
        ]
    }
}
