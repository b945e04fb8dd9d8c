//! Where a detector's regex must run, given where its keywords occur.
//!
//! A detector's keywords are a contract: every match contains one of them. So a match that
//! contains the keyword occurrence `k..k+m` starts in `k+m-R ..= k`, where `R` bounds how far
//! a match can reach from its start to the end of that occurrence. Two bounds are used:
//!
//! - [`Plan::Head`]: the pattern is a concatenation whose first few items match only a small
//!   finite set of strings (compared ASCII case-folded), each containing one of the keywords.
//!   Then every match contains a keyword within its first bytes (proved here, not assumed),
//!   at one of the offsets those strings have it, and the regex runs anchored at exactly the
//!   starts those offsets give. Tail length does not matter: the generic `password = ...`
//!   detector, unbounded, is windowed this way.
//! - [`Plan::Bounded`]: every match is at most `max` bytes long, so it starts within `max`
//!   bytes before the occurrence's end and ends within `max` bytes after its start; the regex
//!   runs unanchored over that span only. Relies on the keyword contract.
//!
//! Either way the searches are regex-automata span searches over the whole buffer, so
//! look-around (`\b`, `\A`, `\z`) sees the real neighbouring bytes, and (see `engine`) the
//! matches are exactly those a search of the whole buffer reports. [`Plan::Whole`] (no bound
//! found) searches the whole buffer.

use regex_syntax::hir::{Class, Hir, HirKind};

/// Largest head string set enumerated (after case folding); beyond it the head is given up.
const MAX_HEAD_STRINGS: usize = 512;
/// A class with more (folded) bytes than this ends the head (`[a-z]` is too wide to enumerate).
const MAX_CLASS: usize = 16;
/// Longest head kept: candidate starts per keyword occurrence grow with it.
const MAX_REACH: usize = 64;
const _: () = assert!(MAX_REACH <= 64, "head offsets are bits of a u64");
/// Work allowed for finding a head (items visited plus strings carried), per pattern.
const HEAD_BUDGET: usize = 20_000;
/// Longest bounded match windowed: beyond it windows around common keywords cover the buffer.
const MAX_BOUNDED: usize = 4096;

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Plan {
    /// Search the whole buffer.
    Whole,
    /// Every match is at most `max` bytes long (and at least one).
    Bounded { max: usize },
    /// Every match begins with one of a few strings, each containing a keyword: for keyword
    /// `k` (an index the caller chose) at offset `o` of one of them, bit `o` of its mask is
    /// set. A match containing that keyword at `at` starts at `at - o`.
    Head { starts: Vec<(usize, u64)> },
    /// Unbounded, but every match has a keyword occurrence starting `min..=max` bytes after
    /// the match start (a bounded prefix, then literal text holding a keyword:
    /// `-----BEGIN[ A-Z]{0,100}PRIVATE KEY...`); `first[b]`: a match can start with byte `b`.
    /// The regex runs anchored at the candidate starts beginning with such a byte.
    Prefix {
        min: usize,
        max: usize,
        first: Box<[bool; 256]>,
    },
}

/// The plan for `hir` whose matches must contain one of `keywords` (index, lower-cased bytes).
pub(crate) fn plan(hir: &Hir, keywords: &[(usize, &[u8])]) -> Plan {
    if keywords.is_empty() || keywords.iter().any(|(_, k)| k.is_empty()) {
        return Plan::Whole;
    }
    if let Some(p) = head(hir, keywords) {
        return p;
    }
    let props = hir.properties();
    match (props.minimum_len(), props.maximum_len()) {
        (Some(min), Some(max)) if min > 0 && max <= MAX_BOUNDED => Plan::Bounded { max },
        _ => prefix(hir, keywords).unwrap_or(Plan::Whole),
    }
}

