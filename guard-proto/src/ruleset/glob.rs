//! Glob matching without allocation, and the compile-side helpers (validation, brace expansion,
//! escaping, literal-prefix analysis) the writer and the policy compiler use.
//!
//! Syntax (policies/LANGUAGE.md): `*` any run except `/` (in path mode), `**` as a whole
//! component any run of components, `?` one character (not `/` in path mode), `[abc]`, `[a-z]`,
//! `[!abc]` classes, `\x` a literal `x`. Braces are expanded before matching (compile time), so
//! the matcher never sees them. The matcher is the classic two-level backtracking algorithm: one
//! restart point for the innermost `*` and one for the innermost `**`, which is linear in
//! practice and never recurses.

/// Matches `text` against `pat`. `path_mode`: `/` separates components (`*`, `?` and classes do
/// not match it, `**` spans components). `fold`: ASCII case-insensitive (hosts).
pub fn glob_match(pat: &[u8], text: &[u8], path_mode: bool, fold: bool) -> bool {
    // `**/P` with `P` one component (the usual "a file named X anywhere"): `P` can only match
    // the last component, so match it there instead of retrying at every component start.
    // (Plain loops: the strings are short, and a SIMD search's setup costs more than it saves.)
    if path_mode && let Some(p) = pat.strip_prefix(b"**/") {
        if is_one_component(p) {
            let base = match text.iter().rposition(|&b| b == b'/') {
                Some(i) => &text[i + 1..],
                None => text,
            };
            // `*.ext` (a star, then literal text): a suffix test.
            if let Some(lit) = p.strip_prefix(b"*")
                && is_literal(lit)
            {
                return base.len() >= lit.len()
                    && same_text(&base[base.len() - lit.len()..], lit, fold);
            }
            return match_from(p, base, path_mode, fold);
        }
        // `**/name/**` (a directory named `name` anywhere, the path itself included): some
        // component equals `name`.
        if let Some(name) = p.strip_suffix(b"/**")
            && !name.is_empty()
            && is_literal(name)
        {
            return text.split(|&b| b == b'/').any(|c| same_text(c, name, fold));
        }
    }
    match_from(pat, text, path_mode, fold)
}

/// No glob syntax and no `/`: the pattern is plain text within one component.
fn is_literal(p: &[u8]) -> bool {
    !p.iter().any(|&b| b == b'/' || is_meta(b))
}

/// Equal texts, ASCII case-insensitively when `fold`.
pub(super) fn same_text(a: &[u8], b: &[u8], fold: bool) -> bool {
    if fold {
        a.eq_ignore_ascii_case(b)
    } else {
        a == b
    }
}

