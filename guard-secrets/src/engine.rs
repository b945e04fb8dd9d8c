//! The detector engine: compiling specs, the keyword prefilter, scanning, and redaction.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use guard_proto::Decision;
use regex_automata::meta::Regex;
use regex_automata::nfa::thompson::WhichCaptures;
use regex_automata::util::captures::Captures;
use regex_automata::{Anchored, Input, PatternID};
use std::borrow::Cow;
use std::sync::OnceLock;

use crate::fastpre::FastPrefilter;
use crate::image;
use crate::window::{self, Plan};
use crate::{Allowlist, REDACTED, shannon_entropy};
use guard_proto::Ruleset;

/// Compiled-program limits for one detector's regex. Generous for hand-written rules, small
/// enough that a hostile `[[secret]]` cannot make libguard build a huge automaton.
const REGEX_SIZE_LIMIT: usize = 4 << 20;
const REGEX_DFA_SIZE_LIMIT: usize = 8 << 20;

/// One detector as written in a policy's `[[secret]]` (or built in).
#[derive(Clone, Debug, PartialEq)]
pub struct SecretSpec {
    /// Unique id, `[a-z0-9][a-z0-9-._]*`.
    pub id: String,
    /// Byte regex, compiled in ASCII mode (`\w`, `\s`, `(?i)` are ASCII-only). The span to
    /// redact is the capture group named `secret`, or the whole match when there is none.
    pub regex: String,
    /// The regex runs only around occurrences of these (ASCII case-insensitive): every match
    /// of the regex must contain one of them, or the detector misses it (even when a keyword
    /// occurs elsewhere in the buffer). Empty: the regex runs on every scanned buffer.
    pub keywords: Vec<String>,
    /// `redact` (the default), `deny` or `audit`.
    pub decision: Decision,
    /// Minimum Shannon entropy (bits per byte) of the secret span; lower is not a finding.
    pub min_entropy: Option<f64>,
}

impl SecretSpec {
    /// A spec with the default decision (`redact`) and no entropy floor.
    pub fn new(id: &str, regex: &str, keywords: &[&str]) -> Self {
        SecretSpec {
            id: id.to_string(),
            regex: regex.to_string(),
            keywords: keywords.iter().map(|k| k.to_string()).collect(),
            decision: Decision::Redact,
            min_entropy: None,
        }
    }
}

/// A `[[secret]]` that cannot be used, with the id it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct SpecError {
    pub id: String,
    pub message: String,
}

impl std::fmt::Display for SpecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "secret detector `{}`: {}", self.id, self.message)
    }
}

impl std::error::Error for SpecError {}

fn spec_err(id: &str, message: impl Into<String>) -> SpecError {
    SpecError {
        id: id.to_string(),
        message: message.into(),
    }
}

/// One secret found in a buffer: bytes `start..end` are the secret itself (not its key or
/// surrounding context).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Finding<'a> {
    pub detector: &'a str,
    pub start: usize,
    pub end: usize,
    pub decision: Decision,
}

#[derive(Clone, Debug)]
struct Compiled {
    regex: Regex,
    /// Index of the `secret` group, if the regex has one.
    secret_group: Option<usize>,
    /// Where the regex must run around its keywords (see `window`).
    plan: Plan,
    /// For a `Bounded` plan: the pattern after its keyword-holding core, anchored, and where it
    /// starts relative to a keyword occurrence (`window::core_tail`).
    tail: Option<(Regex, Vec<usize>)>,
}

#[derive(Clone, Debug)]
struct Detector {
    /// Borrowed from a detector image (`from_image`: the mapped ruleset) or owned.
    id: Cow<'static, str>,
    source: Cow<'static, str>,
    /// Compiled on first use: a process that reads one `.env` needs a handful of the ~40
    /// regexes, and compiling all of them costs ~11 ms. Policy specs are compiled up front so
    /// that their errors are returned by `from_specs`.
    compiled: OnceLock<Option<Compiled>>,
    min_entropy: Option<f64>,
    decision: Decision,
}

fn syntax_config() -> regex_automata::util::syntax::Config {
    regex_automata::util::syntax::Config::new()
        .unicode(false)
        .utf8(false)
}

/// Parses `source` the way `regex::bytes::RegexBuilder::new(source).unicode(false)` does.
fn parse(source: &str) -> Result<regex_syntax::hir::Hir, String> {
    regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .parse(source)
        .map_err(|e| e.to_string())
}

/// The regex exactly as `regex::bytes::RegexBuilder` with our limits builds it (the same
/// meta engine, configured the same way), and its window plan for `keywords` (prefilter
/// keyword index, lower-cased bytes).
fn build_regex(source: &str, keywords: &[(usize, &[u8])]) -> Result<Compiled, String> {
    let hir = parse(source)?;
    let config = Regex::config()
        .match_kind(regex_automata::MatchKind::LeftmostFirst)
        .utf8_empty(false)
        .nfa_size_limit(Some(REGEX_SIZE_LIMIT))
        .hybrid_cache_capacity(REGEX_DFA_SIZE_LIMIT);
    let regex = Regex::builder()
        .configure(config.clone())
        .syntax(syntax_config())
        .build_from_hir(&hir)
        .map_err(|e| e.to_string())?;
    let secret_group = regex.group_info().to_index(PatternID::ZERO, "secret");
    let plan = window::plan(&hir, keywords);
    let tail = match plan {
        Plan::Bounded { .. } => window::core_tail(&hir, keywords).and_then(|(t, ends)| {
            let t = Regex::builder()
                .configure(config.clone().which_captures(WhichCaptures::Implicit))
                .syntax(syntax_config())
                .build_from_hir(&t)
                .ok()?;
            Some((t, ends))
        }),
        _ => None,
    };
    Ok(Compiled {
        plan,
        regex,
        secret_group,
        tail,
    })
}

/// A compiled set of detectors with its keyword prefilter and placeholder allowlist.
#[derive(Clone, Debug)]
pub struct Detectors {
    detectors: Vec<Detector>,
    /// Every distinct keyword (lower-cased), after `minimise`.
    keywords: Vec<String>,
    /// The keyword prefilter (see `fastpre`): answers both "any keyword?" and "which ones?".
    fast: Option<FastPrefilter>,
    /// Fallback when `fast` does not fit the keywords (a 1-byte keyword, say): the automaton
    /// over the same keywords, ASCII case-insensitive, overlapping semantics. Built on first
    /// use, so that a process whose detectors fit `fast` never pays for it.
    automaton: OnceLock<Option<AhoCorasick>>,
    /// Pattern id of `prefilter` -> indices of the detectors that keyword enables.
    owners: Vec<Vec<usize>>,
    /// Detectors without keywords: they run on every scan.
    always: Vec<usize>,
    allowlist: Allowlist,
}

fn valid_id(id: &str) -> bool {
    let b = id.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter().all(|&c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'-' | b'.' | b'_')
        })
}

/// Validates `spec`; `eager` also compiles its regex now (to report errors).
fn compile(spec: &SecretSpec, eager: bool) -> Result<Detector, SpecError> {
    if !valid_id(&spec.id) {
        return Err(spec_err(&spec.id, "id must match [a-z0-9][a-z0-9-._]*"));
    }
    if !matches!(
        spec.decision,
        Decision::Redact | Decision::Deny | Decision::Audit
    ) {
        return Err(spec_err(
            &spec.id,
            format!(
                "decision `{}` is not one of redact, deny, audit",
                spec.decision
            ),
        ));
    }
    if let Some(e) = spec.min_entropy
        && !(0.0..=8.0).contains(&e)
    {
        return Err(spec_err(
            &spec.id,
            format!("entropy {e} is outside 0.0..=8.0 bits per byte"),
        ));
    }
    if spec.keywords.iter().any(|k| k.is_empty()) {
        return Err(spec_err(&spec.id, "empty keyword"));
    }
    if eager {
        // Built now only for its errors: the set's regexes are built on first use, windowed on
        // the prefilter keywords that end up enabling them (see `Detectors::compiled`).
        build_regex(&spec.regex, &[]).map_err(|e| spec_err(&spec.id, format!("regex: {e}")))?;
    }
    let compiled = OnceLock::new();
    Ok(Detector {
        id: Cow::Owned(spec.id.clone()),
        source: Cow::Owned(spec.regex.clone()),
        compiled,
        min_entropy: spec.min_entropy,
        decision: spec.decision,
    })
}

