//! The compiled ruleset: a versioned binary file that libguard maps read-only and evaluates
//! in place, with no parsing and no heap allocation per evaluation.
//!
//! `guard-policy` describes the rules ([`writer::RulesetSpec`]) and [`writer::write`] lays them
//! out; this module validates ([`Ruleset::load`]) and evaluates. The layout (header, section
//! table, indexes) is documented in `format.rs`. `~` and `{workspace}` were substituted at
//! compile time, so a ruleset is specific to one HOME and one launch directory.
//!
//! Evaluation of file, exec and connect actions touches only the mapped bytes and the stack:
//! file paths are looked up in hash indexes (exact/ancestor-directory, basename, extension)
//! and only the candidate rules run the glob matcher; exec rules are indexed by program name.
//! Http rules with `body_regex` need a [`RegexCache`] (or compile on the fly).

mod eval;
pub mod exec;
pub mod format;
pub mod glob;
mod graphql;
pub mod net;
mod regex_cache;
pub mod writer;

pub use regex_cache::{RegexCache, build_regex};

use crate::action::{Action, Context};
use crate::decision::Decision;
use format::*;

/// The outcome of evaluating one action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub decision: Decision,
    /// Index of the winning rule (see [`Ruleset::rule`]); `None` when the default decided.
    pub rule: Option<u32>,
}

/// What kind of action a rule governs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleKind {
    File,
    Exec,
    Connect,
    Http,
}

impl RuleKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            RuleKind::File => "file",
            RuleKind::Exec => "exec",
            RuleKind::Connect => "connect",
            RuleKind::Http => "http",
        }
    }

    fn from_u8(v: u8) -> Option<RuleKind> {
        match v {
            KIND_FILE => Some(RuleKind::File),
            KIND_EXEC => Some(RuleKind::Exec),
            KIND_CONNECT => Some(RuleKind::Connect),
            KIND_HTTP => Some(RuleKind::Http),
            _ => None,
        }
    }
}

/// A rule's metadata, borrowed from the mapped file.
#[derive(Clone, Copy, Debug)]
pub struct RuleInfo<'a> {
    pub id: &'a str,
    pub kind: RuleKind,
    pub decision: Decision,
    pub reason: &'a str,
    /// Tags separated by `,` (OWASP LLM Top 10 / MITRE ATLAS ids).
    pub tags: &'a str,
    /// The policy file that defined the rule (for `explain`), and the line of its `[[rule]]`.
    pub source: &'a str,
    pub line: u32,
}

/// A `[[secret]]` detector, borrowed from the mapped file.
#[derive(Clone, Copy, Debug)]
pub struct SecretInfo<'a> {
    pub id: &'a str,
    pub regex: &'a str,
    /// Dense regex id for [`RegexCache::get`].
    pub regex_id: u32,
    pub decision: Decision,
    pub source: &'a str,
    pub line: u32,
    /// Minimum Shannon entropy (bits per byte) of the secret span, as `[[secret]] entropy`.
    pub min_entropy: Option<f64>,
}

/// Number of rules of each kind (for `policy check`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RuleCounts {
    pub file: u32,
    pub exec: u32,
    pub connect: u32,
    pub http: u32,
}

/// Why a ruleset file was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoadError {
    TooShort { len: usize },
    BadMagic,
    UnsupportedVersion { found: u32, supported: u32 },
    LengthMismatch { header: u64, actual: u64 },
    ChecksumMismatch,
    Misaligned,
    Malformed(&'static str),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::TooShort { len } => write!(f, "ruleset too short ({len} bytes)"),
            LoadError::BadMagic => f.write_str("not a guard ruleset (bad magic)"),
            LoadError::UnsupportedVersion { found, supported } => write!(
                f,
                "ruleset format version {found} is not supported (this build reads {supported})"
            ),
            LoadError::LengthMismatch { header, actual } => write!(
                f,
                "ruleset truncated or padded: header says {header} bytes, file has {actual}"
            ),
            LoadError::ChecksumMismatch => f.write_str("ruleset checksum mismatch (corrupt file)"),
            LoadError::Misaligned => f.write_str("ruleset section is not 8-byte aligned"),
            LoadError::Malformed(what) => write!(f, "malformed ruleset: {what}"),
        }
    }
}

