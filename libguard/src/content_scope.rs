//! The policy's secret-content scope (`[secrets] scope` minus `[secrets] exclude`) as a
//! matcher built once per process, used by `redact.rs` on every read-only open to decide
//! whether content detection applies.
//!
//! Owns only the lexical question "is this path in scope"; it never touches the file system,
//! allocates only when the matcher is first built, and takes no lock (the matcher is
//! immutable plain data published once, so it is inherited across fork as is).

use core::sync::atomic::{AtomicPtr, Ordering};
use guard_proto::Ruleset;

/// One `[secrets]` glob in the shape it has (the default policy's are all of the first three
/// kinds), so that the common shapes cost a prefix or component comparison instead of the
/// general matcher: the ~35 brace-expanded default globs took ~60,000 instructions per open
/// through `Ruleset::in_secret_scope`.
#[derive(Debug, PartialEq)]
enum Glob {
    /// `LIT/**`: the path is `LIT` or below it.
    Under(Vec<u8>),
    /// `**/LIT/**`: some run of whole components equals `LIT` (which may hold `/`).
    Component(Vec<u8>),
    /// `**/*SUFFIX`: the last component ends with `SUFFIX` (no `/` in it).
    LastEndsWith(Vec<u8>),
    /// Anything else: the general matcher.
    Other(Vec<u8>),
}

fn is_literal(b: &[u8]) -> bool {
    !b.iter()
        .any(|c| matches!(c, b'*' | b'?' | b'[' | b'\\' | b'{' | b'}'))
}

impl Glob {
    /// The general matcher on the pattern this glob was made from.
    fn slow_matches(&self, path: &[u8]) -> bool {
        let mut pat = Vec::new();
        match self {
            Glob::Under(lit) => {
                pat.extend_from_slice(lit);
                pat.extend_from_slice(b"/**");
            }
            Glob::Component(lit) => {
                pat.extend_from_slice(b"**/");
                pat.extend_from_slice(lit);
                pat.extend_from_slice(b"/**");
            }
            Glob::LastEndsWith(s) => {
                pat.extend_from_slice(b"**/*");
                pat.extend_from_slice(s);
            }
            Glob::Other(p) => pat.extend_from_slice(p),
        }
        guard_proto::ruleset::glob::glob_match(&pat, path, true, false)
    }

    fn new(pat: &[u8]) -> Glob {
        if let Some(mid) = pat
            .strip_prefix(b"**/")
            .and_then(|r| r.strip_suffix(b"/**"))
            && !mid.is_empty()
            && is_literal(mid)
        {
            return Glob::Component(mid.to_vec());
        }
        if let Some(suffix) = pat.strip_prefix(b"**/*")
            && is_literal(suffix)
            && !suffix.contains(&b'/')
        {
            return Glob::LastEndsWith(suffix.to_vec());
        }
        if let Some(lit) = pat.strip_suffix(b"/**")
            && !lit.is_empty()
            && is_literal(lit)
        {
            return Glob::Under(lit.to_vec());
        }
        Glob::Other(pat.to_vec())
    }

    fn under_matches(lit: &[u8], path: &[u8]) -> bool {
        path.starts_with(lit) && (path.len() == lit.len() || path.get(lit.len()) == Some(&b'/'))
    }
}

/// A 256-bit set of bytes: a one-load test that rules out most candidates before any compare.
#[derive(Default)]
struct ByteSet([u64; 4]);

impl ByteSet {
    fn insert(&mut self, b: u8) {
        self.0[usize::from(b >> 6)] |= 1 << (b & 63);
    }

    fn contains(&self, b: u8) -> bool {
        self.0[usize::from(b >> 6)] & (1 << (b & 63)) != 0
    }
}

/// One list of globs (`scope` or `exclude`), grouped by shape so that each shape is one tight
/// loop, with byte sets in front: the default exclude list has ~10 prefixes under HOME, 12
/// component names and 23 suffixes, and comparing every path with all of them cost ~3,800
/// instructions per in-scope open. With the byte sets a path usually costs one load per
/// component plus one per shape.
#[derive(Default)]
struct GlobSet {
    /// `LIT/**` literals. Those under HOME share a long head and differ near their end, so
    /// each is first tested on its last byte.
    under: Vec<Vec<u8>>,
    /// `**/LIT/**` literals, and for each first byte the literals that start with it (bit `i`
    /// of the mask is `component[i]`; literals past the 32nd are in `component_rest`, always
    /// compared).
    component: Vec<Vec<u8>>,
    component_by_first: Vec<u32>,
    component_rest: Vec<Vec<u8>>,
    /// `**/*SUFFIX` suffixes and the set of their last bytes.
    last_ends_with: Vec<Vec<u8>>,
    suffix_last: ByteSet,
    other: Vec<Glob>,
}

