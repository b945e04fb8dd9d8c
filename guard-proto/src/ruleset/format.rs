//! The binary layout of a compiled ruleset, shared by the writer and the reader.
//!
//! All integers are little-endian. The file is:
//!
//! ```text
//! 0   header (64 bytes)
//!       0  magic  [u8; 8] = "GRDRULE\0"
//!       8  format version u32
//!      12  header length u32 (= 64)
//!      16  total length u64 (the whole file)
//!      24  checksum u64 over bytes[64..image] (see `checksum`; `image` = the offset of the
//!          last section, `SEC_SECRET_IMAGE`, which every other section ends before)
//!      32  section count u32 (= SECTION_COUNT)
//!      36  flags u32 (0)
//!      40  checksum u64 over bytes[image..total] (the detector image and the final padding),
//!          checked when the image is first used, not at load: a process that never scans
//!          content never reads those ~80 KB (`Ruleset::secret_image`)
//!      48..64 reserved (0)
//! 64  section table: SECTION_COUNT entries of { offset u64, length u64 }
//!     then the sections, each starting at an 8-byte-aligned offset.
//! ```
//!
//! Sections are arrays of fixed-size records (sizes below) or the string blob. A string is a
//! `StrRef` { offset u32, len u32 } into the blob. A range is { start u32, count u32 } into a
//! record section. Hash tables are two sections: buckets (u32 starts, a power of two plus one)
//! and entries sorted by bucket ({ hash u64, key StrRef, values: range into LISTS }), one entry
//! per distinct key.
//!
//! Reads go through the `rd_*` helpers, which return 0 out of bounds instead of panicking: the
//! loader validates everything first, so the fallback never fires on an accepted file, but a
//! logic slip cannot turn into an out-of-bounds read.

pub const MAGIC: [u8; 8] = *b"GRDRULE\0";
/// 2: secret records carry the entropy floor; META carries the secret scan scope; all_args
/// patterns carry their brace group. 3: the base-prefix index (`SEC_BPFX_*`). 4: the detector
/// image has its own checksum (header 40..48), outside the one checked at load.
pub const FORMAT_VERSION: u32 = 4;
/// Header offset of the detector image's checksum.
pub const IMAGE_SUM_AT: usize = 40;
pub const HEADER_LEN: usize = 64;
pub const SECTION_ENTRY_LEN: usize = 16;

pub const SEC_STRINGS: usize = 0;
pub const SEC_META: usize = 1;
pub const SEC_RULES: usize = 2;
pub const SEC_PATS: usize = 3;
pub const SEC_NETS: usize = 4;
pub const SEC_PORTS: usize = 5;
pub const SEC_LISTS: usize = 6;
pub const SEC_ANCHOR_B: usize = 7;
pub const SEC_ANCHOR_E: usize = 8;
pub const SEC_BASE_B: usize = 9;
pub const SEC_BASE_E: usize = 10;
pub const SEC_EXT_B: usize = 11;
pub const SEC_EXT_E: usize = 12;
pub const SEC_PROG_B: usize = 13;
pub const SEC_PROG_E: usize = 14;
pub const SEC_VOPT_B: usize = 15;
pub const SEC_VOPT_E: usize = 16;
pub const SEC_SECRETS: usize = 17;
/// File globs `**/.../HEAD*` whose last component starts with a literal of at least
/// [`BASE_PREFIX_LEN`] bytes, keyed by those first bytes (the basename must start with them).
pub const SEC_BPFX_B: usize = 18;
pub const SEC_BPFX_E: usize = 19;
/// The detector set precompiled by the policy compiler (guard-secrets' `Detectors::to_image`:
/// minimised keywords, prefilter tables), opaque bytes here; empty when absent. libguard maps
/// it instead of building the set at a process's first scanned read.
pub const SEC_SECRET_IMAGE: usize = 20;

/// Where the bytes the load-time checksum covers end: the detector image's offset as the
/// section table gives it, when that lies between the table and the end of the file; else the
/// end of the file (the writer always puts the image last; `Ruleset::load` then checks that
/// every other section ends before it).
pub fn main_end(bytes: &[u8]) -> usize {
    let table_end = HEADER_LEN + SECTION_COUNT * SECTION_ENTRY_LEN;
    let off = rd_u64(bytes, HEADER_LEN + SEC_SECRET_IMAGE * SECTION_ENTRY_LEN);
    if off >= table_end as u64 && off <= bytes.len() as u64 {
        off as usize
    } else {
        bytes.len()
    }
}
pub const SECTION_COUNT: usize = 21;

/// Key length of the base-prefix index.
pub const BASE_PREFIX_LEN: usize = 3;

