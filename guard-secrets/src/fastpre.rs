//! The keyword prefilter: "does this buffer contain any detector keyword (ASCII
//! case-insensitively), and which ones?" in one pass.
//!
//! # Why not aho-corasick's own prefilter
//! aho-corasick turns its SIMD (Teddy) prefilter off for ASCII case-insensitive automata and for
//! more than 64 patterns and then runs its automaton byte by byte (~0.2 GB/s for the ~100
//! built-in keywords); its packed Teddy over short anchors needed ~9 passes (0.4 GB/s), because
//! its buckets saturate beyond ~8 patterns each and it offers no control over them.
//!
//! # Two stages
//! Each keyword is represented by one *fingerprint*: its rarest trigram (estimated from a static
//! byte-frequency table and a list of trigrams common in code), folded with `| 0x20` (which maps
//! both cases of a letter to one value and keeps equal bytes equal, so it can only over-match);
//! 2-byte keywords use both bytes and a wildcard.
//!
//! 1. Vector stage (AVX-512BW: 64 positions per round, else AVX2: 32; Teddy-like): 16 buckets
//!    of fingerprints, grouped to keep each bucket's accepted byte sets small (greedy, by the
//!    estimated share of text each bucket accepts); per fingerprint offset, two nibble
//!    shuffles give each byte's bucket bits, the three offsets are ANDed, and positions with a
//!    bucket left (about 1% of positions in source code) go to stage 2.
//! 2. Exact stage: the position's folded trigram is hashed into a 64 KiB table holding an 8-bit
//!    tag of the fingerprint hashed there; a tag match (or a slot shared by several
//!    fingerprints) leads to comparing the keywords entered under that hash, ASCII
//!    case-insensitively, at the offset their fingerprint has inside them.
//!
//! Stage 1 only drops positions whose trigram is no fingerprint and stage 2 compares whole
//! keywords, so the answer is exact (the tests compare every code path with brute force).
//! Without AVX2 stage 2 runs at every position (correct, slower). Building needs no automaton
//! (about a million instructions for the built-in keywords); scanning allocates nothing.

/// log2 of the exact trigram table (bytes): 64 KiB.
const BITS: u32 = 16;
/// Buckets of the vector fingerprint (one bit each in a byte lane).
const BUCKETS: usize = 16;
/// Wildcard entries (2-byte keywords) make the table denser; beyond this many entries the
/// false-hit rate would cost more than the automaton.
const MAX_ENTRIES: usize = 1 << (BITS - 4);
/// Longest keyword handled (the delta of an entry must fit).
const MAX_KEYWORD: usize = 255;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    hash: u32,
    tag: u8,
    keyword: u16,
    /// Offset of the keyword's fingerprint trigram from the keyword's start.
    delta: u16,
}

#[derive(Clone, Debug)]
pub(crate) struct FastPrefilter {
    /// Per fingerprint offset (0..3): bucket bits accepted for each low nibble of the folded
    /// byte, and for each high nibble.
    lo: [[u16; 16]; 3],
    hi: [[u16; 16]; 3],
    /// Per hash `h`: 0 when no entry has it, the entry's `tag` when exactly one trigram does,
    /// `MANY` when several do. Random collisions of common text with an entry (`bool` with some
    /// keyword's trigram) then fail the tag test 254 times in 255 without a verification.
    table: std::borrow::Cow<'static, [u8]>,
    /// Sorted by hash (then keyword): a hit's candidates are one contiguous run.
    entries: Vec<Entry>,
    /// Lower-cased keywords.
    keywords: Vec<Vec<u8>>,
    /// AVX2 is available (checked once, at build time).
    avx2: bool,
    /// AVX-512BW is available: 64 positions per round, half the shuffles per byte.
    avx512: bool,
}

#[inline(always)]
fn hash(tri: u32) -> u32 {
    tri.wrapping_mul(0x9E37_79B1) >> (32 - BITS)
}

/// An independent 8-bit digest of a folded trigram, never 0 or `MANY`.
#[inline(always)]
fn tag(tri: u32) -> u8 {
    ((tri.wrapping_mul(0x85EB_CA77) >> 24) as u8).clamp(1, MANY - 1)
}

const MANY: u8 = 0xFF;

#[inline(always)]
fn fold3(a: u8, b: u8, c: u8) -> u32 {
    (u32::from(a) | u32::from(b) << 8 | u32::from(c) << 16) | 0x0020_2020
}