impl GlobSet {
    fn new<'a>(globs: impl Iterator<Item = &'a [u8]>) -> GlobSet {
        let mut set = GlobSet::default();
        for g in globs.map(Glob::new) {
            match g {
                Glob::Under(l) => set.under.push(l),
                Glob::Component(l) => {
                    // `Glob::new` only makes non-empty literals; an empty one would match
                    // nothing useful, so it is kept out of the fast index.
                    if let Some(&b) = l.first() {
                        if set.component.len() < 32 {
                            if set.component_by_first.is_empty() {
                                set.component_by_first = vec![0; 256];
                            }
                            set.component_by_first[usize::from(b)] |= 1 << set.component.len();
                            set.component.push(l);
                        } else {
                            set.component_rest.push(l);
                        }
                    }
                }
                Glob::LastEndsWith(l) => {
                    match l.last() {
                        Some(&b) => set.suffix_last.insert(b),
                        // `**/*`: every path with a last component matches.
                        None => set.other.push(Glob::LastEndsWith(l.clone())),
                    }
                    set.last_ends_with.push(l);
                }
                other => set.other.push(other),
            }
        }
        set
    }

    fn matches(&self, path: &[u8]) -> bool {
        if self.under.iter().any(|l| {
            l.last().is_some_and(|&b| path.get(l.len() - 1) == Some(&b))
                && Glob::under_matches(l, path)
        }) {
            return true;
        }
        if let Some(&b) = path.last()
            && self.suffix_last.contains(b)
        {
            let last = path.rsplit(|c| *c == b'/').next().unwrap_or(path);
            if self.last_ends_with.iter().any(|s| last.ends_with(s)) {
                return true;
            }
        }
        if !self.component.is_empty() || !self.component_rest.is_empty() {
            // `rest` starts a run of whole components equal to `l`.
            let at_run = |rest: &[u8], l: &[u8]| {
                (rest.len() == l.len() || rest.get(l.len()) == Some(&b'/'))
                    && rest.get(..l.len()) == Some(l)
            };
            let mut at = 0usize;
            while let Some(rest) = path.get(at..) {
                if let Some(&b) = rest.first() {
                    let mut mask = self
                        .component_by_first
                        .get(usize::from(b))
                        .copied()
                        .unwrap_or(0);
                    while mask != 0 {
                        let i = mask.trailing_zeros() as usize;
                        mask &= mask - 1;
                        if self.component.get(i).is_some_and(|l| at_run(rest, l)) {
                            return true;
                        }
                    }
                    if self.component_rest.iter().any(|l| at_run(rest, l)) {
                        return true;
                    }
                }
                match rest.iter().position(|c| *c == b'/') {
                    Some(i) => at += i + 1,
                    None => break,
                }
            }
        }
        self.other.iter().any(|g| g.slow_matches(path))
    }
}

/// The policy's content scope, precompiled once per process (immutable plain data: inherited
/// across fork as is).
pub struct ScopeMatcher {
    scope: GlobSet,
    exclude: GlobSet,
}

impl ScopeMatcher {
    fn new(rs: &Ruleset<'_>) -> ScopeMatcher {
        ScopeMatcher {
            scope: GlobSet::new(rs.secret_scope_globs()),
            exclude: GlobSet::new(rs.secret_exclude_globs()),
        }
    }

    /// Whether `path` (absolute and lexically normal, or as the program named it) is in scope.
    pub fn contains(&self, path: &[u8]) -> bool {
        self.scope.matches(path) && !self.exclude.matches(path)
    }
}

static SCOPE: AtomicPtr<ScopeMatcher> = AtomicPtr::new(core::ptr::null_mut());