/// Record size of each section (1 for byte sections).
pub const RECORD_SIZE: [usize; SECTION_COUNT] = [
    1, // strings
    META_LEN, RULE_LEN, PAT_LEN, NET_LEN, 4, // ports: lo u16, hi u16
    4, // lists: u32
    4, // buckets
    ENTRY_LEN, 4, ENTRY_LEN, 4, ENTRY_LEN, 4, ENTRY_LEN, 4, ENTRY_LEN, SECRET_LEN, 4, ENTRY_LEN,
    1, // secret image: bytes
];

// META (one record)
pub const META_LEN: usize = 104;
pub const META_NAME: usize = 0;
pub const META_DEFAULT: usize = 8;
pub const META_MODE: usize = 9;
pub const META_UNGUARDABLE: usize = 10;
pub const META_ASK_TIMEOUT: usize = 12;
pub const META_ENV_STRIP: usize = 16; // range into PATS
pub const META_ENV_KEEP: usize = 24; // range into PATS
pub const META_FILE_ALWAYS: usize = 32; // range into LISTS (rule indices)
pub const META_CONNECT_RULES: usize = 40; // range into LISTS
pub const META_HTTP_RULES: usize = 48; // range into LISTS
pub const META_REGEX_COUNT: usize = 56;
pub const META_FILE_ALL: usize = 64; // range into LISTS
pub const META_EXEC_ALL: usize = 72; // range into LISTS
/// Longest key in the anchor table: longer prefixes of a path cannot hit it.
pub const META_MAX_ANCHOR: usize = 80;
/// `[secrets] scope`: path globs (range into PATS) whose files content detection inspects.
pub const META_SECRET_SCOPE: usize = 88;
/// `[secrets] exclude`: path globs (range into PATS) taken out of the scope.
pub const META_SECRET_EXCLUDE: usize = 96;

// RULES
pub const RULE_LEN: usize = 128;
pub const RULE_ID: usize = 0;
pub const RULE_REASON: usize = 8;
pub const RULE_TAGS: usize = 16;
pub const RULE_SOURCE: usize = 24;
pub const RULE_LINE: usize = 32;
pub const RULE_KIND: usize = 36;
pub const RULE_DECISION: usize = 37;
pub const RULE_ACCESS: usize = 38;
pub const RULE_FLAGS: usize = 39;
pub const RULE_GQL_OPS: usize = 40;
/// Nine ranges into PATS (or NETS/PORTS for connect slots B/C), 8 bytes each.
pub const RULE_RANGES: usize = 48;
pub const RULE_RANGE_COUNT: usize = 9;

/// Range slots. Their meaning depends on the rule kind:
/// file: A include globs, B exclude globs; exec: A program, B subcommand words, C any_arg,
/// D all_args; connect: A host globs, B NETS, C PORTS; http: A hosts, B methods, C paths,
/// D body_contains, E body_regex, F graphql field names.
pub const SLOT_A: usize = 0;
pub const SLOT_B: usize = 1;
pub const SLOT_C: usize = 2;
pub const SLOT_D: usize = 3;
pub const SLOT_E: usize = 4;
pub const SLOT_F: usize = 5;
/// Pairs of PATS: variable name, value glob.
pub const SLOT_WHEN_ENV: usize = 6;
pub const SLOT_WHEN_CWD: usize = 7;
pub const SLOT_WHEN_AGENT: usize = 8;

pub const KIND_FILE: u8 = 1;
pub const KIND_EXEC: u8 = 2;
pub const KIND_CONNECT: u8 = 3;
pub const KIND_HTTP: u8 = 4;

/// The rule's `when.workspace` did not hold for the compile context: it never matches.
pub const FLAG_INACTIVE: u8 = 1;

pub const GQL_QUERY: u8 = 1;
pub const GQL_MUTATION: u8 = 2;
pub const GQL_SUBSCRIPTION: u8 = 4;

// PATS
pub const PAT_LEN: usize = 16;
pub const PAT_TEXT: usize = 0;
/// For regex patterns: the dense regex id (for `RegexCache`).
pub const PAT_AUX: usize = 8;
pub const PAT_KIND: usize = 12;
/// u16: length of the pattern's literal head that ends before its last `/` ahead of the first
/// wildcard (whole length for literals); compared with memcmp before the glob matcher runs.
pub const PAT_LIT: usize = 14;
/// u8 flags (`PAT_FLAG_*`).
pub const PAT_FLAGS: usize = 13;
/// This pattern is another alternative of the previous one (the brace expansions of one
/// `all_args` entry form one group: some argument must match some member of every group).
pub const PAT_FLAG_ALT: u8 = 1;

pub const PAT_GLOB_PATH: u8 = 1;
pub const PAT_GLOB_ARG: u8 = 2;
pub const PAT_GLOB_HOST: u8 = 3;
pub const PAT_LITERAL: u8 = 4;
pub const PAT_REGEX: u8 = 5;