/// Rough relative frequency (per mille) of each byte in source code and prose: only the
/// ranking matters (which trigram of a keyword is rarest, which keywords share a bucket).
fn byte_weight(c: u8) -> u32 {
    match c.to_ascii_lowercase() {
        b' ' => 150,
        b'e' => 90,
        b't' => 70,
        b'a' | b'o' | b'i' | b'n' | b's' | b'r' => 55,
        b'l' | b'd' | b'h' | b'c' | b'u' => 35,
        b'm' | b'p' | b'f' | b'g' | b'b' | b'y' | b'w' => 18,
        b'\n' | b'.' | b'(' | b')' | b',' | b'"' | b'_' | b';' => 20,
        b'v' | b'k' => 9,
        b'=' | b':' | b'/' | b'-' | b'{' | b'}' | b'\'' | b'*' | b'0' | b'1' | b'<' | b'>' => 8,
        b'x' | b'j' | b'q' | b'z' => 3,
        b'2'..=b'9' | b'[' | b']' | b'&' | b'#' | b'$' | b'!' | b'|' => 3,
        _ => 1,
    }
}

/// A fingerprint trigram: `Some(folded byte)` or a wildcard.
type Tri = [Option<u8>; 3];

/// Trigrams frequent in source code and English that the byte weights underrate (measured on
/// this workspace's sources: `ver`, `key`, `way` were the top false hits).
const COMMON: &[&[u8; 3]] = &[
    b"ver", b"key", b"way", b"acc", b"pas", b"ass", b"sec", b"the", b"ing", b"ion", b"ent", b"tio",
    b"for", b"and", b"ret", b"urn", b"str", b"con", b"pro", b"res", b"ess", b"ate", b"ect", b"ser",
    b"per", b"ter", b"age", b"cce", b"ces", b"tor", b"ken", b"oke", b"tok", b"ear", b"rea", b"aut",
    b"uth", b"api", b"pri", b"riv", b"iva", b"vat", b"sig", b"cre", b"hoo", b"ook", b"com", b"log",
    b"her", b"ero", b"our", b"cou", b"oun", b"unt", b"app", b"pub", b"int", b"all", b"use", b"set",
    b"get", b"new", b"let", b"mut", b"fn ", b"cel", b"_pa", b"e k", b"ify", b".pa", b"asi", b"ws.",
    b"-pa", b"sk_",
];

/// `COMMON` as little-endian `u32`s, sorted, for a binary search.
const COMMON_TRIGRAMS: [u32; COMMON.len()] = {
    let mut out = [0u32; COMMON.len()];
    let mut i = 0;
    while i < COMMON.len() {
        out[i] = COMMON[i][0] as u32 | (COMMON[i][1] as u32) << 8 | (COMMON[i][2] as u32) << 16;
        i += 1;
    }
    // Insertion sort (const context).
    let mut a = 1;
    while a < COMMON.len() {
        let mut b = a;
        while b > 0 && out[b - 1] > out[b] {
            let t = out[b];
            out[b] = out[b - 1];
            out[b - 1] = t;
            b -= 1;
        }
        a += 1;
    }
    out
};

/// Estimated probability (scaled) that a random text position starts with `t`.
fn tri_cost(t: &Tri) -> u64 {
    let mut cost = 1u64;
    let mut key = 0u32;
    for (i, b) in t.iter().enumerate() {
        cost *= u64::from(b.map_or(1000, byte_weight));
        key |= u32::from(b.map_or(0, |c| c.to_ascii_lowercase())) << (8 * i);
    }
    if COMMON_TRIGRAMS.binary_search(&key).is_ok() {
        cost * 100
    } else {
        cost
    }
}

/// Nibble sets (bit n set: nibble n accepted) per offset, for one bucket.
#[derive(Clone, Copy, Default)]
struct NibbleSets {
    lo: [u16; 3],
    hi: [u16; 3],
}

impl NibbleSets {
    fn with(mut self, t: &Tri) -> NibbleSets {
        for (k, b) in t.iter().enumerate() {
            match b {
                Some(c) => {
                    self.lo[k] |= 1 << (c & 15);
                    self.hi[k] |= 1 << (c >> 4);
                }
                None => {
                    self.lo[k] = u16::MAX;
                    self.hi[k] = u16::MAX;
                }
            }
        }
        self
    }