impl Detectors {
    /// The built-in detectors (see `builtin_specs`) with the default allowlist.
    pub fn builtin() -> Detectors {
        let specs = crate::builtin_specs();
        // The built-in specs are tested to compile; should one ever fail, the rest still work
        // rather than taking the agent's process down (it then finds nothing).
        let detectors: Vec<Detector> = specs
            .iter()
            .filter_map(|s| compile(s, false).ok())
            .collect();
        debug_assert_eq!(detectors.len(), specs.len(), "a built-in detector failed");
        Detectors::assemble(detectors, &specs)
    }

    /// Detectors from policy `[[secret]]` entries (only these; see `builtin_with` to extend
    /// the built-ins), with the default allowlist.
    pub fn from_specs(specs: &[SecretSpec]) -> Result<Detectors, SpecError> {
        let mut detectors = Vec::with_capacity(specs.len());
        for (i, spec) in specs.iter().enumerate() {
            if specs[..i].iter().any(|s| s.id == spec.id) {
                return Err(spec_err(&spec.id, "duplicate id"));
            }
            detectors.push(compile(spec, true)?);
        }
        Ok(Detectors::assemble(detectors, specs))
    }

    /// The built-ins plus `specs`; a spec whose id is a built-in's replaces it.
    /// Only `specs` are compiled now (their errors are returned); the built-ins compile on
    /// first use.
    pub fn builtin_with(specs: &[SecretSpec]) -> Result<Detectors, SpecError> {
        let mut all: Vec<SecretSpec> = crate::builtin_specs()
            .into_iter()
            .filter(|b| !specs.iter().any(|s| s.id == b.id))
            .collect();
        let builtins = all.len();
        all.extend_from_slice(specs);
        let mut detectors = Vec::with_capacity(all.len());
        for (i, spec) in all.iter().enumerate() {
            if i > builtins && all[builtins..i].iter().any(|s| s.id == spec.id) {
                return Err(spec_err(&spec.id, "duplicate id"));
            }
            detectors.push(compile(spec, i >= builtins)?);
        }
        Ok(Detectors::assemble(detectors, &all))
    }

    /// Like `from_specs` for specs already validated (by the policy compiler): regexes compile
    /// on first use. Nothing fails the whole set: a spec with a bad id, decision or keyword,
    /// or a repeated id, is left out, and one whose regex does not compile finds nothing. For
    /// libguard, which must never fail a process over a detector.
    pub fn from_validated_specs(specs: &[SecretSpec]) -> Detectors {
        let mut detectors = Vec::with_capacity(specs.len());
        for (i, spec) in specs.iter().enumerate() {
            if specs[..i].iter().any(|s| s.id == spec.id) {
                continue;
            }
            if let Ok(d) = compile(spec, false) {
                detectors.push(d);
            }
        }
        Detectors::assemble(detectors, specs)
    }

    /// `builtin_with` for specs already validated (the compiled ruleset's `[[secret]]`s): the
    /// built-ins plus `specs`, a spec whose id is a built-in's replacing it, every regex
    /// compiled on first use. Like `from_validated_specs`, nothing fails the whole set: an
    /// invalid spec or a repeated id is left out. What libguard builds per process.
    pub fn builtin_with_validated(specs: &[SecretSpec]) -> Detectors {
        let mut all: Vec<SecretSpec> = crate::builtin_specs()
            .into_iter()
            .filter(|b| !specs.iter().any(|s| s.id == b.id))
            .collect();
        all.extend_from_slice(specs);
        Detectors::from_validated_specs(&all)
    }

    fn assemble(detectors: Vec<Detector>, specs: &[SecretSpec]) -> Detectors {
        let mut keywords: Vec<String> = Vec::new();
        let mut owners: Vec<Vec<usize>> = Vec::new();
        let mut always = Vec::new();
        for (di, det) in detectors.iter().enumerate() {
            let Some(spec) = specs.iter().find(|s| s.id == *det.id) else {
                continue;
            };
            if spec.keywords.is_empty() {
                always.push(di);
            }
            for k in &spec.keywords {
                let k = k.to_ascii_lowercase();
                match keywords.iter().position(|x| *x == k) {
                    Some(pi) => owners[pi].push(di),
                    None => {
                        keywords.push(k);
                        owners.push(vec![di]);
                    }
                }
            }
        }
        let (keywords, owners) = minimise(keywords, owners);
        let fast = FastPrefilter::new(&keywords);
        if fast.is_none() && !keywords.is_empty() && build_automaton(&keywords).is_none() {
            // Cannot happen for a few hundred short keywords; if it did, run every detector
            // rather than none.
            always = (0..detectors.len()).collect();
        }
        Detectors {
            detectors,
            keywords,
            fast,
            automaton: OnceLock::new(),
            owners,
            always,
            allowlist: Allowlist::default(),
        }
    }

    /// The detector set libguard uses for a compiled ruleset, built from its `[[secret]]`
    /// entries at runtime (`builtin_with_validated`): what the policy compiler precompiles
    /// into the ruleset's detector image, and what `for_ruleset` falls back to.
    pub fn from_ruleset(rs: &Ruleset<'_>) -> Detectors {
        let mut specs = Vec::with_capacity(rs.secret_count() as usize);
        for i in 0..rs.secret_count() {
            let Some(s) = rs.secret(i) else { continue };
            let kw: Vec<&str> = rs.secret_keywords(i).collect();
            let mut spec = SecretSpec::new(s.id, s.regex, &kw);
            spec.decision = s.decision;
            spec.min_entropy = s.min_entropy;
            specs.push(spec);
        }
        Detectors::builtin_with_validated(&specs)
    }

    /// The detector set for a mapped ruleset: its precompiled detector image when it has a
    /// valid one (no keyword tables to build, ids and regexes borrowed from the mapping), else
    /// `from_ruleset`. What a guarded process builds before its first scanned read.
    pub fn for_ruleset(rs: &Ruleset<'static>) -> Detectors {
        Detectors::from_image(rs.secret_image()).unwrap_or_else(|| Detectors::from_ruleset(rs))
    }

    /// This set precompiled (detectors, minimised keywords and their owners, prefilter tables)
    /// for `from_image`. Decision overrides are kept; the allowlist is not (an image always
    /// loads with the default one).
    pub fn to_image(&self) -> Vec<u8> {
        let mut w = image::Writer::default();
        w.out.extend_from_slice(image::MAGIC);
        w.u32(image::VERSION as usize);
        w.u32(self.detectors.len());
        for d in &self.detectors {
            w.bytes(d.id.as_bytes());
            w.bytes(d.source.as_bytes());
            w.u8(d.decision as u8);
            w.u8(u8::from(d.min_entropy.is_some()));
            w.u64(d.min_entropy.unwrap_or(0.0).to_bits());
        }
        w.u32(self.keywords.len());
        for (k, owners) in self.keywords.iter().zip(&self.owners) {
            w.bytes(k.as_bytes());
            w.u32(owners.len());
            for &o in owners {
                w.u32(o);
            }
        }
        w.u32(self.always.len());
        for &a in &self.always {
            w.u32(a);
        }
        match &self.fast {
            Some(f) => {
                w.u8(1);
                f.write_image(&mut w);
            }
            None => w.u8(0),
        }
        w.out
    }

    /// The set stored by `to_image`, ids and regexes borrowed from `img` (the mapped ruleset;
    /// regexes still compile on first use). `None` for an image of another version or one
    /// that fails any check (lengths, ids, decisions, entropy range, indices, prefilter
    /// tables): the caller builds the set at runtime instead.
    pub fn from_image(img: &'static [u8]) -> Option<Detectors> {
        let mut r = image::Reader::new(img);
        if r.take(4)? != image::MAGIC || r.u32()? != image::VERSION as usize {
            return None;
        }
        let n = r.count(18)?;
        let mut detectors = Vec::with_capacity(n);
        for _ in 0..n {
            let id = r.str()?;
            let source = r.str()?;
            let decision = Decision::from_u8(r.u8()?)?;
            let has_entropy = r.u8()?;
            let entropy = f64::from_bits(r.u64()?);
            let ok = valid_id(id)
                && decision != Decision::Ask
                && has_entropy <= 1
                && (0.0..=8.0).contains(&entropy);
            if !ok {
                return None;
            }
            detectors.push(Detector {
                id: Cow::Borrowed(id),
                source: Cow::Borrowed(source),
                compiled: OnceLock::new(),
                min_entropy: (has_entropy == 1).then_some(entropy),
                decision,
            });
        }
        let nk = r.count(8)?;
        let mut keywords = Vec::with_capacity(nk);
        let mut owners = Vec::with_capacity(nk);
        for _ in 0..nk {
            let k = r.str()?;
            let no = r.count(4)?;
            let mut o = Vec::with_capacity(no);
            for _ in 0..no {
                let d = r.u32()?;
                if d >= n {
                    return None;
                }
                o.push(d);
            }
            if k.is_empty() || k.bytes().any(|b| b.is_ascii_uppercase()) {
                return None;
            }
            keywords.push(k.to_string());
            owners.push(o);
        }
        let na = r.count(4)?;
        let mut always = Vec::with_capacity(na);
        for _ in 0..na {
            let d = r.u32()?;
            if d >= n {
                return None;
            }
            always.push(d);
        }
        let fast = match r.u8()? {
            0 => None,
            1 => Some(FastPrefilter::read_image(&mut r, &keywords)?),
            _ => return None,
        };
        if !r.is_empty() {
            return None;
        }
        Some(Detectors {
            detectors,
            keywords,
            fast,
            automaton: OnceLock::new(),
            owners,
            always,
            allowlist: Allowlist::default(),
        })
    }