// NETS
pub const NET_LEN: usize = 24;
pub const NET_ADDR: usize = 0;
pub const NET_FAMILY: usize = 16;
pub const NET_PREFIX: usize = 17;

// Hash entries
pub const ENTRY_LEN: usize = 24;
pub const ENTRY_HASH: usize = 0;
pub const ENTRY_KEY: usize = 8;
/// Range into LISTS: the rule indices filed under this key, in rule order.
pub const ENTRY_VALUES: usize = 16;

// SECRETS
pub const SECRET_LEN: usize = 48;
pub const SECRET_ID: usize = 0;
pub const SECRET_REGEX_PAT: usize = 8;
pub const SECRET_DECISION: usize = 12;
pub const SECRET_KEYWORDS: usize = 16; // range into PATS
pub const SECRET_SOURCE: usize = 24;
pub const SECRET_LINE: usize = 32;
/// u8 flags (`SECRET_FLAG_*`).
pub const SECRET_FLAGS: usize = 36;
/// f64 bits: minimum Shannon entropy (bits per byte) of the secret span, when flagged.
pub const SECRET_ENTROPY: usize = 40;
pub const SECRET_FLAG_ENTROPY: u8 = 1;

pub const NONE: u32 = u32::MAX;

#[inline]
pub fn rd_u8(b: &[u8], off: usize) -> u8 {
    b.get(off).copied().unwrap_or(0)
}

#[inline]
pub fn rd_u16(b: &[u8], off: usize) -> u16 {
    match off.checked_add(2).and_then(|e| b.get(off..e)) {
        Some(&[x, y]) => u16::from_le_bytes([x, y]),
        _ => 0,
    }
}

#[inline]
pub fn rd_u32(b: &[u8], off: usize) -> u32 {
    match off.checked_add(4).and_then(|e| b.get(off..e)) {
        Some(&[a, c, d, e]) => u32::from_le_bytes([a, c, d, e]),
        _ => 0,
    }
}

#[inline]
pub fn rd_u64(b: &[u8], off: usize) -> u64 {
    match off
        .checked_add(8)
        .and_then(|e| b.get(off..e))
        .and_then(|s| <[u8; 8]>::try_from(s).ok())
    {
        Some(a) => u64::from_le_bytes(a),
        None => 0,
    }
}

/// A sub-slice by (offset, length), empty when out of bounds.
#[inline]
pub fn sub(b: &[u8], off: usize, len: usize) -> &[u8] {
    off.checked_add(len)
        .and_then(|e| b.get(off..e))
        .unwrap_or(&[])
}

/// Checksum of the body: four independent lanes, each folding 16 bytes per step with one
/// 64x64->128-bit multiply (the wyhash "mum" step), so the CPU overlaps the lanes; the tail
/// and the length are folded in at the end. Not cryptographic: it detects corruption and
/// truncation, not tampering (the file's permissions protect against that).
pub fn checksum(data: &[u8]) -> u64 {
    const K: [u64; 4] = [
        0x9E37_79B9_7F4A_7C15,
        0xC2B2_AE3D_27D4_EB4F,
        0x1656_67B1_9E37_79F9,
        0xD6E8_FEB8_6659_FD93,
    ];
    #[inline]
    fn mum(a: u64, b: u64) -> u64 {
        let r = u128::from(a) * u128::from(b);
        (r as u64) ^ ((r >> 64) as u64)
    }
    #[inline]
    fn word(c: &[u8], i: usize) -> u64 {
        match c
            .get(i * 8..i * 8 + 8)
            .and_then(|w| <[u8; 8]>::try_from(w).ok())
        {
            Some(a) => u64::from_le_bytes(a),
            None => 0,
        }
    }
    let mut h = [
        0x243F_6A88_85A3_08D3u64,
        0x1319_8A2E_0370_7344,
        0xA409_3822_299F_31D0,
        0x082E_FA98_EC4E_6C89,
    ];
    let mut chunks = data.chunks_exact(64);
    for c in &mut chunks {
        for (lane, hl) in h.iter_mut().enumerate() {
            let (a, b) = (word(c, 2 * lane), word(c, 2 * lane + 1));
            *hl = mum(a ^ *hl ^ K[lane], b ^ K[(lane + 1) % 4]);
        }
    }
    let rest = chunks.remainder();
    let mut tail = 0u64;
    for (i, &b) in rest.iter().enumerate() {
        tail = (tail ^ u64::from(b)).wrapping_mul(K[i % 4]).rotate_left(7);
    }
    let mut out = (data.len() as u64).wrapping_mul(K[0]) ^ tail;
    for (lane, hl) in h.iter().enumerate() {
        out = mum(out ^ *hl, K[(lane + 2) % 4]);
    }
    out
}