    /// Estimated share of text positions the bucket accepts; `weights[hi][lo]` is the share
    /// of folded bytes with those nibbles.
    fn rate(&self, weights: &[[f64; 16]; 16]) -> f64 {
        let bits = |mut m: u16| {
            core::iter::from_fn(move || {
                let b = m.trailing_zeros() as usize;
                m &= m.wrapping_sub(1);
                (b < 16).then_some(b)
            })
        };
        (0..3)
            .map(|k| {
                bits(self.hi[k])
                    .map(|h| bits(self.lo[k]).map(|l| weights[h][l]).sum::<f64>())
                    .sum::<f64>()
            })
            .product()
    }
}

impl FastPrefilter {
    /// `None` when the keywords do not fit (a 1-byte or over-long keyword, or so many 2-byte
    /// ones that the table would be too dense); the caller then uses the automaton.
    pub(crate) fn new(keywords: &[String]) -> Option<FastPrefilter> {
        let keywords: Vec<Vec<u8>> = keywords
            .iter()
            .map(|k| k.as_bytes().to_ascii_lowercase())
            .collect();
        if keywords.is_empty()
            || keywords.len() > usize::from(u16::MAX)
            || keywords
                .iter()
                .any(|k| k.len() < 2 || k.len() > MAX_KEYWORD)
        {
            return None;
        }
        let fold = |c: u8| c | 0x20;
        // Each keyword's fingerprint: its rarest trigram (2-byte keywords: both bytes, then a
        // wildcard, so that an occurrence at the very start is still seen).
        let mut prints: Vec<(Tri, u16)> = Vec::with_capacity(keywords.len());
        for kw in &keywords {
            if kw.len() == 2 {
                prints.push(([Some(fold(kw[0])), Some(fold(kw[1])), None], 0));
                continue;
            }
            let best = (0..=kw.len() - 3)
                .min_by_key(|&j| tri_cost(&[Some(kw[j]), Some(kw[j + 1]), Some(kw[j + 2])]))
                .unwrap_or(0);
            let t = [
                Some(fold(kw[best])),
                Some(fold(kw[best + 1])),
                Some(fold(kw[best + 2])),
            ];
            prints.push((t, best as u16));
        }
        let mut entries: Vec<Entry> = Vec::new();
        for (ki, (t, delta)) in prints.iter().enumerate() {
            let last: Vec<u8> = match t[2] {
                Some(c) => vec![c],
                None => (0..=255u8).map(fold).collect(),
            };
            for c in last {
                let tri = fold3(t[0].unwrap_or(0), t[1].unwrap_or(0), c);
                entries.push(Entry {
                    hash: hash(tri),
                    tag: tag(tri),
                    keyword: ki as u16,
                    delta: *delta,
                });
            }
        }
        entries.sort_unstable();
        entries.dedup();
        if entries.len() > MAX_ENTRIES {
            return None;
        }
        let mut table = vec![0u8; 1 << BITS].into_boxed_slice();
        for e in &entries {
            let slot = &mut table[e.hash as usize];
            *slot = if *slot == 0 || *slot == e.tag {
                e.tag
            } else {
                MANY
            };
        }
        // Buckets: each fingerprint joins the bucket whose accepted share grows least (rarest
        // fingerprints first, so that common ones do not pollute them).
        let total: f64 = (0..=255u8).map(|c| f64::from(byte_weight(c))).sum();
        let mut weights = [[0f64; 16]; 16];
        for c in 0..=255u8 {
            let f = fold(c);
            weights[usize::from(f >> 4)][usize::from(f & 15)] += f64::from(byte_weight(c)) / total;
        }
        let mut order: Vec<usize> = (0..prints.len()).collect();
        order.sort_by_key(|&i| tri_cost(&prints[i].0));
        let mut buckets = [NibbleSets::default(); BUCKETS];
        // Each bucket's current accepted share (0 while empty), kept up to date.
        let mut rates = [0f64; BUCKETS];
        for &i in &order {
            let t = &prints[i].0;
            let mut best = (f64::INFINITY, 0, 0.0);
            for (b, set) in buckets.iter().enumerate() {
                let after = set.with(t).rate(&weights);
                if after - rates[b] < best.0 {
                    best = (after - rates[b], b, after);
                }
            }
            buckets[best.1] = buckets[best.1].with(t);
            rates[best.1] = best.2;
        }
        let mut lo = [[0u16; 16]; 3];
        let mut hi = [[0u16; 16]; 3];
        for (b, set) in buckets.iter().enumerate() {
            for k in 0..3 {
                for n in 0..16 {
                    if set.lo[k] & (1 << n) != 0 {
                        lo[k][n] |= 1 << b;
                    }
                    if set.hi[k] & (1 << n) != 0 {
                        hi[k][n] |= 1 << b;
                    }
                }
            }
        }
        Some(FastPrefilter {
            lo,
            hi,
            table: table.into_vec().into(),
            entries,
            keywords,
            avx2: avx2_available(),
            avx512: avx512_available(),
        })
    }