    /// Replaces the placeholder allowlist (`Allowlist::none()` reports every regex match).
    pub fn set_allowlist(&mut self, allowlist: Allowlist) {
        self.allowlist = allowlist;
    }

    /// Overrides one detector's decision (policy: per detector id). `Allow` switches the
    /// detector off. Returns false when no detector has that id.
    pub fn set_decision(&mut self, id: &str, decision: Decision) -> bool {
        match self.detectors.iter_mut().find(|d| d.id == id) {
            Some(d) => {
                d.decision = decision;
                true
            }
            None => false,
        }
    }

    /// Ids of the detectors, in order.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.detectors.iter().map(|d| d.id.as_ref())
    }

    pub fn len(&self) -> usize {
        self.detectors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.detectors.is_empty()
    }

    /// Cheap test: false means `scan` would certainly find nothing (no keyword occurs). One
    /// pass over `content`, no allocation (a 16 KiB stack buffer).
    pub fn might_contain_secret(&self, content: &[u8]) -> bool {
        if !self.always.is_empty() {
            return true;
        }
        if let Some(fast) = &self.fast {
            return fast.is_match(content);
        }
        match self.automaton() {
            Some(ac) => ac.is_match(content),
            None => false,
        }
    }

    fn automaton(&self) -> Option<&AhoCorasick> {
        if self.keywords.is_empty() {
            return None;
        }
        self.automaton
            .get_or_init(|| build_automaton(&self.keywords))
            .as_ref()
    }

    /// Detector `di`'s regex, compiled on first use, windowed on the prefilter keywords that
    /// enable it.
    fn compiled(&self, di: usize) -> Option<&Compiled> {
        let det = self.detectors.get(di)?;
        det.compiled
            .get_or_init(|| {
                let kw: Vec<(usize, &[u8])> = self
                    .owners
                    .iter()
                    .zip(&self.keywords)
                    .enumerate()
                    .filter(|(_, (o, _))| o.contains(&di))
                    .map(|(i, (_, k))| (i, k.as_bytes()))
                    .collect();
                build_regex(&det.source, &kw).ok()
            })
            .as_ref()
    }

    /// Which detectors have a keyword in `content` (plus those without keywords).
    fn active(&self, content: &[u8]) -> Vec<bool> {
        let mut active = vec![false; self.detectors.len()];
        for &i in &self.always {
            active[i] = true;
        }
        let mut seen = vec![false; self.owners.len()];
        let mut remaining = self.owners.len();
        if let Some(fast) = &self.fast {
            fast.for_each_match(content, |p, _| {
                if !seen[p] {
                    seen[p] = true;
                    for &d in &self.owners[p] {
                        active[d] = true;
                    }
                    remaining -= 1;
                }
                remaining == 0
            });
            return active;
        }
        let Some(ac) = self.automaton() else {
            return active;
        };
        for m in ac.find_overlapping_iter(content) {
            let p = m.pattern().as_usize();
            if seen[p] {
                continue;
            }
            seen[p] = true;
            for &d in &self.owners[p] {
                active[d] = true;
            }
            remaining -= 1;
            if remaining == 0 {
                break;
            }
        }
        active
    }

    /// Every keyword occurrence in `content`, grouped by keyword. `None` when there are so
    /// many that windows would not pay (and would cost memory: at most one per 32 bytes is
    /// kept), or no keyword search is available; the caller then searches whole buffers.
    fn occurrences(&self, content: &[u8]) -> Option<Occurrences> {
        let cap = content.len() / 32 + 64;
        let mut occ: Vec<(usize, usize)> = Vec::new();
        let mut note = |k: usize, at: usize| {
            occ.push((k, at));
            occ.len() > cap
        };
        if let Some(fast) = &self.fast {
            if fast.for_each_match(content, note) {
                return None;
            }
        } else {
            let ac = self.automaton()?;
            for m in ac.find_overlapping_iter(content) {
                if note(m.pattern().as_usize(), m.start()) {
                    return None;
                }
            }
        }
        Some(Occurrences::group(occ, self.keywords.len()))
    }

    /// All secrets in `content`: sorted by start, non-overlapping (overlapping matches of
    /// different detectors are merged into their union, keeping the stricter decision and the
    /// detector of the earlier, then longer, span). Detectors switched off with `Allow` report
    /// nothing.
    ///
    /// Each detector's regex runs only around the occurrences of its keywords (see `window`),
    /// with the same results as a search of the whole buffer: the tests compare the two.
    pub fn scan(&self, content: &[u8]) -> Vec<Finding<'_>> {
        if !self.might_contain_secret(content) {
            return Vec::new();
        }
        let Some(occ) = self.occurrences(content) else {
            return self.scan_active(content, &self.active(content));
        };
        let mut active = vec![false; self.detectors.len()];
        for &i in &self.always {
            active[i] = true;
        }
        for (k, owners) in self.owners.iter().enumerate() {
            if !occ.of(k).is_empty() {
                for &d in owners {
                    active[d] = true;
                }
            }
        }
        let mut found: Vec<(Finding<'_>, usize)> = Vec::new();
        let mut scratch: Vec<(usize, usize)> = Vec::new();
        for (di, det) in self.detectors.iter().enumerate() {
            if !active[di] || det.decision == Decision::Allow {
                continue;
            }
            let Some(c) = self.compiled(di) else {
                continue;
            };
            match &c.plan {
                Plan::Whole => self.search_whole(di, c, content, &mut found),
                Plan::Bounded { max } => {
                    self.search_bounded(di, c, content, &occ, *max, &mut scratch, &mut found)
                }
                Plan::Head { starts } => {
                    self.search_head(di, c, content, &occ, starts, &mut scratch, &mut found)
                }
                Plan::Prefix { min, max, first } => {
                    let (min, max) = (*min, *max);
                    let r =
                        |a: usize, _m: usize| (a >= min).then(|| (a.saturating_sub(max), a - min));
                    self.ranges(di, &occ, r, &mut scratch);
                    self.search_prefix(di, c, content, &scratch, first, &mut found)
                }
            }
        }
        merge(found)
    }

    /// The sorted, merged ranges `range(start, keyword length)` gives for the occurrences of
    /// detector `di`'s keywords.
    fn ranges(
        &self,
        di: usize,
        occ: &Occurrences,
        range: impl Fn(usize, usize) -> Option<(usize, usize)>,
        out: &mut Vec<(usize, usize)>,
    ) {
        out.clear();
        let mut lists = 0;
        for (k, owners) in self.owners.iter().enumerate() {
            let m = self.keywords.get(k).map_or(0, String::len);
            let at = occ.of(k);
            if at.is_empty() || !owners.contains(&di) {
                continue;
            }
            lists += 1;
            out.extend(at.iter().filter_map(|&a| range(a, m)));
        }
        if lists > 1 {
            out.sort_unstable();
        }
        let mut merged = 0;
        for j in 0..out.len() {
            let (lo, hi) = out[j];
            if merged > 0 && lo <= out[merged - 1].1.saturating_add(1) {
                out[merged - 1].1 = out[merged - 1].1.max(hi);
            } else {
                out[merged] = (lo, hi);
                merged += 1;
            }
        }
        out.truncate(merged);
    }

    /// A regex whose matches hold a keyword starting within a bounded distance of their start:
    /// an anchored search at each candidate start (beginning with a byte a match can begin
    /// with), in order; the first that matches at or after the previous match's end is the
    /// next leftmost match.
    fn search_prefix<'a>(
        &'a self,
        di: usize,
        c: &Compiled,
        content: &[u8],
        ranges: &[(usize, usize)],
        first: &[bool; 256],
        found: &mut Vec<(Finding<'a>, usize)>,
    ) {
        let mut caps = c.regex.create_captures();
        let mut pos = 0;
        for &(lo, hi) in ranges {
            let mut at = lo.max(pos);
            while at <= hi && at < content.len() {
                if first[usize::from(content[at])] {
                    let input = Input::new(content)
                        .span(at..content.len())
                        .anchored(Anchored::Yes);
                    if let Some((s, e, secret)) = search(c, &input, &mut caps) {
                        if let Some((a, b)) = secret {
                            self.push(di, content, a, b, found);
                        }
                        pos = e.max(s + 1);
                        at = pos;
                        continue;
                    }
                }
                at += 1;
            }
        }
    }

    /// A regex whose matches are at most `max` bytes: a match containing the occurrence
    /// `k..k+m` starts in `k+m-max ..= k` and ends by `start + max`. Those start ranges,
    /// merged, are searched in order, each with an unanchored search of `lo .. hi + max`
    /// (look-around still seeing the whole buffer), which finds the leftmost match starting
    /// there; a match it reports that starts after `hi` is left to the next range (it may
    /// not be the leftmost-first one there).
    #[allow(clippy::too_many_arguments)]
    fn search_bounded<'a>(
        &'a self,
        di: usize,
        c: &Compiled,
        content: &[u8],
        occ: &Occurrences,
        max: usize,
        windows: &mut Vec<(usize, usize)>,
        found: &mut Vec<(Finding<'a>, usize)>,
    ) {
        // An occurrence after whose core the rest of the pattern cannot match is no match's
        // core: it needs no window (see `window::core_tail`).
        let tail_fits = |a: usize| match &c.tail {
            None => true,
            Some((t, ends)) => ends.iter().any(|&e| {
                a + e <= content.len()
                    && t.search_half(
                        &Input::new(content)
                            .span(a + e..content.len())
                            .anchored(Anchored::Yes),
                    )
                    .is_some()
            }),
        };
        self.ranges(
            di,
            occ,
            |a, m| (m <= max && tail_fits(a)).then(|| ((a + m).saturating_sub(max), a)),
            windows,
        );
        let mut caps = c.regex.create_captures();
        let mut pos = 0;
        for &(lo, hi) in windows.iter() {
            while hi >= pos {
                let start = lo.max(pos);
                let end = hi.saturating_add(max).min(content.len());
                if start > end {
                    break;
                }
                let input = Input::new(content).span(start..end);
                let Some((s, e, secret)) = search(c, &input, &mut caps) else {
                    break;
                };
                if s > hi {
                    break;
                }
                if let Some((a, b)) = secret {
                    self.push(di, content, a, b, found);
                }
                pos = if e > s { e } else { e + 1 };
            }
        }
    }

    /// A regex whose matches begin with a head holding a keyword at known offsets: an
    /// anchored search at each start those offsets give, in order; the first that matches at
    /// or after the end of the previous match is the next leftmost match.
    #[allow(clippy::too_many_arguments)]
    fn search_head<'a>(
        &'a self,
        di: usize,
        c: &Compiled,
        content: &[u8],
        occ: &Occurrences,
        starts: &[(usize, u64)],
        cands: &mut Vec<(usize, usize)>,
        found: &mut Vec<(Finding<'a>, usize)>,
    ) {
        cands.clear();
        let mut sorted = true;
        for &(k, mask) in starts {
            let at = occ.of(k);
            if at.is_empty() {
                continue;
            }
            sorted &= cands.is_empty() && mask.count_ones() == 1;
            for &a in at {
                let mut m = mask;
                while m != 0 {
                    let o = m.trailing_zeros() as usize;
                    m &= m - 1;
                    if let Some(s) = a.checked_sub(o) {
                        cands.push((s, 0));
                    }
                }
            }
        }
        if !sorted {
            cands.sort_unstable();
            cands.dedup();
        }
        let mut caps = c.regex.create_captures();
        let mut pos = 0;
        for &(at, _) in cands.iter() {
            if at < pos {
                continue;
            }
            let input = Input::new(content)
                .span(at..content.len())
                .anchored(Anchored::Yes);
            if let Some((s, e, secret)) = search(c, &input, &mut caps) {
                if let Some((a, b)) = secret {
                    self.push(di, content, a, b, found);
                }
                pos = e.max(s + 1);
            }
        }
    }

    /// Every match in the whole buffer (the regex crate's `captures_iter`).
    fn search_whole<'a>(
        &'a self,
        di: usize,
        c: &Compiled,
        content: &[u8],
        found: &mut Vec<(Finding<'a>, usize)>,
    ) {
        match c.secret_group {
            Some(g) => {
                for caps in c.regex.captures_iter(content) {
                    if let Some(sp) = caps.get_group(g) {
                        self.push(di, content, sp.start, sp.end, found);
                    }
                }
            }
            None => {
                for m in c.regex.find_iter(content) {
                    self.push(di, content, m.start(), m.end(), found);
                }
            }
        }
    }

    /// Records `start..end` as detector `di`'s finding unless it is empty, below the entropy
    /// floor, or a placeholder.
    fn push<'a>(
        &'a self,
        di: usize,
        content: &[u8],
        start: usize,
        end: usize,
        found: &mut Vec<(Finding<'a>, usize)>,
    ) {
        let (Some(det), Some(secret)) = (self.detectors.get(di), content.get(start..end)) else {
            return;
        };
        if secret.is_empty() {
            return;
        }
        if let Some(min) = det.min_entropy
            && shannon_entropy(secret) < min
        {
            return;
        }
        if self.allowlist.is_placeholder(secret) {
            return;
        }
        found.push((
            Finding {
                detector: det.id.as_ref(),
                start,
                end,
                decision: det.decision,
            },
            di,
        ));
    }

    /// `scan` without windows, with the set of detectors to run given (`active[i]`: detector
    /// `i` runs): every regex over the whole buffer. What `scan` does when keywords are dense,
    /// and the tests' reference.
    fn scan_active(&self, content: &[u8], active: &[bool]) -> Vec<Finding<'_>> {
        let mut found: Vec<(Finding<'_>, usize)> = Vec::new();
        for (di, det) in self.detectors.iter().enumerate() {
            if !active.get(di).copied().unwrap_or(false) || det.decision == Decision::Allow {
                continue;
            }
            if let Some(c) = self.compiled(di) {
                self.search_whole(di, c, content, &mut found);
            }
        }
        merge(found)
    }
}