/// For a `Bounded` plan: the part of the pattern after its first literal core holding a
/// keyword (`://` in `\b[a-z][a-z0-9+.-]{0,30}://[^\s:/@]{1,128}:...`), and where that part
/// starts relative to a keyword occurrence inside the core (`core length - keyword offset`,
/// each possibility). Every match has such a core, so an occurrence after which the tail
/// matches at none of those places is not needed for any window: checking the tail there
/// (an anchored search that usually dies within a few bytes) avoids searching its window.
pub(crate) fn core_tail(hir: &Hir, keywords: &[(usize, &[u8])]) -> Option<(Hir, Vec<usize>)> {
    let kws: Vec<&[u8]> = keywords.iter().map(|(_, k)| *k).collect();
    let items = flat(hir);
    for i in 0..items.len() {
        let mut set: Vec<Vec<u8>> = vec![Vec::new()];
        for (j, item) in items.iter().enumerate().skip(i) {
            let Some(next) = strings(item).and_then(|n| product(&set, &n)) else {
                break;
            };
            set = next;
            if set.iter().map(Vec::len).max().unwrap_or(0) > MAX_REACH {
                break;
            }
            if !set.iter().all(|s| kws.iter().any(|k| contains(s, k))) {
                continue;
            }
            let tail = &items[j + 1..];
            if tail.is_empty() {
                return None;
            }
            let mut ends: Vec<usize> = Vec::new();
            for s in &set {
                for o in 0..s.len() {
                    if kws.iter().any(|k| s[o..].starts_with(k)) {
                        ends.push(s.len() - o);
                    }
                }
            }
            ends.sort_unstable();
            ends.dedup();
            if ends.len() > 8 {
                return None;
            }
            let tail = Hir::concat(tail.iter().map(|h| (*h).clone()).collect());
            return Some((tail, ends));
        }
    }
    None
}

/// Longest prefix before the literal core of a `Prefix` plan.
const MAX_PREFIX: usize = 256;

fn prefix(hir: &Hir, keywords: &[(usize, &[u8])]) -> Option<Plan> {
    let kws: Vec<&[u8]> = keywords.iter().map(|(_, k)| *k).collect();
    let items = flat(hir);
    let (mut pmin, mut pmax) = (0usize, 0usize);
    for i in 0..items.len() {
        // A core of enumerable items starting at `i`, every string holding a keyword.
        let mut set: Vec<Vec<u8>> = vec![Vec::new()];
        for item in &items[i..] {
            let Some(next) = strings(item).and_then(|n| product(&set, &n)) else {
                break;
            };
            set = next;
            if set.iter().map(Vec::len).max().unwrap_or(0) > MAX_REACH {
                break;
            }
            let offsets: Option<Vec<usize>> = set
                .iter()
                .map(|s| (0..s.len()).find(|&o| kws.iter().any(|k| s[o..].starts_with(k))))
                .collect();
            if let Some(offsets) = offsets {
                let (cmin, cmax) = (
                    offsets.iter().copied().min().unwrap_or(0),
                    offsets.iter().copied().max().unwrap_or(0),
                );
                let (first, nullable) = first_bytes(&items);
                if nullable {
                    return None;
                }
                return Some(Plan::Prefix {
                    min: pmin + cmin,
                    max: pmax + cmax,
                    first: Box::new(first),
                });
            }
        }
        let p = items[i].properties();
        pmin = pmin.checked_add(p.minimum_len()?)?;
        pmax = pmax.checked_add(p.maximum_len()?)?;
        if pmax > MAX_PREFIX {
            return None;
        }
    }
    None
}

/// The bytes a match of `items` (in sequence) can start with, and whether it can be empty.
fn first_bytes(items: &[&Hir]) -> ([bool; 256], bool) {
    let mut out = [false; 256];
    for item in items {
        let (set, nullable) = first_of(item);
        for (o, s) in out.iter_mut().zip(set) {
            *o |= s;
        }
        if !nullable {
            return (out, false);
        }
    }
    (out, true)
}

fn first_of(h: &Hir) -> ([bool; 256], bool) {
    let mut out = [false; 256];
    match h.kind() {
        HirKind::Empty | HirKind::Look(_) => (out, true),
        HirKind::Literal(lit) => match lit.0.first() {
            Some(&b) => {
                out[usize::from(b)] = true;
                (out, false)
            }
            None => (out, true),
        },
        HirKind::Class(Class::Bytes(c)) => {
            for r in c.iter() {
                for b in r.start()..=r.end() {
                    out[usize::from(b)] = true;
                }
            }
            (out, false)
        }
        HirKind::Class(Class::Unicode(c)) => {
            for r in c.iter() {
                // A non-ASCII character starts with a byte >= 0xC0: allow them all.
                let (a, b) = (u32::from(r.start()), u32::from(r.end()).min(0xff));
                for x in a..=b {
                    out[x as usize] = true;
                }
                if u32::from(r.end()) > 0x7f {
                    out[0x80..].iter_mut().for_each(|o| *o = true);
                }
            }
            (out, false)
        }
        HirKind::Capture(c) => first_of(&c.sub),
        HirKind::Repetition(r) => {
            let (set, nullable) = first_of(&r.sub);
            (set, nullable || r.min == 0)
        }
        HirKind::Concat(items) => first_bytes(&items.iter().collect::<Vec<_>>()),
        HirKind::Alternation(alts) => {
            let mut nullable = false;
            for a in alts {
                let (set, n) = first_of(a);
                for (o, s) in out.iter_mut().zip(set) {
                    *o |= s;
                }
                nullable |= n;
            }
            (out, nullable)
        }
    }
}

