//! A SIMD keyword prefilter for the common case: "does this buffer contain any keyword at
//! all?"
//!
//! aho-corasick turns its SIMD (Teddy) prefilter off for ASCII case-insensitive automata and
//! for more than 64 patterns, and then runs its automaton byte by byte (measured here: about
//! 150-230 MB/s for the ~100 built-in keywords). This module instead lower-cases the buffer in
//! 16 KiB stack chunks (a loop the compiler vectorises, ~6 GB/s) and runs Teddy over short
//! *anchors*: 3-4 byte substrings chosen so that every keyword contains one, avoiding
//! all-letter trigrams such as "key" that occur everywhere. A Teddy hit is verified against the
//! full keywords around it, so the answer is exact: true iff some keyword occurs, ASCII
//! case-insensitively, like the automaton it stands in for.
//!
//! Throughput is bounded by the number of anchors (about 65 for the built-in keywords, i.e.
//! 9 Teddy passes per chunk): ~0.4 GB/s end to end on this shared machine, 2-3x the automaton.
//! Reaching memory speed would need far fewer distinct keywords (or a Hyperscan-class
//! matcher).

use aho_corasick::Span;
use aho_corasick::packed::{Config, MatchKind, Searcher};

/// Beyond this many anchors the passes cost more than the automaton would.
const MAX_ANCHORS: usize = 96;
/// Anchors per Teddy searcher. Teddy slows down sharply as patterns share its buckets
/// (measured over keyword-free source: ~5 GB/s with 8 patterns, ~3 GB/s with 16, ~0.9 GB/s
/// with 32, ~0.5 GB/s with 51), so several small searchers run one after another over each
/// chunk while it is in L1.
const GROUP: usize = 8;
/// Stack chunk size; consecutive chunks overlap by the longest keyword minus one byte.
const CHUNK: usize = 16 * 1024;

#[derive(Clone, Debug)]
struct Anchor {
    bytes: Vec<u8>,
    /// (keyword index, offset of this anchor inside the keyword) for every keyword that
    /// contains the anchor, at every offset where it does.
    checks: Vec<(usize, usize)>,
}

#[derive(Clone, Debug)]
pub(crate) struct FastPrefilter {
    /// One Teddy searcher per group of `GROUP` anchors (see `GROUP`).
    teddies: Vec<Searcher>,
    anchors: Vec<Anchor>,
    /// Lower-cased keywords.
    keywords: Vec<Vec<u8>>,
    /// Keywords shorter than 3 bytes: searched with memmem (Teddy's fingerprint would
    /// degrade for all patterns).
    short: Vec<usize>,
    max_len: usize,
}

#[inline]
fn lower_into(src: &[u8], dst: &mut [u8]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = s | (u8::from(s.wrapping_sub(b'A') < 26) << 5);
    }
}

fn occurrences(hay: &[u8], needle: &[u8]) -> Vec<usize> {
    if needle.len() > hay.len() {
        return Vec::new();
    }
    (0..=hay.len() - needle.len())
        .filter(|&i| &hay[i..i + needle.len()] == needle)
        .collect()
}

/// (not an all-letter trigram, keywords covered, window length): larger is better.
type Rank = (bool, usize, usize);

/// Greedy set cover: the window (3 or 4 bytes) contained in the most not-yet-covered keywords,
/// longer windows first on ties (more selective), then the smallest bytes (deterministic).
fn choose_anchors(keywords: &[Vec<u8>]) -> Option<Vec<Vec<u8>>> {
    // Every 3- and 4-byte window, with the keywords containing it (sorted by bytes, which
    // makes the tie-break below deterministic).
    let mut windows: std::collections::BTreeMap<&[u8], Vec<usize>> = Default::default();
    for (k, kw) in keywords.iter().enumerate() {
        for len in [3usize, 4] {
            if kw.len() >= len {
                for w in kw.windows(len) {
                    let owners = windows.entry(w).or_default();
                    if owners.last() != Some(&k) {
                        owners.push(k);
                    }
                }
            }
        }
    }
    let mut uncovered: Vec<bool> = keywords.iter().map(|k| k.len() >= 3).collect();
    let mut left = uncovered.iter().filter(|&&u| u).count();
    let mut anchors: Vec<Vec<u8>> = Vec::new();
    while left > 0 {
        let mut best: Option<(Rank, &[u8], &Vec<usize>)> = None;
        for (w, owners) in &windows {
            let cover = owners.iter().filter(|&&o| uncovered[o]).count();
            if cover == 0 {
                continue;
            }
            // Three lowercase letters ("key", "age") occur everywhere in prose and code, and
            // Teddy would stop on them constantly: any other window first.
            let common = w.len() == 3 && w.iter().all(u8::is_ascii_lowercase);
            let rank = (!common, cover, w.len());
            if best.is_none_or(|(r, _, _)| rank > r) {
                best = Some((rank, w, owners));
            }
        }
        let (_, w, owners) = best?;
        for &o in owners {
            if uncovered[o] {
                uncovered[o] = false;
                left -= 1;
            }
        }
        anchors.push(w.to_vec());
        if anchors.len() > MAX_ANCHORS {
            return None;
        }
    }
    Some(anchors)
}