impl std::error::Error for LoadError {}

/// A validated view over ruleset bytes (usually a read-only mmap).
#[derive(Clone, Copy)]
pub struct Ruleset<'a> {
    bytes: &'a [u8],
    secs: [&'a [u8]; SECTION_COUNT],
}

impl<'a> Ruleset<'a> {
    /// Validates the header, length, checksum and every offset, so evaluation can trust them.
    pub fn load(bytes: &'a [u8]) -> Result<Ruleset<'a>, LoadError> {
        if bytes.len() < HEADER_LEN {
            return Err(LoadError::TooShort { len: bytes.len() });
        }
        if bytes.get(..8) != Some(&MAGIC[..]) {
            return Err(LoadError::BadMagic);
        }
        let version = rd_u32(bytes, 8);
        if version != FORMAT_VERSION {
            return Err(LoadError::UnsupportedVersion {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        if rd_u32(bytes, 12) as usize != HEADER_LEN {
            return Err(LoadError::Malformed("header length"));
        }
        let total = rd_u64(bytes, 16);
        if total != bytes.len() as u64 {
            return Err(LoadError::LengthMismatch {
                header: total,
                actual: bytes.len() as u64,
            });
        }
        // The detector image (last) has its own checksum, checked on first use
        // (`secret_image`); everything else is covered here.
        let main_end = main_end(bytes);
        if checksum(sub(bytes, HEADER_LEN, main_end.saturating_sub(HEADER_LEN)))
            != rd_u64(bytes, 24)
        {
            return Err(LoadError::ChecksumMismatch);
        }
        if rd_u32(bytes, 32) as usize != SECTION_COUNT {
            return Err(LoadError::Malformed("section count"));
        }
        if sub(bytes, 36, IMAGE_SUM_AT - 36)
            .iter()
            .chain(sub(bytes, IMAGE_SUM_AT + 8, HEADER_LEN - IMAGE_SUM_AT - 8))
            .any(|&b| b != 0)
        {
            return Err(LoadError::Malformed("reserved header bytes are not zero"));
        }
        let table_end = HEADER_LEN + SECTION_COUNT * SECTION_ENTRY_LEN;
        if bytes.len() < table_end {
            return Err(LoadError::Malformed("section table out of bounds"));
        }
        let mut secs: [&'a [u8]; SECTION_COUNT] = [&[]; SECTION_COUNT];
        for (i, slot) in secs.iter_mut().enumerate() {
            let e = HEADER_LEN + i * SECTION_ENTRY_LEN;
            let (off, len) = (rd_u64(bytes, e), rd_u64(bytes, e + 8));
            if off % 8 != 0 {
                return Err(LoadError::Misaligned);
            }
            let end = off.checked_add(len);
            if off < table_end as u64 || end.is_none_or(|end| end > bytes.len() as u64) {
                return Err(LoadError::Malformed("section out of bounds"));
            }
            // Only the image may lie outside the bytes the load-time checksum covered.
            let outside = if i == SEC_SECRET_IMAGE {
                off != main_end as u64
            } else {
                end.is_none_or(|end| end > main_end as u64)
            };
            if outside {
                return Err(LoadError::Malformed(
                    "section outside the checksummed bytes",
                ));
            }
            if len % RECORD_SIZE[i] as u64 != 0 {
                return Err(LoadError::Malformed(
                    "section length is not a whole number of records",
                ));
            }
            *slot = sub(bytes, off as usize, len as usize);
        }
        let rs = Ruleset { bytes, secs };
        rs.validate()?;
        Ok(rs)
    }

    /// The whole file this view was loaded from.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    fn count(&self, sec: usize) -> usize {
        self.secs[sec].len() / RECORD_SIZE[sec]
    }

    /// Section `sec` as stored (empty when out of range).
    pub(crate) fn section(&self, sec: usize) -> &'a [u8] {
        self.secs.get(sec).copied().unwrap_or(&[])
    }

    /// The precompiled secret detector set (see `SEC_SECRET_IMAGE`), empty when the compiler
    /// stored none. Opaque here: guard-secrets validates it (`Detectors::from_image`).
    /// Checked against its own checksum here, not at load (`format.rs`): a damaged image reads
    /// as absent, and guard-secrets then builds the set from the `[[secret]]` records.
    pub fn secret_image(&self) -> &'a [u8] {
        let image = self.section(SEC_SECRET_IMAGE);
        let tail = self.bytes.get(main_end(self.bytes)..).unwrap_or(&[]);
        if checksum(tail) == rd_u64(self.bytes, IMAGE_SUM_AT) {
            image
        } else {
            &[]
        }
    }

    fn rec(&self, sec: usize, i: usize) -> &'a [u8] {
        let size = RECORD_SIZE[sec];
        sub(self.secs[sec], i.saturating_mul(size), size)
    }

    fn meta(&self) -> &'a [u8] {
        self.rec(SEC_META, 0)
    }