fn head(hir: &Hir, keywords: &[(usize, &[u8])]) -> Option<Plan> {
    let kws: Vec<&[u8]> = keywords.iter().map(|(_, k)| *k).collect();
    let mut budget = HEAD_BUDGET;
    let set = head_from(vec![Vec::new()], &flat(hir), &kws, &mut budget)?;
    let mut starts = Vec::new();
    for &(index, k) in keywords {
        let mut mask = 0u64;
        for s in &set {
            // Offsets below 64: no head is longer than `MAX_REACH`.
            for o in (0..s.len().saturating_sub(k.len()) + 1).filter(|&o| s[o..].starts_with(k)) {
                mask |= 1u64.checked_shl(o as u32).unwrap_or(0);
            }
        }
        if mask != 0 {
            starts.push((index, mask));
        }
    }
    Some(Plan::Head { starts })
}

/// `h` as a sequence of items, groups opened (`\b(?P<secret>glpat-...)` is `\b`, `g`, `l`,
/// ...), so that a head can end inside a group.
fn flat(h: &Hir) -> Vec<&Hir> {
    fn go<'h>(h: &'h Hir, out: &mut Vec<&'h Hir>) {
        match h.kind() {
            HirKind::Capture(c) => go(&c.sub, out),
            HirKind::Concat(items) => items.iter().for_each(|i| go(i, out)),
            _ => out.push(h),
        }
    }
    let mut out = Vec::new();
    go(h, &mut out);
    out
}

/// The shortest head of `items` after the strings `set`: the (folded) strings a match can
/// begin with, each containing a keyword. An alternation that cannot be enumerated as a whole
/// (`fo1_[\w-]{43}|fm2_...`) is followed branch by branch, each branch having to reach a
/// keyword by itself.
fn head_from(
    mut set: Vec<Vec<u8>>,
    items: &[&Hir],
    keywords: &[&[u8]],
    budget: &mut usize,
) -> Option<Vec<Vec<u8>>> {
    for (i, item) in items.iter().enumerate() {
        // Branch-by-branch descent multiplies: a hostile pattern must not make this spin.
        *budget = budget.checked_sub(1 + set.len())?;
        match strings(item) {
            Some(next) => set = product(&set, &next)?,
            None => {
                let HirKind::Alternation(alts) = item.kind() else {
                    return None;
                };
                let mut out = Vec::new();
                for alt in alts {
                    let mut branch = flat(alt);
                    // A branch that is a keyword-free literal prefix may still reach a keyword
                    // in the items after the alternation.
                    branch.extend_from_slice(&items[i + 1..]);
                    out.extend(head_from(set.clone(), &branch, keywords, budget)?);
                    if out.len() > MAX_HEAD_STRINGS {
                        return None;
                    }
                }
                out.sort_unstable();
                out.dedup();
                return Some(out);
            }
        }
        if set.iter().map(Vec::len).max().unwrap_or(0) > MAX_REACH {
            return None;
        }
        if set.iter().all(|s| keywords.iter().any(|k| contains(s, k))) {
            return Some(set);
        }
    }
    None
}

fn contains(s: &[u8], k: &[u8]) -> bool {
    s.len() >= k.len() && s.windows(k.len()).any(|w| w == k)
}

fn product(a: &[Vec<u8>], b: &[Vec<u8>]) -> Option<Vec<Vec<u8>>> {
    if a.len().saturating_mul(b.len()) > MAX_HEAD_STRINGS {
        return None;
    }
    let mut out = Vec::with_capacity(a.len() * b.len());
    for x in a {
        for y in b {
            let mut s = x.clone();
            s.extend_from_slice(y);
            out.push(s);
        }
    }
    out.sort_unstable();
    out.dedup();
    Some(out)
}