/// Keyword occurrences grouped by keyword, each group's starts ascending.
struct Occurrences {
    /// Group `k` is `starts[bounds[k]..bounds[k + 1]]`.
    bounds: Vec<usize>,
    starts: Vec<usize>,
}

impl Occurrences {
    /// Groups `(keyword, start)` pairs (a counting sort; the prefilter reports each keyword's
    /// occurrences in ascending order, possibly twice, which is checked, not assumed).
    fn group(occ: Vec<(usize, usize)>, keywords: usize) -> Occurrences {
        let mut bounds = vec![0usize; keywords + 2];
        for &(k, _) in &occ {
            if k < keywords {
                bounds[k + 2] += 1;
            }
        }
        for k in 2..bounds.len() {
            bounds[k] += bounds[k - 1];
        }
        // `bounds[k + 1]` is now where group `k` starts; it becomes where it ends.
        let mut starts = vec![0usize; bounds[keywords + 1]];
        for &(k, at) in &occ {
            if k < keywords {
                starts[bounds[k + 1]] = at;
                bounds[k + 1] += 1;
            }
        }
        bounds.truncate(keywords + 1);
        let mut out = Occurrences { bounds, starts };
        for k in 0..keywords {
            let (a, b) = (out.bounds[k], out.bounds[k + 1]);
            let group = &mut out.starts[a..b];
            if !group.windows(2).all(|w| w[0] < w[1]) {
                group.sort_unstable();
            }
        }
        // Duplicates (a 2-byte keyword reported twice) only cost a repeated candidate; the
        // searches skip starts before the previous match's end, so they stay harmless.
        out
    }

    fn of(&self, k: usize) -> &[usize] {
        match (self.bounds.get(k), self.bounds.get(k + 1)) {
            (Some(&a), Some(&b)) => self.starts.get(a..b).unwrap_or(&[]),
            _ => &[],
        }
    }
}

/// One leftmost-first search: the match's span and the span to report (the `secret` group,
/// or the whole match; `None` when the group did not take part).
#[allow(clippy::type_complexity)]
fn search(
    c: &Compiled,
    input: &Input<'_>,
    caps: &mut Captures,
) -> Option<(usize, usize, Option<(usize, usize)>)> {
    match c.secret_group {
        Some(g) => {
            // Most windowed searches find nothing: the lazy DFA alone says so, cheaper than a
            // capturing search (the one-pass DFA or backtracker run only on a match).
            c.regex.search_half(input)?;
            c.regex.search_captures(input, caps);
            let m = caps.get_match()?;
            let secret = caps.get_group(g).map(|sp| (sp.start, sp.end));
            Some((m.start(), m.end(), secret))
        }
        None => {
            let m = c.regex.search(input)?;
            Some((m.start(), m.end(), Some((m.start(), m.end()))))
        }
    }
}

