//! Matching actions against rules, in place on the mapped bytes.
//!
//! `visit` reports every matching rule (possibly more than once) to a callback; `evaluate` and
//! `for_each_match` fold over it. File and exec actions first pick candidate rules from the
//! hash indexes, then run the full rule check on each candidate; connect and http rules are
//! few and scanned in order.

use std::net::IpAddr;

use super::exec::{Overlay, SplitArgv, basename, is_assignment, payload_start, wrapper};
use super::format::*;
use super::glob::{glob_match, same_text};
use super::graphql::for_each_top_field;
use super::{RegexCache, Ruleset};
use crate::action::{Action, Argv, Context, EnvLookup, FileAccess};

/// Subcommand words recorded per command; rules with more words walk the argv themselves.
const WORDS_MAX: usize = 8;

/// Positions of the first subcommand words of one command, found on demand and shared by all
/// candidate rules of that command (so each option's value-table lookup happens once).
struct Words {
    pos: [u32; WORDS_MAX],
    n: usize,
    /// Next argv index to examine, and whether options are still recognised (before `--`).
    next: usize,
    opts: bool,
    /// The argv has no words beyond the `n` recorded.
    complete: bool,
}

/// Nesting limit for wrappers (`sudo env nice timeout ...`).
const MAX_WRAPPER_DEPTH: u8 = 8;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Real evaluation: every `when` key must hold.
    Normal,
    /// Checking a rule's own examples (see `Ruleset::rule_matches_example`).
    Example,
}

/// ASCII case-insensitive substring search without allocation.
pub(super) fn contains_ignore_case(hay: &[u8], needle: &[u8]) -> bool {
    if needle.is_empty() {
        return true;
    }
    let (first, rest) = (needle[0], &needle[1..]);
    let (lo, up) = (first.to_ascii_lowercase(), first.to_ascii_uppercase());
    let mut start = 0;
    while let Some(i) = hay.get(start..).and_then(|h| memchr::memchr2(lo, up, h)) {
        let at = start + i;
        if hay
            .get(at + 1..at + 1 + rest.len())
            .is_some_and(|s| s.eq_ignore_ascii_case(rest))
        {
            return true;
        }
        start = at + 1;
    }
    false
}

impl<'a> Ruleset<'a> {
    pub(super) fn visit(
        &self,
        action: &Action<'_>,
        ctx: &Context<'_>,
        mode: Mode,
        cache: Option<&RegexCache>,
        f: &mut dyn FnMut(u32),
    ) {
        match action {
            Action::File { path, access } => self.visit_file(path, *access, ctx, mode, f),
            Action::Exec { argv, program } => {
                self.visit_exec(*argv, 0, *program, ctx.env, ctx, mode, 0, f)
            }
            Action::Connect { host, ip, port } => {
                let (s, n) = Self::range(self.meta(), META_CONNECT_RULES);
                for i in s..s + n {
                    let r = self.list(0, i);
                    if self.connect_rule_matches(r, *host, *ip, *port, ctx, mode) {
                        f(r);
                    }
                }
            }
            Action::Http {
                method,
                host,
                path,
                body,
            } => {
                let (s, n) = Self::range(self.meta(), META_HTTP_RULES);
                for i in s..s + n {
                    let r = self.list(0, i);
                    if self.http_rule_matches(r, method, host, path, body, ctx, mode, cache) {
                        f(r);
                    }
                }
            }
        }
    }