    /// Appends this prefilter's tables to a detector image (the keywords are the set's, stored
    /// by the caller).
    pub(crate) fn write_image(&self, w: &mut crate::image::Writer) {
        for t in self.lo.iter().chain(&self.hi) {
            for &v in t {
                w.u16(v);
            }
        }
        w.u32(self.entries.len());
        for e in &self.entries {
            w.u32(e.hash as usize);
            w.u8(e.tag);
            w.u16(e.keyword);
            w.u16(e.delta);
        }
        w.bytes(&self.table);
    }

    /// The prefilter stored by `write_image`, over `keywords` (lower-cased, as `new` takes
    /// them), its table borrowed from the image. `None` unless every entry names a keyword,
    /// the entries are sorted by hash and the table has its exact size.
    pub(crate) fn read_image(
        r: &mut crate::image::Reader<'static>,
        keywords: &[String],
    ) -> Option<FastPrefilter> {
        let mut lo = [[0u16; 16]; 3];
        let mut hi = [[0u16; 16]; 3];
        for t in lo.iter_mut().chain(hi.iter_mut()) {
            for v in t.iter_mut() {
                *v = r.u16()?;
            }
        }
        let n = r.count(9)?;
        if n > MAX_ENTRIES || keywords.is_empty() || keywords.len() > usize::from(u16::MAX) {
            return None;
        }
        let mut entries = Vec::with_capacity(n);
        for _ in 0..n {
            let e = Entry {
                hash: u32::try_from(r.u32()?).ok()?,
                tag: r.u8()?,
                keyword: r.u16()?,
                delta: r.u16()?,
            };
            let sorted = entries.last().is_none_or(|p: &Entry| p.hash <= e.hash);
            if !sorted || e.hash >= 1 << BITS || usize::from(e.keyword) >= keywords.len() {
                return None;
            }
            entries.push(e);
        }
        let table = r.bytes()?;
        if table.len() != 1 << BITS {
            return None;
        }
        let keywords: Vec<Vec<u8>> = keywords
            .iter()
            .map(|k| k.as_bytes().to_ascii_lowercase())
            .collect();
        if keywords
            .iter()
            .any(|k| k.len() < 2 || k.len() > MAX_KEYWORD)
        {
            return None;
        }
        Some(FastPrefilter {
            lo,
            hi,
            table: std::borrow::Cow::Borrowed(table),
            entries,
            keywords,
            avx2: avx2_available(),
            avx512: avx512_available(),
        })
    }

    /// Number of distinct keywords.
    #[cfg(test)]
    pub(crate) fn keyword_count(&self) -> usize {
        self.keywords.len()
    }

    /// True iff some keyword occurs in `content` (ASCII case-insensitive). No allocation.
    pub(crate) fn is_match(&self, content: &[u8]) -> bool {
        self.for_each_match(content, |_, _| true)
    }

    /// Calls `f(keyword index, start)` for every occurrence of every keyword in `content` (in
    /// the order of their fingerprint positions, so not quite sorted by start) until `f` returns
    /// true. Returns whether `f` stopped the scan.
    pub(crate) fn for_each_match(
        &self,
        content: &[u8],
        mut f: impl FnMut(usize, usize) -> bool,
    ) -> bool {
        let mut i = 0;
        #[cfg(target_arch = "x86_64")]
        if self.avx512 {
            // SAFETY: AVX-512BW was detected when this prefilter was built.
            match unsafe { self.scan_avx512(content, &mut f) } {
                Ok(()) => return true,
                Err(done) => i = done,
            }
        }
        #[cfg(target_arch = "x86_64")]
        if self.avx2 {
            // SAFETY: AVX2 was detected when this prefilter was built.
            match unsafe { self.scan_avx2(content, i, &mut f) } {
                Ok(()) => return true,
                Err(done) => i = done,
            }
        }
        // The rest (or everything, without AVX2): every position, exactly.
        while i < content.len() {
            if self.check(content, i, &mut f) {
                return true;
            }
            i += 1;
        }
        false
    }