fn build_automaton(keywords: &[String]) -> Option<AhoCorasick> {
    // Standard semantics: required for overlapping iteration.
    AhoCorasickBuilder::new()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::Standard)
        .build(keywords)
        .ok()
}

/// Drops every keyword that contains another keyword, handing its detectors to the contained
/// one: wherever `aws_secret` occurs, `secret` occurs too, so enabling the `aws_secret`
/// detectors on `secret` runs them on a superset of the buffers. Fewer, shorter patterns make
/// the automaton markedly faster (measured: 109 -> 97 keywords, about 3x throughput).
fn minimise(keywords: Vec<String>, owners: Vec<Vec<usize>>) -> (Vec<String>, Vec<Vec<usize>>) {
    // The bytes each keyword holds: a keyword can only contain another whose bytes it all has,
    // which rejects nearly every pair before a substring search (this runs per process).
    let bytes: Vec<[u64; 4]> = keywords
        .iter()
        .map(|k| {
            let mut set = [0u64; 4];
            for &b in k.as_bytes() {
                set[usize::from(b >> 6)] |= 1 << (b & 63);
            }
            set
        })
        .collect();
    let subset = |a: &[u64; 4], b: &[u64; 4]| a.iter().zip(b).all(|(x, y)| x & !y == 0);
    let contains_other = |i: usize| {
        keywords.iter().enumerate().any(|(j, o)| {
            j != i
                && o.len() < keywords[i].len()
                && subset(&bytes[j], &bytes[i])
                && keywords[i].contains(o.as_str())
        })
    };
    let keep: Vec<bool> = (0..keywords.len()).map(|i| !contains_other(i)).collect();
    let mut out_k: Vec<String> = Vec::new();
    let mut out_o: Vec<Vec<usize>> = Vec::new();
    let mut index = vec![usize::MAX; keywords.len()];
    for (i, k) in keywords.iter().enumerate() {
        if keep[i] {
            index[i] = out_k.len();
            out_k.push(k.clone());
            out_o.push(owners[i].clone());
        }
    }
    for (i, k) in keywords.iter().enumerate() {
        if keep[i] {
            continue;
        }
        // Some kept keyword is inside `k`: the shortest substring is never itself dropped.
        let target = (0..keywords.len())
            .filter(|&j| keep[j] && k.contains(keywords[j].as_str()))
            .min_by_key(|&j| keywords[j].len());
        if let Some(j) = target {
            let dst = &mut out_o[index[j]];
            for &d in &owners[i] {
                if !dst.contains(&d) {
                    dst.push(d);
                }
            }
        }
    }
    (out_k, out_o)
}