fn match_from(pat: &[u8], text: &[u8], path_mode: bool, fold: bool) -> bool {
    let (mut px, mut tx) = (0usize, 0usize);
    // (pattern index after the star, next text index to try)
    let mut star: Option<(usize, usize)> = None;
    // (pattern index after the globstar, next text index, restart only at component starts)
    let mut gstar: Option<(usize, usize, bool)> = None;
    loop {
        if let Some(&c) = pat.get(px) {
            if c == b'*' {
                let mut after = px + 1;
                while pat.get(after) == Some(&b'*') {
                    after += 1;
                }
                if path_mode && after - px >= 2 {
                    let at_comp_start = px == 0 || pat.get(px - 1) == Some(&b'/');
                    if at_comp_start && after == pat.len() {
                        // A trailing `**` matches whatever is left, `/` included.
                        return true;
                    }
                    if at_comp_start && pat.get(after) == Some(&b'/') {
                        gstar = Some((after + 1, tx, true));
                        star = None;
                        px = after + 1;
                        continue;
                    }
                    gstar = Some((after, tx + 1, false));
                    star = None;
                    px = after;
                    continue;
                }
                star = Some((after, tx + 1));
                px = after;
                continue;
            }
            if c == b'/' && path_mode && tx == text.len() && is_trailing_globstar(pat, px) {
                // `/a/**` also matches `/a` itself.
                return true;
            }
            if let Some(&t) = text.get(tx) {
                let (ok, adv) = match c {
                    b'?' => (!(path_mode && t == b'/'), 1),
                    b'[' => match match_class(pat, px, t, fold) {
                        Some((hit, len)) => (hit && !(path_mode && t == b'/'), len),
                        None => (eq(b'[', t, fold), 1),
                    },
                    b'\\' => match pat.get(px + 1) {
                        Some(&n) => (eq(n, t, fold), 2),
                        None => (t == b'\\', 1),
                    },
                    _ => (eq(c, t, fold), 1),
                };
                if ok {
                    px += adv;
                    tx += 1;
                    continue;
                }
            }
        } else if tx == text.len() {
            return true;
        }
        // Mismatch: let the innermost `*` eat one more character, unless that is a `/`.
        if let Some((sp, st)) = star {
            if st <= text.len() && !(path_mode && text.get(st - 1) == Some(&b'/')) {
                px = sp;
                tx = st;
                star = Some((sp, st + 1));
                continue;
            }
            star = None;
        }
        if let Some((gp, gt, comp)) = gstar {
            if comp {
                let rest = text.get(gt..).unwrap_or(&[]);
                match memchr::memchr(b'/', rest) {
                    Some(i) => {
                        let nt = gt + i + 1;
                        gstar = Some((gp, nt, true));
                        px = gp;
                        tx = nt;
                        continue;
                    }
                    None => return false,
                }
            } else if gt <= text.len() {
                gstar = Some((gp, gt + 1, false));
                px = gp;
                tx = gt;
                continue;
            }
        }
        return false;
    }
}

/// No `/` and no `**`: the pattern can only ever match within one component.
fn is_one_component(p: &[u8]) -> bool {
    let mut prev = 0u8;
    for &b in p {
        if b == b'/' || (b == b'*' && prev == b'*') {
            return false;
        }
        prev = b;
    }
    true
}

#[inline]
fn eq(a: u8, b: u8, fold: bool) -> bool {
    a == b || (fold && a.eq_ignore_ascii_case(&b))
}

fn is_trailing_globstar(pat: &[u8], px: usize) -> bool {
    let rest = pat.get(px + 1..).unwrap_or(&[]);
    rest.len() >= 2 && rest.iter().all(|&b| b == b'*')
}