    /// The exact second stage at one position: the trigram table, then the keywords entered
    /// under its hash. Bytes past the end read as 0 (a 2-byte keyword at the end).
    #[inline(always)]
    fn check(&self, content: &[u8], at: usize, f: &mut impl FnMut(usize, usize) -> bool) -> bool {
        let b = |o: usize| content.get(at + o).copied().unwrap_or(0);
        let tri = fold3(b(0), b(1), b(2));
        let h = hash(tri);
        self.table
            .get(h as usize)
            .is_some_and(|&t| t == MANY || (t != 0 && t == tag(tri)))
            && self.verify(content, at, h, f)
    }

    /// The vector first stage (Teddy-like): for 32 positions at once, the bucket bits of the
    /// three fingerprint bytes (two nibble shuffles each) ANDed together; a position with any
    /// bucket left goes to `check`. `Ok` when `f` stopped the scan, else `Err(first position
    /// not examined)`.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn scan_avx2(
        &self,
        content: &[u8],
        start: usize,
        f: &mut impl FnMut(usize, usize) -> bool,
    ) -> Result<(), usize> {
        use std::arch::x86_64::*;
        let n = content.len();
        let p = content.as_ptr();
        // Buckets 0-7 and 8-15 as two byte tables per offset and nibble kind.
        let table = |t: &[u16; 16], shift: u32| {
            let b: [u8; 16] = core::array::from_fn(|n| (t[n] >> shift) as u8);
            // SAFETY: 16 readable bytes.
            let x = unsafe { _mm_loadu_si128(b.as_ptr() as *const __m128i) };
            _mm256_broadcastsi128_si256(x)
        };
        let lo: [[__m256i; 3]; 2] =
            core::array::from_fn(|h| core::array::from_fn(|k| table(&self.lo[k], 8 * h as u32)));
        let hi: [[__m256i; 3]; 2] =
            core::array::from_fn(|h| core::array::from_fn(|k| table(&self.hi[k], 8 * h as u32)));
        let fold = _mm256_set1_epi8(0x20);
        let nib = _mm256_set1_epi8(0x0f);
        let zero = _mm256_setzero_si256();
        let mut i = start;
        while i + 34 <= n {
            let mut ra = _mm256_set1_epi8(-1);
            let mut rb = _mm256_set1_epi8(-1);
            for k in 0..3 {
                // SAFETY: `i + k + 32 <= n`.
                let v = unsafe { _mm256_loadu_si256(p.add(i + k) as *const __m256i) };
                let v = _mm256_or_si256(v, fold);
                let vl = _mm256_and_si256(v, nib);
                let vh = _mm256_and_si256(_mm256_srli_epi16(v, 4), nib);
                ra = _mm256_and_si256(
                    ra,
                    _mm256_and_si256(
                        _mm256_shuffle_epi8(lo[0][k], vl),
                        _mm256_shuffle_epi8(hi[0][k], vh),
                    ),
                );
                rb = _mm256_and_si256(
                    rb,
                    _mm256_and_si256(
                        _mm256_shuffle_epi8(lo[1][k], vl),
                        _mm256_shuffle_epi8(hi[1][k], vh),
                    ),
                );
            }
            let r = _mm256_or_si256(ra, rb);
            let mut m = !(_mm256_movemask_epi8(_mm256_cmpeq_epi8(r, zero)) as u32);
            while m != 0 {
                let at = i + m.trailing_zeros() as usize;
                if self.check(content, at, f) {
                    return Ok(());
                }
                m &= m - 1;
            }
            i += 32;
        }
        Err(i)
    }

    /// `scan_avx2` with 512-bit vectors: 64 positions per round, the bucket test as one mask.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw")]
    unsafe fn scan_avx512(
        &self,
        content: &[u8],
        f: &mut impl FnMut(usize, usize) -> bool,
    ) -> Result<(), usize> {
        use std::arch::x86_64::*;
        let n = content.len();
        let p = content.as_ptr();
        let table = |t: &[u16; 16], shift: u32| {
            let b: [u8; 16] = core::array::from_fn(|n| (t[n] >> shift) as u8);
            // SAFETY: 16 readable bytes.
            let x = unsafe { _mm_loadu_si128(b.as_ptr() as *const __m128i) };
            _mm512_broadcast_i32x4(x)
        };
        let lo: [[__m512i; 3]; 2] =
            core::array::from_fn(|h| core::array::from_fn(|k| table(&self.lo[k], 8 * h as u32)));
        let hi: [[__m512i; 3]; 2] =
            core::array::from_fn(|h| core::array::from_fn(|k| table(&self.hi[k], 8 * h as u32)));
        let fold = _mm512_set1_epi8(0x20);
        let nib = _mm512_set1_epi8(0x0f);
        let mut i = 0usize;
        while i + 66 <= n {
            let mut ra = _mm512_set1_epi8(-1);
            let mut rb = _mm512_set1_epi8(-1);
            for k in 0..3 {
                // SAFETY: `i + k + 64 <= n`.
                let v = unsafe { _mm512_loadu_si512(p.add(i + k) as *const __m512i) };
                let v = _mm512_or_si512(v, fold);
                let vl = _mm512_and_si512(v, nib);
                let vh = _mm512_and_si512(_mm512_srli_epi16(v, 4), nib);
                ra = _mm512_and_si512(
                    ra,
                    _mm512_and_si512(
                        _mm512_shuffle_epi8(lo[0][k], vl),
                        _mm512_shuffle_epi8(hi[0][k], vh),
                    ),
                );
                rb = _mm512_and_si512(
                    rb,
                    _mm512_and_si512(
                        _mm512_shuffle_epi8(lo[1][k], vl),
                        _mm512_shuffle_epi8(hi[1][k], vh),
                    ),
                );
            }
            let r = _mm512_or_si512(ra, rb);
            let mut m: u64 = _mm512_test_epi8_mask(r, r);
            while m != 0 {
                let at = i + m.trailing_zeros() as usize;
                if self.check(content, at, f) {
                    return Ok(());
                }
                m &= m - 1;
            }
            i += 64;
        }
        Err(i)
    }

    #[cold]
    fn verify(
        &self,
        content: &[u8],
        at: usize,
        h: u32,
        f: &mut impl FnMut(usize, usize) -> bool,
    ) -> bool {
        let first = self.entries.partition_point(|e| e.hash < h);
        for e in self.entries[first..].iter().take_while(|e| e.hash == h) {
            let Some(p) = at.checked_sub(usize::from(e.delta)) else {
                continue;
            };
            let kw = &self.keywords[usize::from(e.keyword)];
            if content
                .get(p..p + kw.len())
                .is_some_and(|s| s.eq_ignore_ascii_case(kw))
                && f(usize::from(e.keyword), p)
            {
                return true;
            }
        }
        false
    }
}