    fn rule_rec(&self, r: u32) -> &'a [u8] {
        self.rec(SEC_RULES, r as usize)
    }

    fn slot(rec: &[u8], slot: usize) -> (usize, usize) {
        Self::range(rec, RULE_RANGES + slot * 8)
    }

    fn any_pat(&self, rec: &[u8], slot: usize, text: &[u8], path_mode: bool, fold: bool) -> bool {
        let (s, n) = Self::slot(rec, slot);
        (s..s + n).any(|i| self.pat_match(i, text, path_mode, fold))
    }

    /// Matches pattern `i` against `text`: the literal head (see `glob::literal_head`) by a
    /// plain comparison, then the glob matcher on the rest only.
    pub(super) fn pat_match(&self, i: usize, text: &[u8], path_mode: bool, fold: bool) -> bool {
        let pat = self.pat_text(i);
        let lit = rd_u16(self.rec(SEC_PATS, i), PAT_LIT) as usize;
        let (Some(ph), Some(th)) = (pat.get(..lit), text.get(..lit)) else {
            // Text shorter than the literal head: no match. A head longer than the pattern only
            // comes from a damaged file: ignore it.
            return lit > pat.len() && glob_match(pat, text, path_mode, fold);
        };
        same_text(ph, th, fold) && glob_match(&pat[lit..], &text[lit..], path_mode, fold)
    }

    /// Hash-table lookup: calls `f(value)` for every value filed under `key`; returns whether
    /// the key is present.
    fn lookup(&self, b: usize, e: usize, h: u64, key: &[u8], f: &mut dyn FnMut(u32)) -> bool {
        let buckets = self.secs[b];
        let nb = (buckets.len() / 4).saturating_sub(1);
        if nb == 0 {
            return false;
        }
        let bi = (h as usize) & (nb - 1);
        let (start, end) = (rd_u32(buckets, bi * 4), rd_u32(buckets, bi * 4 + 4));
        for i in start..end {
            let ent = self.rec(e, i as usize);
            if rd_u64(ent, ENTRY_HASH) == h && self.str_bytes(ent, ENTRY_KEY) == key {
                // Keys are unique within a table: this entry's rule list is the whole answer.
                let (vs, vn) = Self::range(ent, ENTRY_VALUES);
                for k in vs..vs + vn {
                    f(self.list(0, k));
                }
                return true;
            }
        }
        false
    }

    fn table_empty(&self, e: usize) -> bool {
        self.secs[e].is_empty()
    }

    fn when_holds(
        &self,
        rec: &[u8],
        env: &dyn EnvLookup,
        ctx: &Context<'_>,
        mode: Mode,
        env_applies: bool,
    ) -> bool {
        if mode == Mode::Normal && rd_u8(rec, RULE_FLAGS) & FLAG_INACTIVE != 0 {
            return false;
        }
        if mode == Mode::Normal || env_applies {
            let (s, n) = Self::slot(rec, SLOT_WHEN_ENV);
            let mut i = s;
            while i + 1 < s + n {
                let ok = match env.get(self.pat_text(i)) {
                    Some(v) => self.pat_match(i + 1, v, false, false),
                    None => false,
                };
                if !ok {
                    return false;
                }
                i += 2;
            }
        }
        if mode == Mode::Normal {
            for (slot, path_mode, text) in [
                (SLOT_WHEN_CWD, true, ctx.cwd),
                (SLOT_WHEN_AGENT, false, ctx.agent),
            ] {
                if Self::slot(rec, slot).1 > 0 && !self.any_pat(rec, slot, text, path_mode, false) {
                    return false;
                }
            }
        }
        true
    }

    // ---- file ----

    fn visit_file(
        &self,
        path: &[u8],
        access: FileAccess,
        ctx: &Context<'_>,
        mode: Mode,
        f: &mut dyn FnMut(u32),
    ) {
        let mut check = |r: u32| {
            if self.file_rule_matches(r, path, access, ctx, mode) {
                f(r);
            }
        };
        if !self.table_empty(SEC_ANCHOR_E) {
            // Every ancestor directory (the text before each `/`) and the path itself.
            let max = rd_u32(self.meta(), META_MAX_ANCHOR) as usize;
            for_each_prefix_hash(path, max, &mut |p, h| {
                self.lookup(
                    SEC_ANCHOR_B,
                    SEC_ANCHOR_E,
                    h,
                    path.get(..p).unwrap_or(&[]),
                    &mut check,
                );
            });
        }
        let base = basename(path);
        if !base.is_empty() {
            if !self.table_empty(SEC_BASE_E) {
                self.lookup(SEC_BASE_B, SEC_BASE_E, key_hash(base), base, &mut check);
            }
            if let Some(k) = base.get(..BASE_PREFIX_LEN)
                && !self.table_empty(SEC_BPFX_E)
            {
                self.lookup(SEC_BPFX_B, SEC_BPFX_E, key_hash(k), k, &mut check);
            }
            if !self.table_empty(SEC_EXT_E) {
                for (j, &c) in base.iter().enumerate() {
                    if c == b'.' {
                        let ext = &base[j + 1..];
                        self.lookup(SEC_EXT_B, SEC_EXT_E, key_hash(ext), ext, &mut check);
                    }
                }
            }
        }
        let (s, n) = Self::range(self.meta(), META_FILE_ALWAYS);
        for i in s..s + n {
            check(self.list(0, i));
        }
    }

    fn file_rule_matches(
        &self,
        r: u32,
        path: &[u8],
        access: FileAccess,
        ctx: &Context<'_>,
        mode: Mode,
    ) -> bool {
        let rec = self.rule_rec(r);
        rd_u8(rec, RULE_KIND) == KIND_FILE
            && rd_u8(rec, RULE_ACCESS) & access.bit() != 0
            && self.any_pat(rec, SLOT_A, path, true, false)
            && !self.any_pat(rec, SLOT_B, path, true, false)
            && self.when_holds(rec, ctx.env, ctx, mode, false)
    }

    /// The strictest file rule that a move of the directory `dir` (absolute, lexically clean)
    /// would sidestep: a rule whose decision is `deny`, `ask` or `redact` for some access and
    /// whose path pattern can match a path strictly below `dir`, unless one of its exclusions
    /// covers all of `dir`. Renaming `~/.aws` to `/tmp/a` would otherwise carry
    /// `~/.aws/credentials` out of its rule's reach, and renaming a directory of one's own onto
    /// `~/.config/systemd/user` would put files where a write rule forbids them.
    ///
    /// Patterns that begin with `**` (`**/.env`) follow a file wherever it is moved and are not
    /// counted. `when` keys are ignored (the move is refused for every agent and cwd): the answer
    /// errs on refusing. `redact` is reported as `deny` (the copy would be read unredacted).
    pub fn rule_guarding_below(&self, dir: &[u8]) -> Option<super::Verdict> {
        use crate::decision::Decision;
        if dir.first() != Some(&b'/') {
            return None;
        }
        let mut best: Option<super::Verdict> = None;
        for r in 0..self.rule_count() {
            let rec = self.rule_rec(r);
            if rd_u8(rec, RULE_KIND) != KIND_FILE || rd_u8(rec, RULE_FLAGS) & FLAG_INACTIVE != 0 {
                continue;
            }
            let decision = match self.rule_decision(r) {
                Decision::Deny | Decision::Redact => Decision::Deny,
                Decision::Ask => Decision::Ask,
                _ => continue,
            };
            if best.is_some_and(|b| b.decision >= decision) {
                continue;
            }
            let (s, n) = Self::slot(rec, SLOT_A);
            if !(s..s + n).any(|i| pattern_reaches_below(self.pat_text(i), dir)) {
                continue;
            }
            let (xs, xn) = Self::slot(rec, SLOT_B);
            if (xs..xs + xn).any(|i| exclusion_covers(self.pat_text(i), dir)) {
                continue;
            }
            best = Some(super::Verdict {
                decision,
                rule: Some(r),
            });
        }
        best
    }

    // ---- exec ----

    #[allow(clippy::too_many_arguments)]
    fn visit_exec(
        &self,
        argv: &dyn Argv,
        start: usize,
        program: Option<&[u8]>,
        env: &dyn EnvLookup,
        ctx: &Context<'_>,
        mode: Mode,
        depth: u8,
        f: &mut dyn FnMut(u32),
    ) {
        if depth > MAX_WRAPPER_DEPTH {
            return;
        }
        let len = argv.len();
        let mut s = start;
        while s < len && is_assignment(argv.arg(s)) {
            s += 1;
        }
        if s >= len {
            return;
        }
        if s > start {
            let ov = Overlay {
                argv,
                lo: start,
                hi: s,
                opt_lo: 0,
                opt_hi: 0,
                clear: false,
                base: env,
            };
            return self.visit_exec(argv, s, program, &ov, ctx, mode, depth + 1, f);
        }
        let word = argv.arg(s);
        let base = basename(word);
        {
            let mut words = Words {
                pos: [0; WORDS_MAX],
                n: 0,
                next: s + 1,
                opts: true,
                complete: false,
            };
            let mut check = |r: u32| {
                if self.exec_rule_matches(r, &mut words, argv, s, program, env, ctx, mode) {
                    f(r);
                }
            };
            self.lookup(SEC_PROG_B, SEC_PROG_E, key_hash(base), base, &mut check);
            if word.first() == Some(&b'/') {
                self.lookup(SEC_PROG_B, SEC_PROG_E, key_hash(word), word, &mut check);
            }
            if let Some(p) = program
                && p != word
            {
                let pb = basename(p);
                if pb != base {
                    self.lookup(SEC_PROG_B, SEC_PROG_E, key_hash(pb), pb, &mut check);
                }
                self.lookup(SEC_PROG_B, SEC_PROG_E, key_hash(p), p, &mut check);
            }
        }
        // The exec'd file decides too: a wrapper run under another argv[0] is still that
        // wrapper (`execve("/lib64/ld-linux-x86-64.so.2", ["git", "/usr/bin/git", "push"])`,
        // `exec -a x python3 script`).
        let Some(w) = wrapper(base).or_else(|| program.and_then(|p| wrapper(basename(p)))) else {
            return;
        };
        if w.name != "env" {
            if let Some(ps) = payload_start(w, argv, s) {
                self.visit_exec(argv, ps, None, env, ctx, mode, depth + 1, f);
            }
            return;
        }
        // env: options, then the payload (its own VAR=x words are handled one level down).
        let mut i = s + 1;
        let mut clear = false;
        let mut split: Option<(&[u8], usize)> = None;
        while i < len {
            let a = argv.arg(i);
            if a == b"--" {
                i += 1;
                break;
            }
            if a == b"-" || a == b"-i" || a == b"--ignore-environment" {
                clear = true;
                i += 1;
            } else if a == b"-S" || a == b"--split-string" {
                split = Some((argv.arg(i + 1), i + 2));
                break;
            } else if let Some(rest) = a.strip_prefix(b"--split-string=") {
                split = Some((rest, i + 1));
                break;
            } else if a.len() > 2 && a.starts_with(b"-S") {
                split = Some((&a[2..], i + 1));
                break;
            } else if a.len() > 1 && a[0] == b'-' {
                i += if w.value_opts.iter().any(|o| o.as_bytes() == a) {
                    2
                } else {
                    1
                };
            } else {
                break;
            }
        }
        let ov = Overlay {
            argv,
            lo: i,
            hi: i,
            opt_lo: s + 1,
            opt_hi: i.min(len),
            clear,
            base: env,
        };
        match split {
            Some((text, rest)) => {
                let sa = SplitArgv::new(text, argv, rest);
                self.visit_exec(&sa, 0, None, &ov, ctx, mode, depth + 1, f);
            }
            None => self.visit_exec(argv, i, None, &ov, ctx, mode, depth + 1, f),
        }
    }

    fn is_value_option(&self, program: &[u8], opt: &[u8]) -> bool {
        if self.table_empty(SEC_VOPT_E) {
            return false;
        }
        // The key is `program\0option`; assemble it on the stack (longer ones are no options).
        let mut buf = [0u8; 64];
        let n = program.len() + 1 + opt.len();
        if n > buf.len() {
            return false;
        }
        buf[..program.len()].copy_from_slice(program);
        buf[program.len() + 1..n].copy_from_slice(opt);
        let key = &buf[..n];
        self.lookup(SEC_VOPT_B, SEC_VOPT_E, key_hash(key), key, &mut |_| {})
    }

    /// Walks the subcommand words after the program at `s`: options are skipped (with their
    /// value when the program's table says so), `--` ends options, `cargo +toolchain` is
    /// skipped. `visit(k, word)` sees the k-th word and returns false to stop (no match);
    /// returns the index after the `want`-th word, or None.
    fn walk_words(
        &self,
        argv: &dyn Argv,
        s: usize,
        mut visit: impl FnMut(usize, usize, &[u8]) -> bool,
        want: usize,
    ) -> Option<usize> {
        let base = basename(argv.arg(s));
        let len = argv.len();
        let (mut j, mut k, mut opts) = (s + 1, 0usize, true);
        while k < want {
            if j >= len {
                return None;
            }
            let a = argv.arg(j);
            if opts && a == b"--" {
                opts = false;
                j += 1;
                continue;
            }
            if opts && a.len() > 1 && a[0] == b'-' {
                j += if self.is_value_option(base, a) { 2 } else { 1 };
                continue;
            }
            // rustup's toolchain selector (`cargo +nightly publish`) is not a subcommand.
            if j == s + 1 && a.first() == Some(&b'+') && base == b"cargo" {
                j += 1;
                continue;
            }
            if !visit(k, j, a) {
                return None;
            }
            k += 1;
            j += 1;
        }
        Some(j)
    }

    /// Extends `w` until it holds `want` words (or the argv ends, or WORDS_MAX is reached).
    fn more_words(&self, w: &mut Words, argv: &dyn Argv, s: usize, want: usize) {
        let base = basename(argv.arg(s));
        let len = argv.len();
        while w.n < want.min(WORDS_MAX) {
            if w.next >= len {
                w.complete = true;
                return;
            }
            let j = w.next;
            let a = argv.arg(j);
            if w.opts && a == b"--" {
                w.opts = false;
                w.next += 1;
                continue;
            }
            if w.opts && a.len() > 1 && a[0] == b'-' {
                w.next += if self.is_value_option(base, a) { 2 } else { 1 };
                continue;
            }
            if j == s + 1 && a.first() == Some(&b'+') && base == b"cargo" {
                w.next += 1;
                continue;
            }
            w.pos[w.n] = j as u32;
            w.n += 1;
            w.next += 1;
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn exec_rule_matches(
        &self,
        r: u32,
        words: &mut Words,
        argv: &dyn Argv,
        s: usize,
        program: Option<&[u8]>,
        env: &dyn EnvLookup,
        ctx: &Context<'_>,
        mode: Mode,
    ) -> bool {
        let rec = self.rule_rec(r);
        if rd_u8(rec, RULE_KIND) != KIND_EXEC {
            return false;
        }
        let word = argv.arg(s);
        let prog = self.pat_text(Self::slot(rec, SLOT_A).0);
        let prog_ok = if prog.first() == Some(&b'/') {
            word == prog || program == Some(prog)
        } else {
            basename(word) == prog || program.is_some_and(|p| basename(p) == prog)
        };
        if !prog_ok {
            return false;
        }
        let len = argv.len();
        let (ws, wn) = Self::slot(rec, SLOT_B);
        if wn > words.n && !words.complete {
            self.more_words(words, argv, s, wn);
        }
        let after = if wn <= words.n {
            for k in 0..wn {
                if argv.arg(words.pos[k] as usize) != self.pat_text(ws + k) {
                    return false;
                }
            }
            if wn == 0 {
                s + 1
            } else {
                words.pos[wn - 1] as usize + 1
            }
        } else if words.complete || words.n < WORDS_MAX {
            // The command line has fewer subcommand words than the rule.
            return false;
        } else {
            match self.walk_words(argv, s, |k, _, a| k < wn && a == self.pat_text(ws + k), wn) {
                Some(after) => after,
                None => return false,
            }
        };
        let after = after.min(len);
        let (cs, cn) = Self::slot(rec, SLOT_C);
        if cn > 0
            && !(after..len).any(|i| {
                let a = argv.arg(i);
                (cs..cs + cn).any(|p| self.pat_match(p, a, false, false))
            })
        {
            return false;
        }
        // all_args: every group (one entry's brace alternatives) needs some argument that
        // matches one of its members.
        let (ds, dn) = Self::slot(rec, SLOT_D);
        let mut g = ds;
        while g < ds + dn {
            let mut end = g + 1;
            while end < ds + dn && rd_u8(self.rec(SEC_PATS, end), PAT_FLAGS) & PAT_FLAG_ALT != 0 {
                end += 1;
            }
            if !(after..len).any(|i| {
                let a = argv.arg(i);
                (g..end).any(|p| self.pat_match(p, a, false, false))
            }) {
                return false;
            }
            g = end;
        }
        self.when_holds(rec, env, ctx, mode, true)
    }

    // ---- connect ----

    fn connect_rule_matches(
        &self,
        r: u32,
        host: Option<&[u8]>,
        ip: Option<IpAddr>,
        port: u16,
        ctx: &Context<'_>,
        mode: Mode,
    ) -> bool {
        let rec = self.rule_rec(r);
        if rd_u8(rec, RULE_KIND) != KIND_CONNECT {
            return false;
        }
        let (hs, hn) = Self::slot(rec, SLOT_A);
        let (ns, nn) = Self::slot(rec, SLOT_B);
        let addr_ok = (hn == 0 && nn == 0)
            || host.is_some_and(|h| (hs..hs + hn).any(|p| self.pat_match(p, h, false, true)))
            || ip.is_some_and(|ip| {
                (ns..ns + nn).any(|i| {
                    let n = self.rec(SEC_NETS, i);
                    super::net::net_contains(
                        sub(n, NET_ADDR, 16),
                        rd_u8(n, NET_FAMILY),
                        rd_u8(n, NET_PREFIX),
                        ip,
                    )
                })
            });
        if !addr_ok {
            return false;
        }
        let (ps, pn) = Self::slot(rec, SLOT_C);
        if pn > 0
            && !(ps..ps + pn).any(|i| {
                let p = self.rec(SEC_PORTS, i);
                rd_u16(p, 0) <= port && port <= rd_u16(p, 2)
            })
        {
            return false;
        }
        self.when_holds(rec, ctx.env, ctx, mode, false)
    }

    /// The kind, hosts, methods and paths of http rule record `rec` hold for this request.
    fn http_head_matches(&self, rec: &[u8], method: &[u8], host: &[u8], path: &[u8]) -> bool {
        if rd_u8(rec, RULE_KIND) != KIND_HTTP {
            return false;
        }
        // A Host header may carry a port; host globs name the host only.
        let host = match memchr::memrchr(b':', host) {
            Some(i)
                if host.first() != Some(&b'[') || host.get(i.wrapping_sub(1)) == Some(&b']') =>
            {
                let h = &host[..i];
                h.strip_prefix(b"[")
                    .and_then(|h| h.strip_suffix(b"]"))
                    .unwrap_or(h)
            }
            _ => host,
        };
        let (hs, hn) = Self::slot(rec, SLOT_A);
        if hn > 0 && !(hs..hs + hn).any(|p| self.pat_match(p, host, false, true)) {
            return false;
        }
        let (ms, mn) = Self::slot(rec, SLOT_B);
        if mn > 0 && !(ms..ms + mn).any(|p| self.pat_text(p).eq_ignore_ascii_case(method)) {
            return false;
        }
        if Self::slot(rec, SLOT_C).1 > 0 && !self.any_pat(rec, SLOT_C, path, false, false) {
            return false;
        }
        true
    }

    /// Whether some http rule whose hosts, methods and paths match this request head looks at
    /// the body (`body_contains`, `body_regex`, `graphql`) or redacts it. `when` is taken to
    /// hold (an over-estimate, never an under-estimate). When false, the request's verdict is
    /// the same whatever its body.
    pub(super) fn http_body_matters_impl(&self, method: &[u8], host: &[u8], path: &[u8]) -> bool {
        let (s, n) = Self::range(self.meta(), META_HTTP_RULES);
        (s..s + n).any(|i| {
            let r = self.list(0, i);
            let rec = self.rule_rec(r);
            self.http_head_matches(rec, method, host, path)
                && (self.rule_decision(r) == crate::decision::Decision::Redact
                    || [SLOT_D, SLOT_E, SLOT_F]
                        .iter()
                        .any(|&k| Self::slot(rec, k).1 > 0))
        })
    }

    // ---- http ----

    #[allow(clippy::too_many_arguments)]
    fn http_rule_matches(
        &self,
        r: u32,
        method: &[u8],
        host: &[u8],
        path: &[u8],
        body: &[u8],
        ctx: &Context<'_>,
        mode: Mode,
        cache: Option<&RegexCache>,
    ) -> bool {
        let rec = self.rule_rec(r);
        if !self.http_head_matches(rec, method, host, path) {
            return false;
        }
        let (bs, bn) = Self::slot(rec, SLOT_D);
        if bn > 0
            && !(bs..bs + bn).any(|p| {
                let needle = self.pat_text(p);
                memchr::memmem::find(body, needle).is_some()
            })
        {
            return false;
        }
        let (gs, gn) = Self::slot(rec, SLOT_F);
        if gn > 0 {
            let ops = rd_u8(rec, RULE_GQL_OPS);
            let hit = for_each_top_field(body, &mut |kind, name| {
                kind & ops != 0 && (gs..gs + gn).any(|p| self.pat_text(p) == name)
            });
            if !hit {
                return false;
            }
        }
        let (es, en) = Self::slot(rec, SLOT_E);
        if en > 0 && !(es..es + en).any(|p| self.regex_matches(p, body, cache)) {
            return false;
        }
        self.when_holds(rec, ctx.env, ctx, mode, false)
    }

    fn regex_matches(&self, pat: usize, body: &[u8], cache: Option<&RegexCache>) -> bool {
        let rec = self.rec(SEC_PATS, pat);
        let text = std::str::from_utf8(self.pat_text(pat)).unwrap_or("");
        match cache {
            Some(c) => c
                .get(rd_u32(rec, PAT_AUX), text)
                .is_some_and(|re| re.is_match(body)),
            None => super::build_regex(text).is_ok_and(|re| re.is_match(body)),
        }
    }
}

/// Whether the path glob `pat` can match some path strictly below the directory `dir`:
/// component by component, `pat` must match `dir`'s components and go on past them. A `**`
/// among them may stand for any number of components, so it answers yes. A pattern that
/// begins with `**` is not anchored and answers no (see `rule_guarding_below`).
fn pattern_reaches_below(pat: &[u8], dir: &[u8]) -> bool {
    if pat.first() != Some(&b'/') {
        return false;
    }
    let mut pc = pat[1..].split(|c| *c == b'/');
    let dir = dir.strip_prefix(b"/").unwrap_or(dir);
    if !dir.is_empty() {
        for d in dir.split(|c| *c == b'/') {
            match pc.next() {
                None => return false,
                Some(b"**") => return true,
                Some(p) => {
                    if !glob_match(p, d, true, false) {
                        return false;
                    }
                }
            }
        }
    }
    pc.next().is_some()
}

/// Whether the exclusion glob `pat` matches every path below `dir`: it has the shape
/// `HEAD/**` and `HEAD` matches `dir` or one of its ancestors.
fn exclusion_covers(pat: &[u8], dir: &[u8]) -> bool {
    let Some(head) = pat.strip_suffix(b"/**") else {
        return false;
    };
    if glob_match(head, dir, true, false) {
        return true;
    }
    dir.iter()
        .enumerate()
        .filter(|&(_, c)| *c == b'/')
        .any(|(i, _)| i > 0 && glob_match(head, &dir[..i], true, false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::NoEnv;
    use crate::decision::Decision;
    use crate::ruleset::writer::{RuleBody, RuleSpec, RulesetSpec, WhenSpec, write};

    /// The indexes (anchor, basename, extension, basename prefix, always) must find exactly the
    /// rules a scan of every file rule finds, for every path.
    #[test]
    fn indexed_file_matching_agrees_with_a_full_scan() {
        let globs: [&[&str]; 12] = [
            &["/h/.ssh/**"],
            &["/h/.ssh/id_*", "/etc/shadow"],
            &["**/.env", "**/.env.*", "**/.envrc"],
            &["**/*.pem", "**/*.tar.gz"],
            &["**/id_*"],
            &["**/.git/hooks/**"],
            &["/h/p/**/secret*"],
            &["**/a/.netrc*"],
            &["*/x", "**/ab*"],
            &["/*"],
            &["**/node_modules/**"],
            &["/h/p/.git/config", "**/x/.git/config"],
        ];
        let spec = RulesetSpec {
            name: "t".into(),
            default: Decision::Allow,
            unguardable_exec: Decision::Audit,
            rules: globs
                .iter()
                .enumerate()
                .map(|(i, g)| RuleSpec {
                    id: format!("r{i}"),
                    reason: String::new(),
                    tags: vec![],
                    source: "t.toml".into(),
                    line: 1,
                    decision: Decision::Deny,
                    inactive: false,
                    when: WhenSpec::default(),
                    body: RuleBody::File {
                        include: g.iter().map(|s| s.to_string()).collect(),
                        exclude: vec![],
                        access: 7,
                    },
                })
                .collect(),
            monitor: false,
            ask_timeout_ms: 0,
            secrets: vec![],
            env_strip: vec![],
            env_keep: vec![],
            value_options: vec![],
            secret_scope: vec![],
            secret_exclude: vec![],
        };
        let bytes = write(&spec);
        let rs = Ruleset::load(&bytes).unwrap_or_else(|e| panic!("{e}"));
        let parts = [
            "h",
            ".ssh",
            "id_rsa",
            "id_",
            "p",
            ".env",
            ".env.local",
            ".envrc",
            "x.pem",
            "a.tar.gz",
            "a",
            ".netrc",
            ".netrc.bak",
            "x",
            ".git",
            "hooks",
            "config",
            "secret.txt",
            "ab",
            "node_modules",
            "etc",
            "shadow",
            "é",
            "abé",
        ];
        let env = NoEnv;
        let ctx = Context {
            env: &env,
            cwd: b"/",
            agent: b"",
        };
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut matched = 0;
        for _ in 0..20000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let n = 1 + (seed % 5) as usize;
            let mut path = String::new();
            for i in 0..n {
                path.push('/');
                path.push_str(parts[((seed >> (8 + 5 * i)) % parts.len() as u64) as usize]);
            }
            let mut indexed = Vec::new();
            rs.visit_file(
                path.as_bytes(),
                FileAccess::Read,
                &ctx,
                Mode::Normal,
                &mut |r| indexed.push(r),
            );
            indexed.sort_unstable();
            indexed.dedup();
            let (s, n) = Ruleset::range(rs.meta(), META_FILE_ALL);
            let full: Vec<u32> = (s..s + n)
                .map(|i| rs.list(0, i))
                .filter(|&r| {
                    rs.file_rule_matches(r, path.as_bytes(), FileAccess::Read, &ctx, Mode::Normal)
                })
                .collect();
            assert_eq!(indexed, full, "{path}");
            matched += usize::from(!full.is_empty());
        }
        assert!(
            matched > 1000,
            "the generated paths rarely hit a rule ({matched})"
        );
    }

    #[test]
    fn directory_moves_that_carry_files_out_of_their_rules() {
        assert!(pattern_reaches_below(b"/h/.aws/credentials", b"/h/.aws"));
        assert!(pattern_reaches_below(b"/h/.aws/credentials", b"/h"));
        assert!(pattern_reaches_below(b"/h/.ssh/**", b"/h/.ssh"));
        assert!(pattern_reaches_below(b"/h/[!.]*/**", b"/h/Documents"));
        assert!(pattern_reaches_below(b"/h/*/secrets.txt", b"/h/x"));
        assert!(pattern_reaches_below(b"/a/**/b", b"/a/x/y"));
        assert!(!pattern_reaches_below(
            b"/h/.aws/credentials",
            b"/h/.aws/credentials"
        ));
        assert!(!pattern_reaches_below(b"/h/.aws/credentials", b"/h/.awsx"));
        assert!(!pattern_reaches_below(b"/h/[!.]*/**", b"/h/.cache"));
        assert!(!pattern_reaches_below(b"**/.env", b"/h/project"));
        assert!(!pattern_reaches_below(b"/h/.bashrc", b"/h/project"));
        assert!(exclusion_covers(b"/h/project/**", b"/h/project"));
        assert!(exclusion_covers(b"/h/project/**", b"/h/project/sub"));
        assert!(!exclusion_covers(b"/h/project/**", b"/h"));
        assert!(!exclusion_covers(b"/h/project/x", b"/h/project"));
    }
}