/// Matches one character against the class starting at `pat[px] == '['`. Returns (hit, length of
/// the class in the pattern), or None when the class is not closed (then `[` is literal).
fn match_class(pat: &[u8], px: usize, t: u8, fold: bool) -> Option<(bool, usize)> {
    let mut i = px + 1;
    let negate = matches!(pat.get(i), Some(b'!') | Some(b'^'));
    if negate {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    loop {
        let mut c = *pat.get(i)?;
        if c == b']' && !first {
            return Some((hit != negate, i + 1 - px));
        }
        first = false;
        if c == b'\\' {
            i += 1;
            c = *pat.get(i)?;
        }
        if pat.get(i + 1) == Some(&b'-') && pat.get(i + 2).is_some_and(|&e| e != b']') {
            let mut hi = *pat.get(i + 2)?;
            let mut skip = 3;
            if hi == b'\\' {
                hi = *pat.get(i + 3)?;
                skip = 4;
            }
            let in_range = |x: u8| c <= x && x <= hi;
            if in_range(t)
                || (fold && (in_range(t.to_ascii_lowercase()) || in_range(t.to_ascii_uppercase())))
            {
                hit = true;
            }
            i += skip;
        } else {
            if eq(c, t, fold) {
                hit = true;
            }
            i += 1;
        }
    }
}

/// Characters with a meaning in a glob (before brace expansion).
pub fn is_meta(b: u8) -> bool {
    matches!(b, b'*' | b'?' | b'[' | b']' | b'{' | b'}' | b'\\' | b',')
}

/// Escapes a literal (a substituted home directory, a workspace) so it matches only itself.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii() && is_meta(c as u8) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Whether the glob (after brace expansion) has any wildcard.
pub fn has_wildcard(g: &str) -> bool {
    first_wildcard(g.as_bytes()).is_some()
}

/// Byte offset of the first unescaped `*`, `?` or `[`.
pub fn first_wildcard(g: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(&c) = g.get(i) {
        match c {
            b'\\' => i += 2,
            b'*' | b'?' | b'[' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// Length of the head of `g` that can be compared literally before running the matcher: up to
/// (not including) the last `/` before the first wildcard or escape, or all of `g` when it has
/// none. Cutting before a `/` keeps `**` component semantics and `/a/**` matching `/a`.
pub fn literal_head(g: &[u8]) -> usize {
    match g
        .iter()
        .position(|&c| matches!(c, b'*' | b'?' | b'[' | b'\\'))
    {
        None => g.len(),
        Some(w) => g[..w].iter().rposition(|&c| c == b'/').unwrap_or(0),
    }
}

/// Removes escapes from a wildcard-free glob, giving the literal it matches.
pub fn unescape(g: &str) -> String {
    let mut out = String::with_capacity(g.len());
    let mut chars = g.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            } else {
                out.push('\\');
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Checks glob syntax: closed classes, balanced non-nested braces, no trailing `\`.
/// Returns the byte offset and a message on error.
pub fn validate(g: &str) -> Result<(), (usize, String)> {
    let b = g.as_bytes();
    let mut i = 0;
    let mut brace_open: Option<usize> = None;
    while let Some(&c) = b.get(i) {
        match c {
            b'\\' => {
                if i + 1 >= b.len() {
                    return Err((i, "a trailing `\\` escapes nothing".into()));
                }
                i += 2;
                continue;
            }
            b'[' => {
                if match_class(b, i, 0, false).is_none() {
                    return Err((i, "unclosed character class `[`".into()));
                }
                // Skip to the end of the class (its `{`, `*` are literal there).
                let mut j = i + 1;
                if matches!(b.get(j), Some(b'!') | Some(b'^')) {
                    j += 1;
                }
                let mut first = true;
                while let Some(&d) = b.get(j) {
                    if d == b']' && !first {
                        break;
                    }
                    if d == b'\\' {
                        j += 1;
                    }
                    first = false;
                    j += 1;
                }
                i = j + 1;
                continue;
            }
            b'{' => {
                if brace_open.is_some() {
                    return Err((i, "nested braces `{` are not supported".into()));
                }
                brace_open = Some(i);
            }
            b'}' => {
                if brace_open.is_none() {
                    return Err((i, "`}` without a matching `{`".into()));
                }
                brace_open = None;
            }
            _ => {}
        }
        i += 1;
    }
    if let Some(at) = brace_open {
        return Err((at, "unclosed brace `{`".into()));
    }
    Ok(())
}

/// Expands `{a,b}` alternatives (not nested) into separate globs. Fails above `limit` results.
pub fn expand_braces(g: &str, limit: usize) -> Result<Vec<String>, String> {
    let mut out = vec![String::new()];
    let b = g.as_bytes();
    let mut i = 0;
    let mut lit_start = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'[' => {
                // A class is copied as is.
                let mut j = i + 1;
                if matches!(b.get(j), Some(b'!') | Some(b'^')) {
                    j += 1;
                }
                let mut first = true;
                while let Some(&d) = b.get(j) {
                    if d == b']' && !first {
                        break;
                    }
                    if d == b'\\' {
                        j += 1;
                    }
                    first = false;
                    j += 1;
                }
                i = j + 1;
            }
            b'{' => {
                let lit = &g[lit_start..i];
                let mut j = i + 1;
                let mut alts: Vec<&str> = Vec::new();
                let mut alt_start = j;
                loop {
                    match b.get(j) {
                        None => return Err("unclosed brace `{`".into()),
                        Some(b'\\') => j += 2,
                        Some(b',') => {
                            alts.push(&g[alt_start..j]);
                            j += 1;
                            alt_start = j;
                        }
                        Some(b'}') => {
                            alts.push(&g[alt_start..j]);
                            break;
                        }
                        Some(_) => j += 1,
                    }
                }
                if out.len() * alts.len() > limit {
                    return Err(format!("brace expansion gives more than {limit} globs"));
                }
                let mut next = Vec::with_capacity(out.len() * alts.len());
                for prefix in &out {
                    for a in &alts {
                        next.push(format!("{prefix}{lit}{a}"));
                    }
                }
                out = next;
                i = j + 1;
                lit_start = i;
            }
            _ => i += 1,
        }
    }
    let tail = g.get(lit_start..).unwrap_or("");
    for o in &mut out {
        o.push_str(tail);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pat: &str, text: &str) -> bool {
        glob_match(pat.as_bytes(), text.as_bytes(), true, false)
    }
    fn a(pat: &str, text: &str) -> bool {
        glob_match(pat.as_bytes(), text.as_bytes(), false, false)
    }

    /// The `**/P` shortcut must agree with the general matcher on every input.
    #[test]
    fn leading_globstar_shortcut_agrees_with_general_matcher() {
        let pats = [
            "**/.env",
            "**/.env.*",
            "**/*.pem",
            "**/id_*",
            "**/?",
            "**/*",
            "**/[a.]b*",
            "**/\\*x",
            "**/a*b*c",
            "**/",
            "**/*.e",
            "**/*ab",
            "**/a/**",
            "**/ab/**",
            "**/.e/**",
            "**/a*/**",
            "**/a/b/**",
            "**/a/**/b",
        ];
        // Texts are random paths over components that hit and nearly hit the patterns.
        let parts: [&[u8]; 16] = [
            b"a", b"b", b"ab", b"AB", b".env", b".ENV.x", b".envrc", b"x.pem", b"id_rsa", b".e",
            b"a.E", b"*x", b"", b"abc", b"axbyc", b"q",
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for pat in pats {
            let mut hits = 0;
            for _ in 0..20000 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let n = (seed % 5) as usize;
                let mut text: Vec<u8> = Vec::new();
                if seed & (1 << 60) != 0 {
                    text.push(b'/');
                }
                for i in 0..n {
                    if i > 0 {
                        text.push(b'/');
                    }
                    text.extend_from_slice(parts[((seed >> (8 + i * 4)) & 15) as usize]);
                }
                for fold in [false, true] {
                    let fast = glob_match(pat.as_bytes(), &text, true, fold);
                    assert_eq!(
                        fast,
                        match_from(pat.as_bytes(), &text, true, fold),
                        "{pat} on {:?}",
                        String::from_utf8_lossy(&text)
                    );
                    hits += usize::from(fast);
                }
            }
            // The generated texts must exercise the matching side too, not only mismatches.
            assert!(hits > 0, "{pat} never matched");
        }
    }

    #[test]
    fn single_star_stays_in_component() {
        assert!(p("/h/.ssh/id_*", "/h/.ssh/id_rsa"));
        assert!(p("/h/.ssh/id_*", "/h/.ssh/id_"));
        assert!(!p("/h/.ssh/id_*", "/h/.ssh/id_rsa/x"));
        assert!(p("/a/*/c", "/a/b/c"));
        assert!(!p("/a/*/c", "/a/b/x/c"));
        assert!(p("/a/*.txt", "/a/.txt"));
    }

    #[test]
    fn globstar_spans_components() {
        assert!(p("/a/**", "/a"));
        assert!(p("/a/**", "/a/b"));
        assert!(p("/a/**", "/a/b/c/d"));
        assert!(!p("/a/**", "/ab"));
        assert!(!p("/a/**", "/b/a"));
        assert!(p("**/.env", "/x/y/.env"));
        assert!(p("**/.env", "/.env"));
        assert!(!p("**/.env", "/x/y/.envrc"));
        assert!(p("**/*.pem", "/k/a.pem"));
        assert!(!p("**/*.pem", "/k/a.pem.bak"));
        assert!(p("/a/**/b", "/a/b"));
        assert!(p("/a/**/b", "/a/x/y/b"));
        assert!(!p("/a/**/b", "/a/x/y/bc"));
        assert!(p("/a/**/*.c", "/a/x/y.c"));
        assert!(p("**", "/anything/at/all"));
        assert!(p("/a/x**y", "/a/x/q/y"));
    }

    #[test]
    fn question_classes_escapes() {
        assert!(p("/a/?", "/a/b"));
        assert!(!p("/a?b", "/a/b"));
        assert!(p("/a/[abc]", "/a/b"));
        assert!(!p("/a/[abc]", "/a/d"));
        assert!(p("/a/[a-c]x", "/a/cx"));
        assert!(p("/a/[!a-c]x", "/a/dx"));
        assert!(!p("/a/[!a-c]x", "/a/bx"));
        assert!(p(r"/a/\*", "/a/*"));
        assert!(!p(r"/a/\*", "/a/b"));
        assert!(p("/a/[]]", "/a/]"));
    }

    #[test]
    fn argument_mode_star_crosses_slash() {
        assert!(a("+*", "+refs/heads/main"));
        assert!(a("--force-with-lease*", "--force-with-lease=main"));
        assert!(!a("--force", "--force-with-lease"));
        assert!(a("-*r*", "-rf"));
        assert!(!a("-*r*", "-f"));
        assert!(glob_match(b"*.INTERNAL", b"db.internal", false, true));
    }

    #[test]
    fn pathological_patterns_terminate() {
        let text = "a".repeat(200);
        assert!(!a("*a*a*a*a*a*a*a*a*b", &text));
        assert!(!p("**/**/**/**/x", &format!("/{}", "a/".repeat(50))));
    }

    #[test]
    fn validation_and_braces() {
        assert!(validate("/a/[bc").is_err());
        assert!(validate("/a/{b,{c}}").is_err());
        assert!(validate("/a/{b,c").is_err());
        assert!(validate("/a/b}").is_err());
        assert!(validate("/a/[{]").is_ok());
        assert_eq!(
            expand_braces("/a/{b,c}/{x,y}.z", 64).unwrap_or_default(),
            vec!["/a/b/x.z", "/a/b/y.z", "/a/c/x.z", "/a/c/y.z"]
        );
        assert_eq!(
            expand_braces("/p/[{]", 8).unwrap_or_default(),
            vec!["/p/[{]"]
        );
        assert!(expand_braces("{a,b}{a,b}{a,b}", 4).is_err());
        assert_eq!(escape("/h/[x]"), r"/h/\[x\]");
        assert!(p(&escape("/h/[x]"), "/h/[x]"));
        assert_eq!(first_wildcard(br"/a\*b*"), Some(5));
        assert_eq!(unescape(r"/a\*b"), "/a*b");
        assert_eq!(literal_head(b"/srv/data/**"), 9);
        assert_eq!(literal_head(b"/etc/passwd"), 11);
        assert_eq!(literal_head(b"**/x"), 0);
        assert_eq!(literal_head(br"/a/b\*"), 2);
        // Splitting at the head never changes the result.
        for (pat, texts) in [
            (
                "/srv/data/**",
                &["/srv/data", "/srv/data/x/y", "/srv/datax", "/srv"][..],
            ),
            ("/a/x**/b", &["/a/xy/z/b", "/a/x/b", "/a/b"]),
            ("/h/.ssh/id_*", &["/h/.ssh/id_rsa", "/h/.ssh/x"]),
        ] {
            let h = literal_head(pat.as_bytes());
            for t in texts {
                let split = t.len() >= h
                    && t.as_bytes()[..h] == pat.as_bytes()[..h]
                    && glob_match(&pat.as_bytes()[h..], &t.as_bytes()[h..], true, false);
                assert_eq!(split, p(pat, t), "{pat} {t}");
            }
        }
    }
}