/// Key hash for the hash-table sections: 8-byte words multiplied in, then the tail and the
/// length, then a final mix. Word-at-a-time keeps hashing a 100-byte path to ~13 multiplies;
/// [`for_each_prefix_hash`] yields the hash of every `/`-ended prefix from the same pass.
const SEED: u64 = 0x243F_6A88_85A3_08D3;

#[inline]
fn load_le(s: &[u8]) -> u64 {
    // A fixed-size read for full words avoids a memcpy call per chunk.
    if let Some(a) = s.get(..8).and_then(|w| <[u8; 8]>::try_from(w).ok()) {
        return u64::from_le_bytes(a);
    }
    let mut v = 0u64;
    for (i, &b) in s.iter().enumerate() {
        v |= u64::from(b) << (8 * i);
    }
    v
}

#[inline]
fn absorb(st: u64, w: u64) -> u64 {
    (st ^ w).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(27)
}

#[inline]
fn finish(st: u64, tail: u64, len: usize) -> u64 {
    let mut h = st
        ^ tail.wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
        ^ (len as u64).wrapping_mul(0x1656_67B1_9E37_79F9);
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h
}

pub fn key_hash(s: &[u8]) -> u64 {
    let mut st = SEED;
    let mut chunks = s.chunks_exact(8);
    for c in &mut chunks {
        st = absorb(st, load_le(c));
    }
    finish(st, load_le(chunks.remainder()), s.len())
}

/// Calls `f(p, key_hash(&path[..p]))` for every `p` where `path[p] == b'/'`, in order, then
/// `f(path.len(), key_hash(path))`.
#[inline]
pub fn for_each_prefix_hash(path: &[u8], max: usize, f: &mut dyn FnMut(usize, u64)) {
    let mut st = SEED;
    let mut base = 0;
    while base < path.len() && base <= max {
        let end = (base + 8).min(path.len());
        let chunk = &path[base..end];
        let w = load_le(chunk);
        // Exact per-byte "== b'/'" test on the whole word (zero-padding never matches).
        let x = w ^ 0x2f2f_2f2f_2f2f_2f2f;
        let lo7 = 0x7f7f_7f7f_7f7f_7f7fu64;
        let mut m = !(((x & lo7).wrapping_add(lo7)) | x | lo7);
        while m != 0 {
            let k = (m.trailing_zeros() / 8) as usize;
            if base + k > max {
                break;
            }
            let mask = if k == 0 { 0 } else { u64::MAX >> (64 - 8 * k) };
            f(base + k, finish(st, w & mask, base + k));
            m &= m - 1;
        }
        if end - base == 8 {
            st = absorb(st, w);
        }
        base = end;
    }
    if path.len() <= max {
        let full = path.len() / 8 * 8;
        f(path.len(), finish(st, load_le(&path[full..]), path.len()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_hashes_equal_key_hashes() {
        for path in [
            &b"/"[..],
            b"",
            b"/a",
            b"\xaf/\x2f\xff/",
            b"/\0/\x01\x2e/\x30",
            b"/home/user/.ssh/id_rsa",
            b"/exactly/8/",
            b"/aaaaaaa/bbbbbbb/",
            b"//x//",
        ] {
            let mut seen = Vec::new();
            for_each_prefix_hash(path, usize::MAX, &mut |p, h| seen.push((p, h)));
            let mut short = Vec::new();
            for_each_prefix_hash(path, 3, &mut |p, h| short.push((p, h)));
            assert!(short.iter().all(|&(p, _)| p <= 3));
            assert_eq!(
                short[..],
                seen.iter()
                    .copied()
                    .filter(|&(p, _)| p <= 3)
                    .collect::<Vec<_>>()[..]
            );
            let want: Vec<(usize, u64)> = path
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == b'/')
                .map(|(i, _)| (i, key_hash(&path[..i])))
                .chain(std::iter::once((path.len(), key_hash(path))))
                .collect();
            assert_eq!(seen, want, "{}", String::from_utf8_lossy(path));
        }
        assert_ne!(key_hash(b"ab"), key_hash(b"ab\0"));
        assert_ne!(key_hash(b""), key_hash(b"\0"));
    }

    #[test]
    fn checksum_detects_changes() {
        let a = vec![7u8; 100];
        let mut b = a.clone();
        b[99] = 8;
        assert_ne!(checksum(&a), checksum(&b));
        assert_ne!(checksum(&a[..99]), checksum(&a));
        // Every single-bit flip in a 256-byte buffer changes the sum.
        let base: Vec<u8> = (0..256u32).map(|i| (i * 37 % 251) as u8).collect();
        let sum = checksum(&base);
        for i in 0..base.len() * 8 {
            let mut c = base.clone();
            c[i / 8] ^= 1 << (i % 8);
            assert_ne!(checksum(&c), sum, "bit {i}");
        }
    }
}