/// Sorts and merges overlapping findings (adjacent ones stay separate).
fn merge(mut found: Vec<(Finding<'_>, usize)>) -> Vec<Finding<'_>> {
    found.sort_by(|(a, ai), (b, bi)| {
        a.start
            .cmp(&b.start)
            .then(b.end.cmp(&a.end))
            .then(ai.cmp(bi))
    });
    let mut out: Vec<Finding<'_>> = Vec::with_capacity(found.len());
    for (f, _) in found {
        match out.last_mut() {
            Some(last) if f.start < last.end => {
                last.end = last.end.max(f.end);
                last.decision = last.decision.max_strict(f.decision);
            }
            _ => out.push(f),
        }
    }
    out
}

/// The strictest decision among `findings` (`Allow` when there are none): what the read as a
/// whole gets. `Deny` means refuse the read; `Redact` means hand back `redact(...)`.
pub fn strictest(findings: &[Finding<'_>]) -> Decision {
    findings
        .iter()
        .fold(Decision::Allow, |d, f| d.max_strict(f.decision))
}

/// Sorted, clamped, merged spans of `findings` (any order, overlaps and out-of-range spans are
/// tolerated: callers may hand in their own lists).
fn spans(len: usize, findings: &[Finding<'_>]) -> Vec<(usize, usize)> {
    let mut v: Vec<(usize, usize)> = findings
        .iter()
        .map(|f| (f.start.min(len), f.end.min(len)))
        .filter(|(s, e)| s < e)
        .collect();
    v.sort_unstable();
    let mut out: Vec<(usize, usize)> = Vec::with_capacity(v.len());
    for (s, e) in v {
        match out.last_mut() {
            Some(last) if s < last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// `content` with each finding's span replaced by exactly `REDACTED_BY_POLICY`. Overlapping
/// spans become one placeholder; adjacent spans stay two. Every finding passed is redacted:
/// filter out `Audit` findings first if they should stay visible.
pub fn redact(content: &[u8], findings: &[Finding<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    redact_into(content, findings, &mut out);
    out
}

/// Like `redact`, appending to `out` (lets the caller reuse a buffer).
pub fn redact_into(content: &[u8], findings: &[Finding<'_>], out: &mut Vec<u8>) {
    let spans = spans(content.len(), findings);
    out.reserve(redacted_len(content.len(), findings));
    let mut pos = 0;
    for (s, e) in spans {
        out.extend_from_slice(&content[pos..s]);
        out.extend_from_slice(REDACTED);
        pos = e;
    }
    out.extend_from_slice(&content[pos..]);
}

/// The length `redact` will produce (e.g. for answering `fstat` on the redacted copy).
pub fn redacted_len(content_len: usize, findings: &[Finding<'_>]) -> usize {
    spans(content_len, findings)
        .iter()
        .fold(content_len, |n, (s, e)| n - (e - s) + REDACTED.len())
}

/// Checks a spec's own examples the way `guardctl policy test` must: every `matches` entry
/// yields a finding of this detector, no `no_matches` entry yields one. The placeholder
/// allowlist is off (examples are placeholders by design); the keyword prefilter is on, so an
/// example that matches the regex but contains no keyword fails too.
pub fn verify_examples(
    spec: &SecretSpec,
    matches: &[&str],
    no_matches: &[&str],
) -> Result<(), SpecError> {
    let mut d = Detectors::from_specs(std::slice::from_ref(spec))?;
    d.set_allowlist(Allowlist::none());
    if matches.is_empty() {
        return Err(spec_err(&spec.id, "needs at least one match example"));
    }
    for ex in matches {
        if d.scan(ex.as_bytes()).is_empty() {
            return Err(spec_err(
                &spec.id,
                format!("example {ex:?} should match but does not"),
            ));
        }
    }
    for ex in no_matches {
        if let Some(f) = d.scan(ex.as_bytes()).first() {
            return Err(spec_err(
                &spec.id,
                format!(
                    "example {ex:?} should not match but bytes {}..{} do",
                    f.start, f.end
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(start: usize, end: usize) -> Finding<'static> {
        Finding {
            detector: "t",
            start,
            end,
            decision: Decision::Redact,
        }
    }

    fn d_spec(id: &str, re: &str, kw: &str) -> SecretSpec {
        SecretSpec::new(id, re, &[kw])
    }

    /// The reference for `scan`: no prefilter, the keywords located by brute force.
    fn brute_scan<'a>(d: &'a Detectors, content: &[u8]) -> Vec<Finding<'a>> {
        let mut active = vec![false; d.detectors.len()];
        for &i in &d.always {
            active[i] = true;
        }
        for (k, kw) in d.keywords.iter().enumerate() {
            let kw = kw.as_bytes();
            if content.len() >= kw.len()
                && content
                    .windows(kw.len())
                    .any(|w| w.eq_ignore_ascii_case(kw))
            {
                for &o in &d.owners[k] {
                    active[o] = true;
                }
            }
        }
        d.scan_active(content, &active)
    }

    /// Prefilter on (`scan`) vs off (the brute-force reference) over generated inputs: text
    /// with keywords, keyword-shaped fragments and generated secrets planted at random places.
    #[test]
    fn prefiltered_scan_equals_brute_force_reference() {
        use crate::testgen::{ALNUM, LOWER_HEX, Rng};
        let d = Detectors::builtin();
        assert!(
            d.fast.is_some(),
            "the built-in keywords fit the fast prefilter"
        );
        let mut rng = Rng::from_env();
        let seed = rng.seed();
        let filler = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789 _-.:/=\n\"'~{}()";
        let mut pieces: Vec<String> = d.keywords.clone();
        for _ in 0..40 {
            pieces.push(["gh", "p_", &rng.string(ALNUM, 36)].concat());
            pieces.push(format!(
                "DB_PASSWORD={}9{}",
                rng.string(ALNUM, 8),
                rng.string(ALNUM, 8)
            ));
            pieces.push(["do", "p_v1_", &rng.string(LOWER_HEX, 64)].concat());
            pieces.push(format!("https://u:{}@host/", rng.string(ALNUM, 16)));
            pieces.push(format!("token: {}", rng.string(ALNUM, 30)));
        }
        let mut findings = 0;
        for round in 0..1500 {
            let len = rng.below(600);
            let mut text: Vec<u8> = (0..len).map(|_| filler[rng.below(filler.len())]).collect();
            for _ in 0..rng.below(4) {
                let piece = pieces[rng.below(pieces.len())].as_bytes();
                let at = rng.below(text.len() + 1);
                let piece: Vec<u8> = if rng.below(3) == 0 {
                    piece.to_ascii_uppercase()
                } else {
                    piece.to_vec()
                };
                text.splice(at..at, piece);
            }
            let got = d.scan(&text);
            findings += got.len();
            assert_eq!(
                got,
                brute_scan(&d, &text),
                "seed {seed} round {round}: {}",
                String::from_utf8_lossy(&text)
            );
        }
        assert!(
            findings > 100,
            "the generated inputs exercise the detectors ({findings})"
        );
    }

    /// Every built-in regex gets a window plan; the detectors keyed on words common in source
    /// and docs (`token`, `secret`, `password`, `://`, `bearer`) must not search whole buffers.
    #[test]
    fn builtin_detectors_are_windowed() {
        let d = Detectors::builtin();
        let mut whole = Vec::new();
        for (i, det) in d.detectors.iter().enumerate() {
            let c = d.compiled(i).expect("built-in compiles");
            if c.plan == Plan::Whole {
                whole.push(det.id.as_ref());
            }
        }
        for id in [
            "generic-secret-assignment",
            "url-password",
            "bearer-token",
            "private-key",
            "jwt",
        ] {
            assert!(
                d.ids().any(|x| x == id) && !whole.contains(&id),
                "{id} windowed (whole: {whole:?})"
            );
        }
    }

    /// Windowed `scan` against whole-buffer search for detectors of each plan, on text made of
    /// keywords, near-keywords and token bytes: matches at window edges, windows overlapping
    /// and merging, keywords at the first and last bytes, secrets much longer than a window,
    /// look-around at window edges.
    #[test]
    fn windows_equal_whole_buffer_search() {
        use crate::testgen::Rng;
        let specs = [
            // Head: literal prefix, unbounded tail (a secret far longer than the head).
            SecretSpec::new(
                "head",
                r"(?i)\btok=(?P<secret>[a-z0-9]+)(?:[^a-z0-9]|\z)",
                &["tok="],
            ),
            // Head through a case-folded alternation with optional separators.
            SecretSpec::new(
                "alt",
                r"(?i)(?:pass|api[_.]?ky)[ ]*:(?P<secret>[0-9]{2,})",
                &["pass", "apiky", "api_ky", "api.ky"],
            ),
            // Bounded: the keyword sits after a wide class (no head), matches up to 16 bytes.
            SecretSpec::new("bounded", r"\b[a-z]{0,5}kw[0-9]{3,9}\b", &["kw"]),
            // Bounded with the keyword at the end and a look-ahead past it.
            SecretSpec::new("tail", r"[0-9a-f]{4,12}@zz(?:[^a-z]|\z)", &["@zz"]),
            // Bounded, a longest match can start at its keyword (the window's last start).
            SecretSpec::new("edge", r"(?:[a-z]{0,4}xy|xy[a-z]{0,4})[0-9]{1,3}", &["xy"]),
            // Head with the keyword at two offsets (after an optional separator).
            SecretSpec::new(
                "offset",
                r"(?i)[_.]?key=(?P<secret>[0-9a-z]{3,})",
                &["key="],
            ),
            // Head whose match can end inside the next keyword occurrence (`zk1zk2`).
            SecretSpec::new("overlap", r"zk[0-9]z?", &["zk"]),
            // Prefix: a bounded prefix with a wide class, then the keyword, unbounded tail.
            SecretSpec::new("prefix", r"-{2,4}BG[ A-Z]{0,6}KZ[0-9a-z]+", &["kz"]),
            // Whole: unbounded on both sides.
            SecretSpec::new("whole", r"[a-z]+qq[0-9]+", &["qq"]),
        ];
        let d = Detectors::from_specs(&specs).expect("compiles");
        let plans: Vec<&Plan> = (0..d.len())
            .map(|i| &d.compiled(i).expect("compiles").plan)
            .collect();
        assert!(matches!(plans[0], Plan::Head { .. }), "{:?}", plans[0]);
        assert!(matches!(plans[1], Plan::Head { .. }), "{:?}", plans[1]);
        assert_eq!(*plans[2], Plan::Bounded { max: 16 });
        assert!(matches!(plans[3], Plan::Bounded { .. }), "{:?}", plans[3]);
        assert_eq!(*plans[4], Plan::Bounded { max: 9 });
        assert!(
            matches!(plans[5], Plan::Head { starts } if starts.len() == 1 && starts[0].1 == 0b11),
            "{:?}",
            plans[5]
        );
        assert!(matches!(plans[6], Plan::Head { .. }), "{:?}", plans[6]);
        assert!(
            matches!(
                plans[7],
                Plan::Prefix {
                    min: 4,
                    max: 12,
                    ..
                }
            ),
            "{:?}",
            plans[7]
        );
        assert_eq!(*plans[8], Plan::Whole);
        let mut d = d;
        d.set_allowlist(Allowlist::none());
        let pieces: &[&[u8]] = &[
            b"tok=",
            b"TOK=",
            b"pass",
            b"PASS:",
            b"api_ky:",
            b"apiky :",
            b"kw",
            b"KW",
            b"@zz",
            b"qq",
            b"xy",
            b"--",
            b"-",
            b"BG",
            b"AB",
            b"KZ",
            b"kz",
            b"0a",
            b"zk",
            b"z",
            b"abcd",
            b"123",
            b"0123456789",
            b"abcdef",
            b" ",
            b"\n",
            b"=",
            b":",
            b"x",
            b"9",
        ];
        let mut rng = Rng::from_env();
        let seed = rng.seed();
        let mut findings = 0;
        for round in 0..4000 {
            let mut text: Vec<u8> = Vec::new();
            for _ in 0..rng.below(40) {
                text.extend_from_slice(pieces[rng.below(pieces.len())]);
            }
            if rng.below(10) == 0 {
                // A secret longer than any window.
                let at = rng.below(text.len() + 1);
                let long: Vec<u8> = (0..300 + rng.below(3000))
                    .map(|i| b"a1b2c3"[i % 6])
                    .collect();
                text.splice(at..at, [&b"tok="[..], &long].concat());
            }
            let got = d.scan(&text);
            findings += got.len();
            let all = vec![true; d.len()];
            assert_eq!(
                got,
                d.scan_active(&text, &all),
                "seed {seed} round {round}: {}",
                String::from_utf8_lossy(&text)
            );
        }
        assert!(
            findings > 2000,
            "the inputs exercise the detectors ({findings})"
        );
        // Keywords at the very start and end, look-around at the buffer edges.
        for text in [
            &b"tok=abc"[..],
            b"kw1234",
            b"a kw123",
            b"0a1b@zz",
            b"x tok=",
            b"tok=",
            b"@zz",
            // Prefix plan at its shortest and longest distances, at the buffer start.
            b"--BGKZ0a",
            b"----BGABABABKZ0a",
            b"x ----BG  AB  KZ0a1b --BGKZ9",
        ] {
            let all = vec![true; d.len()];
            assert_eq!(
                d.scan(text),
                d.scan_active(text, &all),
                "{}",
                String::from_utf8_lossy(text)
            );
        }
        assert_eq!(d.scan(b"kw1234").len(), 1);
        assert_eq!(d.scan(b"0a1b@zz").len(), 1);
        assert_eq!(d.scan(b"tok=abc").len(), 1);
        assert_eq!(d.scan(b"--BGKZ0a").len(), 1);
        assert_eq!(d.scan(b"----BGABABABKZ0a").len(), 1);
    }

    /// Keywords denser than windows pay for fall back to whole-buffer search (same results).
    #[test]
    fn dense_keywords_fall_back_to_whole_buffers() {
        let d = Detectors::from_specs(&[SecretSpec::new(
            "h",
            r"tok=(?P<secret>[a-z0-9]{4,})",
            &["tok="],
        )])
        .expect("compiles");
        let text = b"tok=tok=tok=abcd1234 ".repeat(500);
        assert!(d.occurrences(&text).is_none(), "too dense for windows");
        let f = d.scan(&text);
        assert_eq!(f.len(), 500);
        let all = vec![true; d.len()];
        assert_eq!(f, d.scan_active(&text, &all));
    }

    fn leak(v: Vec<u8>) -> &'static [u8] {
        Box::leak(v.into_boxed_slice())
    }

    /// A set loaded from its image scans exactly like the set it was made from (generated
    /// inputs with planted secrets, as above), for the built-ins and for a custom set with a
    /// decision override, entropy floor and keyword-less detector.
    #[test]
    fn image_round_trip_scans_identically() {
        use crate::testgen::{ALNUM, Rng};
        let mut custom = SecretSpec::new("corp", r"corp_(?P<secret>[0-9a-z]{8})", &["corp_"]);
        custom.min_entropy = Some(2.0);
        let mut custom =
            Detectors::builtin_with(&[custom, SecretSpec::new("pin", r"\bpin=[0-9]{6}\b", &[])])
                .expect("compiles");
        assert!(custom.set_decision("github-pat", Decision::Deny));
        assert!(custom.set_decision("jwt", Decision::Allow));
        let mut rng = Rng::from_env();
        let seed = rng.seed();
        for original in [Detectors::builtin(), custom] {
            let img = original.to_image();
            let loaded = Detectors::from_image(leak(img.clone())).expect("valid image");
            assert_eq!(loaded.to_image(), img, "stable");
            assert_eq!(
                loaded.ids().collect::<Vec<_>>(),
                original.ids().collect::<Vec<_>>()
            );
            let mut pieces: Vec<String> = original.keywords.clone();
            for _ in 0..30 {
                pieces.push(["gh", "p_", &rng.string(ALNUM, 36)].concat());
                pieces.push(format!(
                    "corp_{}",
                    rng.string(ALNUM, 8).to_ascii_lowercase()
                ));
                pieces.push(format!("pin={}", rng.below(900_000) + 100_000));
                pieces.push(format!("token: {}", rng.string(ALNUM, 30)));
            }
            let filler = b"abcdefghij klmnop=:_-\n";
            for round in 0..300 {
                let mut text: Vec<u8> = (0..rng.below(400))
                    .map(|_| filler[rng.below(filler.len())])
                    .collect();
                for _ in 0..rng.below(4) {
                    let at = rng.below(text.len() + 1);
                    text.splice(at..at, pieces[rng.below(pieces.len())].bytes());
                }
                assert_eq!(
                    loaded.scan(&text),
                    original.scan(&text),
                    "seed {seed} round {round}: {}",
                    String::from_utf8_lossy(&text)
                );
                assert_eq!(
                    loaded.might_contain_secret(&text),
                    original.might_contain_secret(&text)
                );
            }
        }
    }

    /// A damaged image is refused (the caller then builds the set at runtime), never a panic:
    /// every truncation, and single-byte changes at every position of the non-table part.
    #[test]
    fn damaged_images_are_refused_without_panicking() {
        let img = Detectors::builtin().to_image();
        assert!(Detectors::from_image(leak(Vec::new())).is_none());
        for cut in (0..img.len()).step_by(97).chain(img.len() - 3..img.len()) {
            assert!(
                Detectors::from_image(leak(img[..cut].to_vec())).is_none(),
                "cut {cut}"
            );
        }
        let mut longer = img.clone();
        longer.push(0);
        assert!(
            Detectors::from_image(leak(longer)).is_none(),
            "trailing bytes"
        );
        let mut loaded = 0;
        let text = b"x ghp_0123456789abcdefghijABCDEFGHIJklmnop y password=Q8z3m1x7k2Wq";
        for at in (0..img.len() - 66_000).step_by(31) {
            for v in [0u8, 0xff, img[at] ^ 1] {
                let mut bad = img.clone();
                bad[at] = v;
                if let Some(d) = Detectors::from_image(leak(bad)) {
                    // Still a usable set: scanning must not panic (a sample: each scan of a
                    // fresh set compiles regexes).
                    if loaded % 16 == 0 {
                        let _ = d.scan(text);
                    }
                    let _ = d.might_contain_secret(text);
                    loaded += 1;
                }
            }
        }
        // Most changes land in regex text or table values, which stay loadable.
        assert!(loaded > 0);
        let mut wrong_version = img.clone();
        wrong_version[4] ^= 1;
        assert!(Detectors::from_image(leak(wrong_version)).is_none());
    }

    #[test]
    fn detectors_can_be_shared_between_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Detectors>();
    }

    #[test]
    fn redact_replaces_each_span() {
        let c = b"a=SECRET1 b=SECRET2 end";
        let out = redact(c, &[f(2, 9), f(12, 19)]);
        assert_eq!(out, b"a=REDACTED_BY_POLICY b=REDACTED_BY_POLICY end");
        assert_eq!(redacted_len(c.len(), &[f(2, 9), f(12, 19)]), out.len());
    }

    #[test]
    fn redact_merges_overlaps_keeps_adjacent_apart() {
        let c = b"0123456789";
        // Overlapping and unsorted: one placeholder.
        assert_eq!(redact(c, &[f(4, 8), f(2, 6)]), b"01REDACTED_BY_POLICY89");
        // Contained: one placeholder.
        assert_eq!(redact(c, &[f(2, 8), f(3, 4)]), b"01REDACTED_BY_POLICY89");
        // Adjacent: two placeholders, nothing in between.
        assert_eq!(
            redact(c, &[f(2, 5), f(5, 8)]),
            b"01REDACTED_BY_POLICYREDACTED_BY_POLICY89"
        );
    }

    #[test]
    fn redact_tolerates_bad_spans() {
        let c = b"abc";
        assert_eq!(redact(c, &[f(2, 100)]), b"abREDACTED_BY_POLICY");
        assert_eq!(redact(c, &[f(50, 60), f(2, 1)]), b"abc");
        assert_eq!(redact(c, &[]), b"abc");
        assert_eq!(redacted_len(3, &[f(50, 60)]), 3);
        let mut out = b"prefix:".to_vec();
        redact_into(c, &[f(0, 3)], &mut out);
        assert_eq!(out, b"prefix:REDACTED_BY_POLICY");
    }

    #[test]
    fn merge_keeps_stricter_decision_and_earlier_detector() {
        let a = Finding {
            detector: "a",
            start: 0,
            end: 5,
            decision: Decision::Audit,
        };
        let b = Finding {
            detector: "b",
            start: 3,
            end: 9,
            decision: Decision::Deny,
        };
        let c = Finding {
            detector: "c",
            start: 9,
            end: 12,
            decision: Decision::Redact,
        };
        let m = merge(vec![(c, 2), (b, 1), (a, 0)]);
        assert_eq!(m.len(), 2);
        assert_eq!((m[0].detector, m[0].start, m[0].end), ("a", 0, 9));
        assert_eq!(m[0].decision, Decision::Deny);
        assert_eq!((m[1].detector, m[1].start, m[1].end), ("c", 9, 12));
        assert_eq!(strictest(&m), Decision::Deny);
        assert_eq!(strictest(&[]), Decision::Allow);
    }

    #[test]
    fn from_specs_returns_errors() {
        let ok = SecretSpec::new("x", "abc[0-9]+", &["abc"]);
        assert!(Detectors::from_specs(std::slice::from_ref(&ok)).is_ok());
        let bad_re = SecretSpec::new("bad-re", "abc(", &["abc"]);
        let e = Detectors::from_specs(&[bad_re]).unwrap_err();
        assert_eq!(e.id, "bad-re");
        assert!(e.message.contains("regex"), "{e}");
        let e = Detectors::from_specs(&[ok.clone(), ok.clone()]).unwrap_err();
        assert!(e.message.contains("duplicate"), "{e}");
        let e = Detectors::from_specs(&[SecretSpec::new("Bad Id", "a", &[])]).unwrap_err();
        assert!(e.message.contains("id"), "{e}");
        let mut ask = ok.clone();
        ask.decision = Decision::Ask;
        assert!(Detectors::from_specs(&[ask]).is_err());
        let mut ent = ok.clone();
        ent.min_entropy = Some(9.5);
        assert!(Detectors::from_specs(&[ent]).is_err());
        let empty_kw = SecretSpec::new("e", "a", &[""]);
        assert!(Detectors::from_specs(&[empty_kw]).is_err());
        // A huge counted repetition is refused by the size limit instead of eating memory.
        let huge = SecretSpec::new("huge", "(?:[a-z]{1000}){1000}", &["a"]);
        assert!(Detectors::from_specs(&[huge]).is_err());
    }

    #[test]
    fn keywords_gate_the_regex() {
        let spec = SecretSpec::new("kw", "zz[0-9]{6}", &["ZZ"]);
        let d = Detectors::from_specs(&[spec]).expect("compiles");
        assert!(!d.might_contain_secret(b"nothing here 123456"));
        // Case-insensitive keyword hit, but the regex itself is case-sensitive.
        assert!(d.might_contain_secret(b"ZZ123456"));
        assert!(d.scan(b"ZZ123456").is_empty());
        let found = d.scan(b"x zz482913 y");
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].start, found[0].end), (2, 10));
        // A regex match without the keyword inside it is missed, even with the keyword next to
        // it: that is the documented contract (the regex runs only around keywords).
        let spec = SecretSpec::new("kw2", "[0-9]{6}", &["pin"]);
        let d = Detectors::from_specs(&[spec]).expect("compiles");
        assert!(d.scan(b"482913").is_empty());
        assert!(d.scan(b"pin 482913").is_empty());
        assert!(verify_examples(&d_spec("kw2", "[0-9]{6}", "pin"), &["pin 482913"], &[]).is_err());
        let d = Detectors::from_specs(&[d_spec("kw3", "pin [0-9]{6}", "pin")]).expect("compiles");
        assert_eq!(d.scan(b"PIN pin 482913").len(), 1);
    }

    #[test]
    fn minimise_hands_detectors_to_contained_keywords() {
        let kw = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (k, o) = minimise(
            kw(&[
                "aws_secret",
                "secret",
                "client_secret_x",
                "token",
                "xsecretx",
            ]),
            vec![vec![0], vec![1], vec![2], vec![3], vec![4, 1]],
        );
        assert_eq!(k, kw(&["secret", "token"]));
        assert_eq!(o, vec![vec![1, 0, 2, 4], vec![3]]);
        // Through the engine: the detector keyed on the longer word still runs and finds.
        let a = SecretSpec::new("a", "aws_secret=(?P<secret>[0-9]{6})", &["aws_secret"]);
        let b = SecretSpec::new("b", "secret:(?P<secret>[a-z]{6})", &["secret"]);
        let d = Detectors::from_specs(&[a, b]).expect("compiles");
        assert_eq!(d.owners.len(), 1);
        let f = d.scan(b"aws_secret=482913");
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].detector, "a");
    }

    #[test]
    fn no_keywords_means_always_run() {
        let spec = SecretSpec::new("nokw", "[0-9]{6}", &[]);
        let d = Detectors::from_specs(&[spec]).expect("compiles");
        assert!(d.might_contain_secret(b""));
        assert_eq!(d.scan(b"code 482913").len(), 1);
    }

    #[test]
    fn overlapping_keywords_enable_both_detectors() {
        let a = SecretSpec::new("a", "secret=(?P<secret>[0-9]{4})", &["secret"]);
        let b = SecretSpec::new(
            "b",
            "client_secret:(?P<secret>[a-z]{4})",
            &["client_secret"],
        );
        let d = Detectors::from_specs(&[a, b]).expect("compiles");
        let text = b"client_secret:qwzx secret=7391";
        let found = d.scan(text);
        let ids: Vec<&str> = found.iter().map(|f| f.detector).collect();
        assert_eq!(ids, ["b", "a"]);
    }

    #[test]
    fn secret_group_entropy_and_decision_override() {
        let mut spec = SecretSpec::new("g", "key=(?P<secret>[a-z0-9]+)", &["key="]);
        spec.min_entropy = Some(3.0);
        let mut d = Detectors::from_specs(&[spec]).expect("compiles");
        assert!(d.scan(b"key=aaaabbbb").is_empty(), "low entropy");
        let found = d.scan(b"key=q8z3m1x7k2");
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].start, found[0].end), (4, 14));
        assert_eq!(found[0].decision, Decision::Redact);
        assert!(d.set_decision("g", Decision::Deny));
        assert_eq!(d.scan(b"key=q8z3m1x7k2")[0].decision, Decision::Deny);
        assert!(d.set_decision("g", Decision::Allow));
        assert!(d.scan(b"key=q8z3m1x7k2").is_empty());
        assert!(!d.set_decision("nope", Decision::Deny));
    }

    #[test]
    fn allowlist_is_a_separate_layer() {
        let spec = SecretSpec::new("t", "tok_[A-Z0-9]{12}", &["tok_"]);
        let mut d = Detectors::from_specs(std::slice::from_ref(&spec)).expect("compiles");
        let text = b"tok_EXAMPLE00000";
        assert!(
            d.scan(text).is_empty(),
            "default allowlist drops the placeholder"
        );
        d.set_allowlist(Allowlist::none());
        assert_eq!(d.scan(text).len(), 1);
        assert!(verify_examples(&spec, &["tok_EXAMPLE00000"], &["tok_short"]).is_ok());
        assert!(verify_examples(&spec, &["tok_short"], &[]).is_err());
        assert!(verify_examples(&spec, &["tok_EXAMPLE00000"], &["tok_EXAMPLE00000"]).is_err());
        assert!(verify_examples(&spec, &[], &[]).is_err());
    }

    #[test]
    fn builtin_regexes_compile_lazily_and_validated_specs_skip_bad_ones() {
        let d = Detectors::builtin();
        assert!(d.detectors.iter().all(|x| x.compiled.get().is_none()));
        let npm = ["np", "m_", "q7Zp2LmX9vRt4KwB8nYcq7Zp2LmX9vRt4KwB"].concat();
        assert_eq!(d.scan(npm.as_bytes()).len(), 1);
        let compiled = d
            .detectors
            .iter()
            .filter(|x| x.compiled.get().is_some())
            .count();
        assert!((1..5).contains(&compiled), "{compiled} compiled");
        let good = SecretSpec::new("good", "zz[0-9]{6}", &["zz"]);
        let bad_re = SecretSpec::new("bad-re", "zz(", &["zz"]);
        let bad_id = SecretSpec::new("Bad Id", "zz", &["zz"]);
        let d = Detectors::from_validated_specs(&[bad_re, bad_id, good.clone(), good]);
        assert_eq!(d.ids().collect::<Vec<_>>(), ["bad-re", "good"]);
        let f = d.scan(b"zz123456");
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].detector, "good");
        // Policy specs added to the built-ins are checked up front.
        let e = Detectors::builtin_with(&[SecretSpec::new("bad", "(", &["x"])]).unwrap_err();
        assert_eq!(e.id, "bad");
        let x = SecretSpec::new("x", "x[0-9]", &["x"]);
        let e = Detectors::builtin_with(&[x.clone(), x]).unwrap_err();
        assert!(e.message.contains("duplicate"), "{e}");
    }

    #[test]
    fn builtin_with_validated_replaces_by_id_and_keeps_entropy() {
        let mut custom = SecretSpec::new(
            "npm-access-token",
            "npmtok_(?P<secret>[0-9a-z]{8})",
            &["npmtok_"],
        );
        custom.min_entropy = Some(2.5);
        let extra = SecretSpec::new("corp-token", "corp_[0-9]{8}", &["corp_"]);
        let bad = SecretSpec::new("bad", "(", &["bad"]);
        let d = Detectors::builtin_with_validated(&[custom, extra, bad]);
        assert_eq!(d.len(), Detectors::builtin().len() + 2);
        assert!(
            d.detectors.iter().all(|x| x.compiled.get().is_none()),
            "lazy"
        );
        assert_eq!(d.scan(b"npmtok_q8z3m1x7").len(), 1);
        assert!(
            d.scan(b"npmtok_aaaaaaaa").is_empty(),
            "entropy floor applies"
        );
        assert_eq!(d.scan(b"corp_48201937").len(), 1);
        assert!(d.scan(b"bad(").is_empty());
    }

    #[test]
    fn builtin_with_replaces_by_id() {
        let custom = SecretSpec::new("npm-access-token", "npmtok_[0-9]{8}", &["npmtok_"]);
        let d = Detectors::builtin_with(&[custom]).expect("compiles");
        assert_eq!(d.len(), Detectors::builtin().len());
        assert_eq!(d.scan(b"npmtok_48201937").len(), 1);
        let extra = SecretSpec::new("corp-token", "corp_[0-9]{8}", &["corp_"]);
        let d = Detectors::builtin_with(&[extra]).expect("compiles");
        assert_eq!(d.len(), Detectors::builtin().len() + 1);
    }
}