    /// The string a `StrRef` at `rec[off..]` names.
    fn str_bytes(&self, rec: &[u8], off: usize) -> &'a [u8] {
        sub(
            self.secs[SEC_STRINGS],
            rd_u32(rec, off) as usize,
            rd_u32(rec, off + 4) as usize,
        )
    }

    fn str_at(&self, rec: &[u8], off: usize) -> &'a str {
        std::str::from_utf8(self.str_bytes(rec, off)).unwrap_or("")
    }

    fn range(rec: &[u8], off: usize) -> (usize, usize) {
        (rd_u32(rec, off) as usize, rd_u32(rec, off + 4) as usize)
    }

    fn list(&self, start: usize, i: usize) -> u32 {
        rd_u32(self.secs[SEC_LISTS], (start + i).saturating_mul(4))
    }

    fn pat_text(&self, i: usize) -> &'a [u8] {
        let rec = self.rec(SEC_PATS, i);
        self.str_bytes(rec, PAT_TEXT)
    }

    fn validate(&self) -> Result<(), LoadError> {
        use LoadError::Malformed as M;
        if self.count(SEC_META) != 1 {
            return Err(M("meta section"));
        }
        let nrules = self.count(SEC_RULES);
        let npats = self.count(SEC_PATS);
        let nlists = self.count(SEC_LISTS);
        let strings = self.secs[SEC_STRINGS];
        // The blob is validated as UTF-8 once; then a string is valid UTF-8 exactly when it
        // starts and ends on character boundaries, an O(1) check per reference.
        if std::str::from_utf8(strings).is_err() {
            return Err(M("string is not UTF-8"));
        }
        // In an all-ASCII blob (the usual case) every offset is a boundary: skip the lookups.
        let ascii = strings.is_ascii();
        let boundary = |i: usize| ascii || strings.get(i).is_none_or(|&b| (b as i8) >= -0x40);
        let check_str = |rec: &[u8], off: usize| -> Result<(), LoadError> {
            let (o, l) = Self::range(rec, off);
            match o.checked_add(l) {
                Some(e) if e <= strings.len() => {
                    if boundary(o) && boundary(e) {
                        Ok(())
                    } else {
                        Err(M("string is not UTF-8"))
                    }
                }
                _ => Err(M("string out of bounds")),
            }
        };
        let check_range = |rec: &[u8], off: usize, n: usize, what: &'static str| {
            let (s, c) = Self::range(rec, off);
            if s.checked_add(c).is_none_or(|e| e > n) {
                Err(M(what))
            } else {
                Ok(())
            }
        };
        let meta = self.meta();
        check_str(meta, META_NAME)?;
        for off in [META_DEFAULT, META_UNGUARDABLE] {
            if Decision::from_u8(rd_u8(meta, off)).is_none() {
                return Err(M("unknown decision in policy settings"));
            }
        }
        if rd_u8(meta, META_MODE) > 1 {
            return Err(M("unknown mode"));
        }
        check_range(meta, META_ENV_STRIP, npats, "env strip range")?;
        check_range(meta, META_ENV_KEEP, npats, "env keep range")?;
        check_range(meta, META_SECRET_SCOPE, npats, "secret scope range")?;
        check_range(meta, META_SECRET_EXCLUDE, npats, "secret exclude range")?;
        for off in [
            META_FILE_ALWAYS,
            META_CONNECT_RULES,
            META_HTTP_RULES,
            META_FILE_ALL,
            META_EXEC_ALL,
        ] {
            check_range(meta, off, nlists, "rule list range")?;
        }
        let nregex = rd_u32(meta, META_REGEX_COUNT);
        // chunks_exact with constant record sizes lets the compiler drop per-field bounds checks.
        for p in self.secs[SEC_PATS].chunks_exact(PAT_LEN) {
            check_str(p, PAT_TEXT)?;
            match rd_u8(p, PAT_KIND) {
                PAT_GLOB_PATH | PAT_GLOB_ARG | PAT_GLOB_HOST | PAT_LITERAL => {}
                PAT_REGEX if rd_u32(p, PAT_AUX) < nregex => {}
                _ => return Err(M("bad pattern record")),
            }
        }
        for l in self.secs[SEC_LISTS].chunks_exact(4) {
            if rd_u32(l, 0) as usize >= nrules {
                return Err(M("rule list entry out of range"));
            }
        }
        let nnets = self.count(SEC_NETS);
        let nports = self.count(SEC_PORTS);
        for r in self.secs[SEC_RULES].chunks_exact(RULE_LEN) {
            for off in [RULE_ID, RULE_REASON, RULE_TAGS, RULE_SOURCE] {
                check_str(r, off)?;
            }
            let kind = rd_u8(r, RULE_KIND);
            if RuleKind::from_u8(kind).is_none() {
                return Err(M("unknown rule kind"));
            }
            if Decision::from_u8(rd_u8(r, RULE_DECISION)).is_none() {
                return Err(M("unknown decision in rule"));
            }
            for slot in 0..RULE_RANGE_COUNT {
                let n = match (kind, slot) {
                    (KIND_CONNECT, SLOT_B) => nnets,
                    (KIND_CONNECT, SLOT_C) => nports,
                    _ => npats,
                };
                check_range(r, RULE_RANGES + slot * 8, n, "rule range")?;
            }
            if Self::range(r, RULE_RANGES + SLOT_WHEN_ENV * 8).1 % 2 != 0 {
                return Err(M("when.env range"));
            }
            if kind == KIND_EXEC && Self::range(r, RULE_RANGES + SLOT_A * 8).1 != 1 {
                return Err(M("exec rule without exactly one program"));
            }
        }
        for (b, e) in [
            (SEC_ANCHOR_B, SEC_ANCHOR_E),
            (SEC_BASE_B, SEC_BASE_E),
            (SEC_EXT_B, SEC_EXT_E),
            (SEC_PROG_B, SEC_PROG_E),
            (SEC_VOPT_B, SEC_VOPT_E),
            (SEC_BPFX_B, SEC_BPFX_E),
        ] {
            let nb = self.count(b);
            if nb < 2 || !(nb - 1).is_power_of_two() {
                return Err(M("hash table bucket count"));
            }
            let ne = self.count(e);
            let mut prev = 0u32;
            if rd_u32(self.secs[b], 0) != 0 {
                return Err(M("hash table buckets"));
            }
            for c in self.secs[b].chunks_exact(4) {
                let v = rd_u32(c, 0);
                if v < prev || v as usize > ne {
                    return Err(M("hash table buckets"));
                }
                prev = v;
            }
            if prev as usize != ne {
                return Err(M("hash table buckets"));
            }
            for ent in self.secs[e].chunks_exact(ENTRY_LEN) {
                check_str(ent, ENTRY_KEY)?;
                check_range(ent, ENTRY_VALUES, nlists, "hash entry values out of range")?;
            }
        }
        for i in 0..self.count(SEC_SECRETS) {
            let s = self.rec(SEC_SECRETS, i);
            check_str(s, SECRET_ID)?;
            check_str(s, SECRET_SOURCE)?;
            let p = rd_u32(s, SECRET_REGEX_PAT) as usize;
            if p >= npats || rd_u8(self.rec(SEC_PATS, p), PAT_KIND) != PAT_REGEX {
                return Err(M("secret regex"));
            }
            if Decision::from_u8(rd_u8(s, SECRET_DECISION)).is_none() {
                return Err(M("unknown decision in secret"));
            }
            check_range(s, SECRET_KEYWORDS, npats, "secret keywords range")?;
            match rd_u8(s, SECRET_FLAGS) {
                0 => {}
                SECRET_FLAG_ENTROPY if f64::from_bits(rd_u64(s, SECRET_ENTROPY)).is_finite() => {}
                _ => return Err(M("bad secret flags or entropy")),
            }
        }
        Ok(())
    }

    /// The strictest decision among matching rules, or the policy default.
    pub fn evaluate(&self, action: &Action<'_>, ctx: &Context<'_>) -> Verdict {
        self.evaluate_with(action, ctx, None)
    }

    /// [`Ruleset::evaluate`] with a regex cache for http `body_regex` rules (without one, such
    /// a rule compiles its regex for this call).
    pub fn evaluate_with(
        &self,
        action: &Action<'_>,
        ctx: &Context<'_>,
        cache: Option<&RegexCache>,
    ) -> Verdict {
        let mut best: Option<(Decision, u32)> = None;
        self.visit(action, ctx, eval::Mode::Normal, cache, &mut |r| {
            let d = self.rule_decision(r);
            best = match best {
                Some((bd, br)) if bd > d || (bd == d && br <= r) => Some((bd, br)),
                _ => Some((d, r)),
            };
        });
        match best {
            Some((decision, r)) => Verdict {
                decision,
                rule: Some(r),
            },
            None => Verdict {
                decision: self.default_decision(),
                rule: None,
            },
        }
    }

    /// Whether the body of an http request with this method, host (a port is ignored) and
    /// path can change its verdict: some http rule whose `hosts`, `methods` and `paths` match
    /// has a body condition (`body_contains`, `body_regex`, `graphql`) or decides `redact`.
    /// `when` is taken to hold, so this may say true needlessly, never false wrongly. When
    /// false, [`Ruleset::evaluate`] gives the same verdict for any body, so a gate may judge
    /// the request on its head alone.
    pub fn http_body_matters(&self, method: &[u8], host: &[u8], path: &[u8]) -> bool {
        self.http_body_matters_impl(method, host, path)
    }

    /// Calls `f` with the index of every rule that matches (for `explain`), in rule order.
    pub fn for_each_match(&self, action: &Action<'_>, ctx: &Context<'_>, f: &mut dyn FnMut(u32)) {
        self.for_each_match_with(action, ctx, None, f)
    }

    /// [`Ruleset::for_each_match`] with a regex cache. Allocation-free: matches are gathered in
    /// a fixed stack array; past its capacity the rules are reported window by window.
    pub fn for_each_match_with(
        &self,
        action: &Action<'_>,
        ctx: &Context<'_>,
        cache: Option<&RegexCache>,
        f: &mut dyn FnMut(u32),
    ) {
        const CAP: usize = 256;
        let mut buf = [0u32; CAP];
        let mut n = 0usize;
        let mut overflow = false;
        self.visit(action, ctx, eval::Mode::Normal, cache, &mut |r| {
            if buf[..n].contains(&r) {
                return;
            }
            match buf.get_mut(n) {
                Some(slot) => {
                    *slot = r;
                    n += 1;
                }
                None => overflow = true,
            }
        });
        if !overflow {
            let found = &mut buf[..n];
            found.sort_unstable();
            for &r in found.iter() {
                f(r);
            }
            return;
        }
        // More distinct matches than the array holds: report them in windows of CAP rule
        // indices, each window deduplicated by a bitset, so order and completeness hold.
        let total = self.rule_count();
        let mut lo = 0u32;
        while lo < total {
            let mut bits = [0u64; CAP / 64];
            self.visit(action, ctx, eval::Mode::Normal, cache, &mut |r| {
                if r >= lo && ((r - lo) as usize) < CAP {
                    let k = (r - lo) as usize;
                    bits[k / 64] |= 1 << (k % 64);
                }
            });
            for (w, word) in bits.iter().enumerate() {
                let mut x = *word;
                while x != 0 {
                    let b = x.trailing_zeros() as usize;
                    f(lo + (w * 64 + b) as u32);
                    x &= x - 1;
                }
            }
            lo = lo.saturating_add(CAP as u32);
        }
    }

    /// Whether rule `index` matches `action` as its examples mean it: `when.cwd`,
    /// `when.workspace` and `when.agent` are taken to hold; `when.env` is checked for exec
    /// (against the command line's `VAR=x` prefixes over `ctx.env`) and taken to hold otherwise.
    pub fn rule_matches_example(
        &self,
        index: u32,
        action: &Action<'_>,
        ctx: &Context<'_>,
        cache: Option<&RegexCache>,
    ) -> bool {
        let mut hit = false;
        self.visit(action, ctx, eval::Mode::Example, cache, &mut |r| {
            hit |= r == index;
        });
        hit
    }

    fn rule_decision(&self, index: u32) -> Decision {
        Decision::from_u8(rd_u8(self.rec(SEC_RULES, index as usize), RULE_DECISION))
            .unwrap_or(Decision::Deny)
    }

    pub fn rule(&self, index: u32) -> Option<RuleInfo<'a>> {
        if index as usize >= self.count(SEC_RULES) {
            return None;
        }
        let r = self.rec(SEC_RULES, index as usize);
        Some(RuleInfo {
            id: self.str_at(r, RULE_ID),
            kind: RuleKind::from_u8(rd_u8(r, RULE_KIND))?,
            decision: Decision::from_u8(rd_u8(r, RULE_DECISION))?,
            reason: self.str_at(r, RULE_REASON),
            tags: self.str_at(r, RULE_TAGS),
            source: self.str_at(r, RULE_SOURCE),
            line: rd_u32(r, RULE_LINE),
        })
    }

    /// The index of the rule with this id.
    pub fn rule_index(&self, id: &str) -> Option<u32> {
        (0..self.rule_count()).find(|&i| self.rule(i).is_some_and(|r| r.id == id))
    }

    pub fn rule_count(&self) -> u32 {
        self.count(SEC_RULES) as u32
    }

    pub fn rule_counts(&self) -> RuleCounts {
        let mut c = RuleCounts::default();
        for i in 0..self.rule_count() {
            match self.rule(i).map(|r| r.kind) {
                Some(RuleKind::File) => c.file += 1,
                Some(RuleKind::Exec) => c.exec += 1,
                Some(RuleKind::Connect) => c.connect += 1,
                Some(RuleKind::Http) => c.http += 1,
                None => {}
            }
        }
        c
    }

    pub fn secret_count(&self) -> u32 {
        self.count(SEC_SECRETS) as u32
    }

    pub fn secret(&self, index: u32) -> Option<SecretInfo<'a>> {
        if index as usize >= self.count(SEC_SECRETS) {
            return None;
        }
        let s = self.rec(SEC_SECRETS, index as usize);
        let p = self.rec(SEC_PATS, rd_u32(s, SECRET_REGEX_PAT) as usize);
        Some(SecretInfo {
            id: self.str_at(s, SECRET_ID),
            regex: self.str_at(p, PAT_TEXT),
            regex_id: rd_u32(p, PAT_AUX),
            decision: Decision::from_u8(rd_u8(s, SECRET_DECISION))?,
            source: self.str_at(s, SECRET_SOURCE),
            line: rd_u32(s, SECRET_LINE),
            min_entropy: (rd_u8(s, SECRET_FLAGS) & SECRET_FLAG_ENTROPY != 0)
                .then(|| f64::from_bits(rd_u64(s, SECRET_ENTROPY))),
        })
    }

    /// The prefilter keywords of secret `index`.
    pub fn secret_keywords(&self, index: u32) -> impl Iterator<Item = &'a str> + 'a {
        let s = self.rec(SEC_SECRETS, index as usize);
        let (start, n) = Self::range(s, SECRET_KEYWORDS);
        let this = *self;
        (start..start + n).map(move |i| std::str::from_utf8(this.pat_text(i)).unwrap_or(""))
    }

    /// Finds secrets in `data`: calls `f(secret index, start, end)` for every whole-regex match
    /// of every detector whose keywords occur (ASCII case-insensitively) in `data`. A raw view:
    /// it applies neither the `secret` capture group nor the entropy floor nor an allowlist;
    /// redaction should build `guard_secrets::Detectors` from [`Ruleset::secret`] and
    /// [`Ruleset::secret_keywords`], which is what policy examples are checked with.
    pub fn scan_secrets(
        &self,
        cache: &RegexCache,
        data: &[u8],
        f: &mut dyn FnMut(u32, usize, usize),
    ) {
        for i in 0..self.secret_count() {
            let s = self.rec(SEC_SECRETS, i as usize);
            let (start, n) = Self::range(s, SECRET_KEYWORDS);
            if n > 0
                && !(start..start + n).any(|k| eval::contains_ignore_case(data, self.pat_text(k)))
            {
                continue;
            }
            let Some(info) = self.secret(i) else { continue };
            if let Some(re) = cache.get(info.regex_id, info.regex) {
                for m in re.find_iter(data) {
                    f(i, m.start(), m.end());
                }
            }
        }
    }

    /// Whether content detection should inspect the file at `path` (absolute, normalised):
    /// some `[secrets] scope` glob matches it and no `[secrets] exclude` glob does. Allocation
    /// free, so libguard may call it from `open`.
    pub fn in_secret_scope(&self, path: &[u8]) -> bool {
        let meta = self.meta();
        let any = |off: usize| {
            let (s, n) = Self::range(meta, off);
            (s..s + n).any(|i| self.pat_match(i, path, true, false))
        };
        any(META_SECRET_SCOPE) && !any(META_SECRET_EXCLUDE)
    }

    /// The `[secrets] scope` globs as compiled (braces expanded, placeholders resolved and
    /// escaped), for a caller that precompiles them into a faster matcher; `in_secret_scope`
    /// is the reference.
    pub fn secret_scope_globs(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.meta_globs(META_SECRET_SCOPE)
    }

    /// The `[secrets] exclude` globs, like `secret_scope_globs`.
    pub fn secret_exclude_globs(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.meta_globs(META_SECRET_EXCLUDE)
    }

    fn meta_globs(&self, off: usize) -> impl Iterator<Item = &'a [u8]> + 'a {
        let (s, n) = Self::range(self.meta(), off);
        let this = *self;
        (s..s + n).map(move |i| this.pat_text(i))
    }

    /// How many regexes (http `body_regex` and secrets) the ruleset holds: the size of a
    /// [`RegexCache`] for it.
    pub fn regex_count(&self) -> u32 {
        rd_u32(self.meta(), META_REGEX_COUNT)
    }

    pub fn policy_name(&self) -> &'a str {
        self.str_at(self.meta(), META_NAME)
    }

    pub fn default_decision(&self) -> Decision {
        Decision::from_u8(rd_u8(self.meta(), META_DEFAULT)).unwrap_or(Decision::Allow)
    }

    /// Whether a file verdict depends only on (path, access) for one process: no file rule has
    /// a `when` on the environment or the current directory (the agent is fixed per process).
    /// Callers may then memoise file verdicts per process.
    pub fn file_verdicts_are_path_only(&self) -> bool {
        (0..self.count(SEC_RULES)).all(|i| {
            let rec = self.rec(SEC_RULES, i);
            rd_u8(rec, RULE_KIND) != KIND_FILE
                || (Self::slot_len(rec, SLOT_WHEN_ENV) == 0
                    && Self::slot_len(rec, SLOT_WHEN_CWD) == 0)
        })
    }

    fn slot_len(rec: &[u8], slot: usize) -> usize {
        Self::range(rec, RULE_RANGES + slot * 8).1
    }

    /// `mode = "monitor"`: record what enforce would do, never block.
    pub fn monitor_mode(&self) -> bool {
        rd_u8(self.meta(), META_MODE) == 1
    }

    pub fn ask_timeout_ms(&self) -> u32 {
        rd_u32(self.meta(), META_ASK_TIMEOUT)
    }

    /// Decision for an exec the in-process layer cannot follow (static or setuid binary).
    pub fn unguardable_exec(&self) -> Decision {
        Decision::from_u8(rd_u8(self.meta(), META_UNGUARDABLE)).unwrap_or(Decision::Audit)
    }

    /// Whether `[env] strip` removes variable `name` from children (and `[env] keep` does not
    /// protect it).
    pub fn env_strip_matches(&self, name: &[u8]) -> bool {
        let meta = self.meta();
        let any = |off: usize| {
            let (s, n) = Self::range(meta, off);
            (s..s + n).any(|i| self.pat_match(i, name, false, false))
        };
        any(META_ENV_STRIP) && !any(META_ENV_KEEP)
    }
}