/// The matcher of the loaded ruleset, built on first use.
pub fn matcher(rs: &Ruleset<'_>) -> &'static ScopeMatcher {
    let cur = SCOPE.load(Ordering::Acquire);
    // SAFETY: published pointers are never freed.
    if let Some(m) = unsafe { cur.as_ref() } {
        return m;
    }
    let fresh = Box::into_raw(Box::new(ScopeMatcher::new(rs)));
    match SCOPE.compare_exchange(cur, fresh, Ordering::AcqRel, Ordering::Acquire) {
        // SAFETY: just published, never freed.
        Ok(_) => unsafe { &*fresh },
        Err(other) => {
            // SAFETY: `fresh` was never shared; `other` was published and is never freed.
            drop(unsafe { Box::from_raw(fresh) });
            unsafe { &*other }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The precompiled scope agrees with the general glob matcher on the default globs and on
    /// other shapes.
    #[test]
    fn scope_globs_agree_with_the_glob_matcher() {
        use guard_proto::ruleset::glob::glob_match;
        let pats: Vec<&[u8]> = vec![
            b"/home/u/ws/**",
            b"/home/u/**",
            b"**/node_modules/**",
            b"**/.git/objects/**",
            b"**/*.png",
            b"**/*.tar",
            b"/home/u/.cargo/registry/**",
            b"/home/u/ws/private/**",
            b"/home/u/w[s]/**",
            b"**/*.{a,b}",
            b"/opt/**/x",
        ];
        let paths: Vec<&[u8]> = vec![
            b"/home/u/ws",
            b"/home/u/ws/a.rs",
            b"/home/u/wsx/a.rs",
            b"/home/u/ws/node_modules",
            b"/home/u/ws/node_modules/x/y.js",
            b"/home/u/ws/a/node_modulesx/y",
            b"/home/u/ws/.git/objects/ab/cd",
            b"/home/u/ws/.git/objectsx",
            b"/home/u/img.png",
            b"/home/u/img.png/x",
            b"/home/u/.png",
            b"/home/u/a.tar",
            b"/home/u/.cargo/registry",
            b"/home/u/.cargo/registryx/y",
            b"/home/u/ws/private/n.md",
            b"node_modules/x",
            b"a.png",
            b"/opt/q/r/x",
            b"/",
            b"",
        ];
        for p in &pats {
            let g = Glob::new(p);
            for t in &paths {
                let m = ScopeMatcher {
                    scope: GlobSet::new(std::iter::once(*p)),
                    exclude: GlobSet::new(std::iter::empty()),
                };
                assert_eq!(m.contains(t), g.slow_matches(t), "{g:?}");
                assert_eq!(
                    m.contains(t),
                    glob_match(p, t, true, false),
                    "{} vs {} ({g:?})",
                    String::from_utf8_lossy(p),
                    String::from_utf8_lossy(t)
                );
            }
        }
        assert!(matches!(
            Glob::new(b"**/node_modules/**"),
            Glob::Component(_)
        ));
        assert!(matches!(Glob::new(b"**/*.png"), Glob::LastEndsWith(_)));
        assert!(matches!(Glob::new(b"/home/u/**"), Glob::Under(_)));
        assert!(matches!(Glob::new(b"/home/u/w[s]/**"), Glob::Other(_)));
    }

    /// The indexed matcher agrees with the general glob matcher on the default policy's scope
    /// and exclude lists over paths built from their own literals, near misses and edges.
    #[test]
    fn indexed_matcher_agrees_with_glob_match_on_generated_paths() {
        use guard_proto::ruleset::glob::glob_match;
        let scope: Vec<&[u8]> = vec![b"/home/u/ws/**", b"/home/u/**"];
        let mut exclude: Vec<Vec<u8>> = Vec::new();
        for c in [
            "node_modules",
            "target",
            "site-packages",
            "dist-packages",
            ".git/objects",
            "__pycache__",
            ".venv",
            "venv",
            ".tox",
            ".nox",
            ".mypy_cache",
            ".pytest_cache",
        ] {
            exclude.push(format!("**/{c}/**").into_bytes());
        }
        for u in [
            ".rustup",
            ".cargo/registry",
            ".cargo/git",
            ".npm/_cacache",
            "go/pkg",
        ] {
            exclude.push(format!("/home/u/{u}/**").into_bytes());
        }
        for e in ["png", "jpg", "jpeg", "gz", "tar", "so", "o", "a", "pyc"] {
            exclude.push(format!("**/*.{e}").into_bytes());
        }
        let m = ScopeMatcher {
            scope: GlobSet::new(scope.iter().copied()),
            exclude: GlobSet::new(exclude.iter().map(|v| v.as_slice())),
        };
        let parts = [
            "home",
            "u",
            "ws",
            "node_modules",
            "node_modulesx",
            "xnode_modules",
            ".git",
            "objects",
            "go",
            "pkg",
            ".cargo",
            "registry",
            "git",
            "a.png",
            "a.pngx",
            "b.o",
            "c.so",
            ".o",
            "o",
            "tar",
            "x.tar",
            "target",
            "venv",
            ".venv",
            "src",
            "",
        ];
        let mut n = 0u32;
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let depth = (seed % 7) as usize;
            let mut path = String::from(if seed & 8 == 0 {
                "/home/u"
            } else {
                "/home/u/ws"
            });
            let mut r = seed >> 8;
            for _ in 0..depth {
                path.push('/');
                path.push_str(parts[(r % parts.len() as u64) as usize]);
                r /= parts.len() as u64;
            }
            let p = path.as_bytes();
            let want = scope.iter().any(|g| glob_match(g, p, true, false))
                && !exclude.iter().any(|g| glob_match(g, p, true, false));
            assert_eq!(m.contains(p), want, "{path}");
            n += u32::from(want);
        }
        // Both answers occur, so the comparison tested something.
        assert!(n > 1000 && n < 19_000, "{n}");
    }
}