/// Every string `hir` matches, ASCII lower-cased (zero-width assertions match the empty
/// string: they only restrict where, never what); `None` when the set is large or infinite.
fn strings(hir: &Hir) -> Option<Vec<Vec<u8>>> {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => Some(vec![Vec::new()]),
        HirKind::Literal(lit) => Some(vec![lit.0.to_ascii_lowercase()]),
        HirKind::Class(class) => {
            let mut bytes = [false; 256];
            match class {
                Class::Bytes(c) => {
                    for r in c.iter() {
                        if usize::from(r.end() - r.start()) >= 256 {
                            return None;
                        }
                        for b in r.start()..=r.end() {
                            bytes[usize::from(b.to_ascii_lowercase())] = true;
                        }
                    }
                }
                Class::Unicode(c) => {
                    for r in c.iter() {
                        let (s, e) = (u32::from(r.start()), u32::from(r.end()));
                        if e > 0x7f {
                            return None;
                        }
                        for b in s..=e {
                            let b = u8::try_from(b).ok()?;
                            bytes[usize::from(b.to_ascii_lowercase())] = true;
                        }
                    }
                }
            }
            let out: Vec<Vec<u8>> = (0..=255u8)
                .filter(|&b| bytes[usize::from(b)])
                .map(|b| vec![b])
                .collect();
            (out.len() <= MAX_CLASS).then_some(out)
        }
        HirKind::Capture(c) => strings(&c.sub),
        HirKind::Concat(items) => {
            let mut set = vec![Vec::new()];
            for item in items {
                set = product(&set, &strings(item)?)?;
            }
            Some(set)
        }
        HirKind::Alternation(alts) => {
            let mut out = Vec::new();
            for a in alts {
                out.extend(strings(a)?);
                if out.len() > MAX_HEAD_STRINGS {
                    return None;
                }
            }
            out.sort_unstable();
            out.dedup();
            Some(out)
        }
        HirKind::Repetition(rep) => {
            let max = rep.max?;
            if max > 16 {
                return None;
            }
            let sub = strings(&rep.sub)?;
            let mut out = Vec::new();
            let mut power = vec![Vec::new()];
            for n in 0..=max {
                if n >= rep.min {
                    out.extend(power.iter().cloned());
                    if out.len() > MAX_HEAD_STRINGS {
                        return None;
                    }
                }
                if n < max {
                    power = product(&power, &sub)?;
                }
            }
            out.sort_unstable();
            out.dedup();
            Some(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(re: &str) -> Hir {
        regex_syntax::ParserBuilder::new()
            .unicode(false)
            .utf8(false)
            .build()
            .parse(re)
            .expect("parses")
    }

    /// The head's offsets per keyword, as lists.
    fn offsets(p: &Plan) -> Option<Vec<(usize, Vec<usize>)>> {
        match p {
            Plan::Head { starts } => Some(
                starts
                    .iter()
                    .map(|&(k, m)| (k, (0..64).filter(|o| m & (1 << o) != 0).collect()))
                    .collect(),
            ),
            _ => None,
        }
    }

    fn kw<'a>(k: &[&'a [u8]]) -> Vec<(usize, &'a [u8])> {
        k.iter().copied().enumerate().collect()
    }

    #[test]
    fn literal_prefix_is_a_head() {
        let p = plan(&parse(r"\bghp_[A-Za-z0-9]{36}\b"), &kw(&[b"ghp_"]));
        assert_eq!(offsets(&p), Some(vec![(0, vec![0])]));
    }

    #[test]
    fn case_insensitive_alternation_head_with_unbounded_tail() {
        let p = plan(
            &parse(r"(?i)(?:password|[_.-]pass|api[_.-]?key)[ \t]*=(?P<secret>[a-z0-9]+)"),
            &kw(&[
                b"pass", b"apikey", b"api_key", b"api-key", b"api.key", b"unused",
            ]),
        );
        // `pass` starts `password` and follows one of `_.-`; each `api?key` at offset 0.
        assert_eq!(
            offsets(&p),
            Some(vec![
                (0, vec![0, 1]),
                (1, vec![0]),
                (2, vec![0]),
                (3, vec![0]),
                (4, vec![0]),
            ])
        );
    }

    #[test]
    fn head_must_contain_a_keyword_in_every_branch() {
        // `tok` does not contain `token`: no head; unbounded, so the whole buffer.
        assert_eq!(
            plan(&parse(r"(?:token|tok)=[a-z]+"), &kw(&[b"token"])),
            Plan::Whole
        );
        // Bounded instead: windows of the maximum length.
        assert_eq!(
            plan(&parse(r"[a-z]{0,5}kw[0-9]{3,9}"), &kw(&[b"kw"])),
            Plan::Bounded { max: 16 }
        );
        // Empty matches cannot contain a keyword: never windowed.
        assert_eq!(plan(&parse(r"(?:kw)?"), &kw(&[b"kw"])), Plan::Whole);
        assert_eq!(plan(&parse(r"kw[0-9]"), &[]), Plan::Whole);
    }

    #[test]
    fn alternations_are_followed_branch_by_branch() {
        let p = plan(
            &parse(r"\b(?P<secret>fo1_[\w-]{43}|(?:fm1[ar]|fm2)_[A-Za-z0-9+/]{100,})"),
            &kw(&[b"fo1_", b"fm1a_", b"fm1r_", b"fm2_"]),
        );
        assert_eq!(
            offsets(&p),
            Some(vec![(0, vec![0]), (1, vec![0]), (2, vec![0]), (3, vec![0])])
        );
        // A branch without a keyword of its own continues into what follows the group.
        let p = plan(&parse(r"(?:ab|[a-z]{2}x)key=[0-9]+"), &kw(&[b"key="]));
        assert!(
            matches!(p, Plan::Prefix { min: 2, max: 3, .. }),
            "the wide branch has no head: {p:?}"
        );
        let p = plan(&parse(r"(?:ab|c[0-9]+)key=[0-9]+"), &kw(&[b"key="]));
        assert_eq!(p, Plan::Whole, "unbounded branch");
        let p = plan(&parse(r"(?:ab|cd)[0-9]?key=[0-9]+"), &kw(&[b"key="]));
        assert_eq!(offsets(&p), Some(vec![(0, vec![2, 3])]));
    }

    #[test]
    fn nested_alternations_stay_within_budget() {
        // Three sequential 600-way alternations (too many strings to enumerate, so followed
        // branch by branch), the keyword after them: the descent must give up, not walk 600^3
        // paths.
        let alt = format!(
            "(?:{})",
            (0..600)
                .map(|i| format!("w{i:03}"))
                .collect::<Vec<_>>()
                .join("|")
        );
        let re = format!("{}zzz[0-9]+", alt.repeat(3));
        let t = std::time::Instant::now();
        assert!(matches!(
            plan(&parse(&re), &kw(&[b"zzz"])),
            Plan::Prefix {
                min: 12,
                max: 12,
                ..
            }
        ));
        assert!(t.elapsed().as_secs() < 5, "{:?}", t.elapsed());
    }

    #[test]
    fn bounded_prefix_then_keyword_with_unbounded_tail() {
        let p = plan(
            &parse(r"-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----[A-Za-z0-9+/=\s]{32,}"),
            &kw(&[b"private key"]),
        );
        let Plan::Prefix { min, max, first } = p else {
            panic!("{p:?}")
        };
        assert_eq!((min, max), (10, 110));
        assert!(first[usize::from(b'-')] && !first[usize::from(b'B')]);
        // An optional first item widens the first bytes.
        let p = plan(&parse(r"(?:x-)?[a-z]{0,3}kw[0-9]+"), &kw(&[b"kw"]));
        let Plan::Prefix { min, max, first } = p else {
            panic!("{p:?}")
        };
        assert_eq!((min, max), (0, 5));
        assert!(first[usize::from(b'x')] && first[usize::from(b'q')] && first[usize::from(b'k')]);
        // A prefix that may match nothing but has no keyword-holding literal: no plan.
        assert_eq!(plan(&parse(r"[a-z]+kw[0-9]+"), &kw(&[b"kw"])), Plan::Whole);
    }

    #[test]
    fn core_and_tail_of_a_bounded_pattern() {
        let hir = parse(
            r"(?i)\b[a-z][a-z0-9+.-]{0,30}://[^\s:/@]{1,128}:(?P<secret>[^\s/@]{1,256})@[a-z]",
        );
        let (tail, ends) = core_tail(&hir, &kw(&[b"://"])).expect("core");
        assert_eq!(ends, vec![3]);
        assert_eq!(tail.properties().minimum_len(), Some(5));
        // A core with the keyword at two places: both ends.
        let (_, ends) =
            core_tail(&parse(r"[a-z]{0,3}(?:xkw|kwyy)[0-9]{1,4}"), &kw(&[b"kw"])).expect("core");
        assert_eq!(ends, vec![2, 4]);
        // Nothing after the core: no tail to check.
        assert!(core_tail(&parse(r"[a-z]{0,3}kw"), &kw(&[b"kw"])).is_none());
    }

    #[test]
    fn wide_classes_and_long_heads_end_the_head() {
        assert!(matches!(
            plan(&parse(r"[a-z]kw[0-9]+"), &kw(&[b"kw"])),
            Plan::Prefix { min: 1, max: 1, .. }
        ));
        let long = format!("{}[a-z]+kw[0-9]+", "x".repeat(70));
        assert_eq!(plan(&parse(&long), &kw(&[b"kw"])), Plan::Whole);
    }
}