fn avx512_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

fn avx2_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testgen::Rng;

    fn builtin_keywords() -> Vec<String> {
        let mut k: Vec<String> = crate::builtin_specs()
            .into_iter()
            .flat_map(|s| s.keywords)
            .map(|k| k.to_ascii_lowercase())
            .collect();
        k.sort();
        k.dedup();
        k
    }

    /// The reference: every keyword that occurs anywhere, by brute force.
    fn brute(kws: &[String], text: &[u8]) -> Vec<bool> {
        kws.iter()
            .map(|k| {
                let k = k.as_bytes();
                text.len() >= k.len() && text.windows(k.len()).any(|w| w.eq_ignore_ascii_case(k))
            })
            .collect()
    }

    /// Which keywords occur, checking on the way that every occurrence (keyword, start) is
    /// reported (a 2-byte keyword's occurrence may be reported twice, when two of its wildcard
    /// trigrams share a hash): the scan windows of `engine` depend on it.
    fn found(f: &FastPrefilter, text: &[u8]) -> Vec<bool> {
        let mut seen = vec![false; f.keyword_count()];
        let mut got: Vec<(usize, usize)> = Vec::new();
        f.for_each_match(text, |k, at| {
            seen[k] = true;
            got.push((k, at));
            false
        });
        got.sort_unstable();
        got.dedup();
        let mut want: Vec<(usize, usize)> = Vec::new();
        for (k, kw) in f.keywords.iter().enumerate() {
            if text.len() >= kw.len() {
                for at in 0..=text.len() - kw.len() {
                    if text[at..at + kw.len()].eq_ignore_ascii_case(kw) {
                        want.push((k, at));
                    }
                }
            }
        }
        assert_eq!(got, want, "every occurrence");
        seen
    }

    #[test]
    fn builtin_keywords_fit() {
        let kws = builtin_keywords();
        let f = FastPrefilter::new(&kws).expect("the built-in keywords fit");
        eprintln!(
            "{} keywords -> {} table entries",
            f.keywords.len(),
            f.entries.len()
        );
        assert!(f.entries.len() <= MAX_ENTRIES);
    }

    /// Prefilter-on vs a brute-force reference: generated text with keywords planted in random
    /// case at random places, including the first and last bytes and every parity.
    #[test]
    fn agrees_with_brute_force_on_generated_text() {
        let kws = builtin_keywords();
        let full = FastPrefilter::new(&kws).expect("fits");
        // Every code path: AVX-512, AVX2, scalar (each as far as this CPU has it).
        let mut no512 = full.clone();
        no512.avx512 = false;
        let mut scalar = no512.clone();
        scalar.avx2 = false;
        let variants = [full, no512, scalar];
        let mut rng = Rng::from_env();
        let seed = rng.seed();
        let filler =
            b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _-.:/=\n~\"\0";
        for round in 0..3000 {
            let len = [0, 1, 2, 3, 5, 7, 8, 9, 13, 31, 65, 100, 3000][rng.below(13)];
            let mut text: Vec<u8> = (0..len).map(|_| filler[rng.below(filler.len())]).collect();
            for _ in 0..rng.below(3) {
                let k = kws[rng.below(kws.len())].as_bytes();
                if k.len() > len {
                    continue;
                }
                let at = match rng.below(3) {
                    0 => 0,
                    1 => len - k.len(),
                    _ => rng.below(len - k.len() + 1),
                };
                for (i, &c) in k.iter().enumerate() {
                    text[at + i] = if rng.below(2) == 0 {
                        c.to_ascii_uppercase()
                    } else {
                        c
                    };
                }
            }
            let want = brute(&kws, &text);
            for (v, f) in variants.iter().enumerate() {
                assert_eq!(
                    found(f, &text),
                    want,
                    "variant {v} seed {seed} round {round}: {:?}",
                    String::from_utf8_lossy(&text[..text.len().min(200)])
                );
                assert_eq!(f.is_match(&text), want.iter().any(|&w| w), "seed {seed}");
            }
        }
    }

    /// Arbitrary keyword sets (2-12 bytes, any bytes) against the same reference.
    #[test]
    fn random_keyword_sets_agree_with_brute_force() {
        let mut rng = Rng::from_env();
        let seed = rng.seed();
        let alphabet = b"abcXYZ_-:~09";
        for round in 0..200 {
            let kws: Vec<String> = (0..1 + rng.below(20))
                .map(|_| {
                    (0..2 + rng.below(11))
                        .map(|_| alphabet[rng.below(alphabet.len())] as char)
                        .collect()
                })
                .collect();
            let Some(f) = FastPrefilter::new(&kws) else {
                continue;
            };
            for _ in 0..20 {
                let len = rng.below(200);
                let text: Vec<u8> = (0..len)
                    .map(|_| alphabet[rng.below(alphabet.len())])
                    .collect();
                let want = brute(&kws, &text);
                assert_eq!(found(&f, &text), want, "seed {seed} round {round} {kws:?}");
            }
        }
    }

    #[test]
    fn short_and_empty_inputs() {
        let kws = builtin_keywords();
        let f = FastPrefilter::new(&kws).expect("fits");
        assert!(!f.is_match(b""));
        assert!(!f.is_match(b"ab"));
        assert!(f.is_match(b"Q~"));
        assert!(f.is_match(b"xQ~"));
        assert!(f.is_match(b"PassWord"));
        assert!(f.is_match(b"x://"));
        assert!(!f.is_match(b"nothing to see here, just code();"));
        assert!(FastPrefilter::new(&[]).is_none());
        assert!(FastPrefilter::new(&["x".to_string()]).is_none());
    }
}