impl FastPrefilter {
    /// `None` when the keywords do not fit (too many anchors) or Teddy is unavailable on this
    /// CPU; the caller then keeps using the automaton.
    pub(crate) fn new(keywords: &[String]) -> Option<FastPrefilter> {
        let keywords: Vec<Vec<u8>> = keywords
            .iter()
            .map(|k| k.as_bytes().to_ascii_lowercase())
            .collect();
        if keywords.is_empty() || keywords.iter().any(|k| k.is_empty()) {
            return None;
        }
        let short: Vec<usize> = (0..keywords.len())
            .filter(|&i| keywords[i].len() < 3)
            .collect();
        // Long keywords would make the chunk overlap (and the stack buffer) pointless.
        if short.len() > 4 || keywords.iter().any(|k| k.len() > 256) {
            return None;
        }
        let chosen = choose_anchors(&keywords)?;
        if chosen.is_empty() {
            return None;
        }
        let anchors: Vec<Anchor> = chosen
            .into_iter()
            .map(|bytes| {
                let checks = keywords
                    .iter()
                    .enumerate()
                    .flat_map(|(ki, kw)| occurrences(kw, &bytes).into_iter().map(move |o| (ki, o)))
                    .collect();
                Anchor { bytes, checks }
            })
            .collect();
        let mut teddies = Vec::new();
        for group in anchors.chunks(GROUP) {
            let mut b = Config::new().match_kind(MatchKind::LeftmostFirst).builder();
            for a in group {
                b.add(&a.bytes);
            }
            teddies.push(b.build()?);
        }
        let max_len = keywords.iter().map(Vec::len).max().unwrap_or(1);
        Some(FastPrefilter {
            teddies,
            anchors,
            keywords,
            short,
            max_len,
        })
    }

    /// True iff some keyword occurs in `content` (ASCII case-insensitive). No allocation.
    pub(crate) fn is_match(&self, content: &[u8]) -> bool {
        let mut buf = [0u8; CHUNK];
        let overlap = self.max_len.saturating_sub(1);
        let step = CHUNK - overlap;
        let mut pos = 0;
        loop {
            let end = (pos + CHUNK).min(content.len());
            let lc = &mut buf[..end - pos];
            lower_into(&content[pos..end], lc);
            if self.chunk_has_keyword(lc) {
                return true;
            }
            if end == content.len() {
                return false;
            }
            pos += step;
        }
    }

    fn chunk_has_keyword(&self, lc: &[u8]) -> bool {
        for &k in &self.short {
            if memchr::memmem::find(lc, &self.keywords[k]).is_some() {
                return true;
            }
        }
        self.teddies.iter().any(|t| self.group_has_keyword(t, lc))
    }

    fn group_has_keyword(&self, teddy: &Searcher, lc: &[u8]) -> bool {
        let mut at = 0;
        while at < lc.len() {
            let Some(m) = teddy.find_in(lc, Span::from(at..lc.len())) else {
                return false;
            };
            let p = m.start();
            // Leftmost-first reports one anchor per position: check every anchor here.
            for a in &self.anchors {
                if !lc[p..].starts_with(&a.bytes) {
                    continue;
                }
                for &(k, off) in &a.checks {
                    let kw = &self.keywords[k];
                    if let Some(s) = p.checked_sub(off)
                        && lc.get(s..s + kw.len()) == Some(kw.as_slice())
                    {
                        return true;
                    }
                }
            }
            at = p + 1;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testgen::Rng;
    use aho_corasick::AhoCorasickBuilder;

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

    #[test]
    fn builtin_keywords_fit() {
        let kws = builtin_keywords();
        let f = FastPrefilter::new(&kws).expect("the built-in keywords fit Teddy");
        assert!(f.anchors.len() <= MAX_ANCHORS);
        eprintln!(
            "{} keywords -> {} anchors in {} Teddy groups",
            f.keywords.len(),
            f.anchors.len(),
            f.teddies.len()
        );
        // Every keyword of at least 3 bytes contains an anchor.
        for k in &f.keywords {
            if k.len() >= 3 {
                assert!(
                    f.anchors
                        .iter()
                        .any(|a| k.windows(a.bytes.len()).any(|w| w == a.bytes)),
                    "{}",
                    String::from_utf8_lossy(k)
                );
            }
        }
    }

    #[test]
    fn agrees_with_the_automaton_on_random_text() {
        let kws = builtin_keywords();
        let f = FastPrefilter::new(&kws).expect("fits");
        let ac = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .build(&kws)
            .expect("builds");
        let mut rng = Rng::from_env();
        let seed = rng.seed();
        let filler = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _-.:/=\n~";
        for round in 0..400 {
            let len = [10, 100, 3000, CHUNK - 5, CHUNK + 7, 3 * CHUNK][rng.below(6)];
            let mut text: Vec<u8> = (0..len).map(|_| filler[rng.below(filler.len())]).collect();
            if round % 2 == 0 {
                // Plant one keyword in random case at a random place (often a chunk seam).
                let k = kws[rng.below(kws.len())].as_bytes();
                let at = if rng.below(2) == 0 && len > CHUNK {
                    CHUNK - 1 - rng.below(k.len().min(CHUNK - 1))
                } else {
                    rng.below(len.saturating_sub(k.len()).max(1))
                };
                for (i, &c) in k.iter().enumerate() {
                    if let Some(slot) = text.get_mut(at + i) {
                        *slot = if rng.below(2) == 0 {
                            c.to_ascii_uppercase()
                        } else {
                            c
                        };
                    }
                }
            }
            assert_eq!(
                f.is_match(&text),
                ac.is_match(&text),
                "seed {seed} round {round}: {}",
                String::from_utf8_lossy(&text[..text.len().min(200)])
            );
        }
    }

    #[test]
    fn short_and_empty_inputs() {
        let kws = builtin_keywords();
        let f = FastPrefilter::new(&kws).expect("fits");
        assert!(!f.is_match(b""));
        assert!(!f.is_match(b"ab"));
        assert!(f.is_match(b"Q~"));
        assert!(f.is_match(b"PassWord"));
        assert!(f.is_match(b"x://"));
        assert!(!f.is_match(b"nothing to see here, just code();"));
        assert!(FastPrefilter::new(&[]).is_none());
    }
}
