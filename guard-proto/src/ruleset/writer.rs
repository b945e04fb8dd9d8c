//! Lays out a ruleset file from a validated description (`guard-policy` builds the description).
//!
//! The writer trusts its input to be valid (globs checked, braces expanded, placeholders
//! substituted) and only decides the layout: string interning, range slots, and the indexes
//! that let the evaluator try only candidate rules. Allocates freely; never used by libguard.

use std::collections::HashMap;

use super::exec::BUILTIN_VALUE_OPTIONS;
use super::format::*;
use super::glob::{first_wildcard, has_wildcard, unescape};
use super::net::IpNet;
use crate::decision::Decision;

#[derive(Clone, Debug)]
pub struct RulesetSpec {
    pub name: String,
    pub default: Decision,
    pub monitor: bool,
    pub ask_timeout_ms: u32,
    pub unguardable_exec: Decision,
    pub rules: Vec<RuleSpec>,
    pub secrets: Vec<SecretSpec>,
    pub env_strip: Vec<String>,
    pub env_keep: Vec<String>,
    /// `[programs.NAME] value_options`, added to the built-in tables.
    pub value_options: Vec<(String, Vec<String>)>,
    /// `[secrets] scope` / `exclude`: path globs (brace-expanded, placeholders substituted)
    /// deciding which files content detection inspects.
    pub secret_scope: Vec<String>,
    pub secret_exclude: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct RuleSpec {
    pub id: String,
    pub reason: String,
    pub tags: Vec<String>,
    pub source: String,
    pub line: u32,
    pub decision: Decision,
    /// `when.workspace` did not hold for the compile context.
    pub inactive: bool,
    pub when: WhenSpec,
    pub body: RuleBody,
}

#[derive(Clone, Debug, Default)]
pub struct WhenSpec {
    /// (variable, value glob)
    pub env: Vec<(String, String)>,
    pub cwd: Vec<String>,
    pub agent: Vec<String>,
}

/// Globs here are brace-expanded and placeholder-substituted.
#[derive(Clone, Debug)]
pub enum RuleBody {
    File {
        include: Vec<String>,
        exclude: Vec<String>,
        /// Bits of `FileAccess::bit`.
        access: u8,
    },
    Exec {
        program: String,
        words: Vec<String>,
        any_arg: Vec<String>,
        /// One group per `all_args` entry (its brace expansions): some argument must match
        /// some member of every group.
        all_args: Vec<Vec<String>>,
    },
    Connect {
        hosts: Vec<String>,
        nets: Vec<IpNet>,
        ports: Vec<(u16, u16)>,
    },
    Http {
        hosts: Vec<String>,
        methods: Vec<String>,
        paths: Vec<String>,
        body_contains: Vec<String>,
        body_regex: Vec<String>,
        graphql: Vec<String>,
        /// `GQL_*` bits.
        graphql_ops: u8,
    },
}

#[derive(Clone, Debug)]
pub struct SecretSpec {
    pub id: String,
    pub regex: String,
    pub keywords: Vec<String>,
    pub decision: Decision,
    pub source: String,
    pub line: u32,
    /// Minimum Shannon entropy (bits per byte) of the secret span (guard-secrets semantics).
    pub min_entropy: Option<f64>,
}

#[derive(Default)]
struct Out {
    strings: Vec<u8>,
    interned: HashMap<String, (u32, u32)>,
    pats: Vec<u8>,
    npats: u32,
    nregex: u32,
    nets: Vec<u8>,
    nnets: u32,
    ports: Vec<u8>,
    nports: u32,
    lists: Vec<u32>,
}

impl Out {
    fn string(&mut self, s: &str) -> (u32, u32) {
        if let Some(&r) = self.interned.get(s) {
            return r;
        }
        let r = (self.strings.len() as u32, s.len() as u32);
        self.strings.extend_from_slice(s.as_bytes());
        self.interned.insert(s.to_string(), r);
        r
    }

    fn pat(&mut self, text: &str, kind: u8) -> u32 {
        self.pat_flagged(text, kind, 0)
    }

    fn pat_flagged(&mut self, text: &str, kind: u8, flags: u8) -> u32 {
        let (o, l) = self.string(text);
        let aux = if kind == PAT_REGEX {
            self.nregex += 1;
            self.nregex - 1
        } else {
            0
        };
        self.pats.extend_from_slice(&o.to_le_bytes());
        self.pats.extend_from_slice(&l.to_le_bytes());
        self.pats.extend_from_slice(&aux.to_le_bytes());
        let lit = match kind {
            PAT_GLOB_PATH | PAT_GLOB_ARG | PAT_GLOB_HOST => {
                u16::try_from(super::glob::literal_head(text.as_bytes())).unwrap_or(0)
            }
            _ => 0,
        };
        self.pats.extend_from_slice(&[kind, flags]);
        self.pats.extend_from_slice(&lit.to_le_bytes());
        self.npats += 1;
        self.npats - 1
    }

    fn pats<S: AsRef<str>>(&mut self, items: &[S], kind: u8) -> (u32, u32) {
        let start = self.npats;
        for i in items {
            self.pat(i.as_ref(), kind);
        }
        (start, items.len() as u32)
    }

    /// Groups of alternatives, laid out consecutively; every member after a group's first is
    /// flagged `PAT_FLAG_ALT`. Empty groups are dropped (they could never be satisfied, and
    /// the compiler never produces them).
    fn pat_groups(&mut self, groups: &[Vec<String>], kind: u8) -> (u32, u32) {
        let start = self.npats;
        for g in groups {
            for (i, p) in g.iter().enumerate() {
                self.pat_flagged(p, kind, if i == 0 { 0 } else { PAT_FLAG_ALT });
            }
        }
        (start, self.npats - start)
    }

    fn list(&mut self, items: &[u32]) -> (u32, u32) {
        let start = self.lists.len() as u32;
        self.lists.extend_from_slice(items);
        (start, items.len() as u32)
    }
}

fn put_u32(rec: &mut [u8], off: usize, v: u32) {
    rec[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_pair(rec: &mut [u8], off: usize, (a, b): (u32, u32)) {
    put_u32(rec, off, a);
    put_u32(rec, off + 4, b);
}

/// Hash table entries before layout: (key, value).
struct Table {
    /// (hash, key, value); None: the key alone (membership tables).
    entries: Vec<(u64, String, Option<u32>)>,
}

impl Table {
    fn new() -> Table {
        Table {
            entries: Vec::new(),
        }
    }
    /// A key with no values (membership only: value options).
    fn add_key(&mut self, key: &str) {
        self.entries
            .push((key_hash(key.as_bytes()), key.to_string(), None));
    }
    fn add(&mut self, key: &str, value: u32) {
        self.entries
            .push((key_hash(key.as_bytes()), key.to_string(), Some(value)));
    }
    /// (buckets, entries) section bytes.
    fn layout(self, out: &mut Out) -> (Vec<u8>, Vec<u8>) {
        // One entry per distinct key, its values (rule indices, in rule order) in LISTS: a
        // lookup that lands in a bucket compares a few keys, never every rule of a busy key.
        let mut keys: Vec<(u64, String, Vec<u32>)> = Vec::new();
        let mut pos: HashMap<String, usize> = HashMap::new();
        for (h, key, value) in self.entries {
            let i = match pos.get(&key) {
                Some(&i) => i,
                None => {
                    pos.insert(key.clone(), keys.len());
                    keys.push((h, key, Vec::new()));
                    keys.len() - 1
                }
            };
            if let Some(v) = value
                && keys[i].2.last() != Some(&v)
            {
                keys[i].2.push(v);
            }
        }
        // About two buckets per key keeps collisions rare.
        let nb = (keys.len() * 2).next_power_of_two().max(1);
        let mask = (nb - 1) as u64;
        keys.sort_by_key(|e| e.0 & mask);
        let mut starts = vec![0u32; nb + 1];
        for e in &keys {
            starts[(e.0 & mask) as usize + 1] += 1;
        }
        for i in 1..=nb {
            starts[i] += starts[i - 1];
        }
        let buckets: Vec<u8> = starts.iter().flat_map(|v| v.to_le_bytes()).collect();
        let mut ents = Vec::with_capacity(keys.len() * ENTRY_LEN);
        for (h, key, values) in &keys {
            let (o, l) = out.string(key);
            let (vs, vn) = out.list(values);
            ents.extend_from_slice(&h.to_le_bytes());
            ents.extend_from_slice(&o.to_le_bytes());
            ents.extend_from_slice(&l.to_le_bytes());
            ents.extend_from_slice(&vs.to_le_bytes());
            ents.extend_from_slice(&vn.to_le_bytes());
        }
        (buckets, ents)
    }
}

/// Where a file glob goes in the indexes.
enum FileKey {
    Anchor(String),
    Base(String),
    Ext(String),
    BasePrefix(String),
    Always,
}

fn classify_file_glob(g: &str) -> FileKey {
    if !has_wildcard(g) {
        return FileKey::Anchor(unescape(g));
    }
    let b = g.as_bytes();
    if let Some(rest) = g.strip_prefix("**/") {
        // `**/.../name` or `**/.../*.ext`: index by the last component.
        let last = rest.rsplit('/').next().unwrap_or(rest);
        if !last.is_empty() && !has_wildcard(last) && !last.contains('\\') {
            return FileKey::Base(last.to_string());
        }
        if let Some(ext) = last.strip_prefix("*.")
            && !ext.is_empty()
            && !has_wildcard(ext)
            && !ext.contains('\\')
            && !ext.contains('{')
        {
            return FileKey::Ext(ext.to_string());
        }
        // `**/.env.*`, `**/id_*`: the basename starts with the literal head.
        let head = &last[..first_wildcard(last.as_bytes()).unwrap_or(last.len())];
        if head.len() >= BASE_PREFIX_LEN
            && head.is_char_boundary(BASE_PREFIX_LEN)
            && !head.contains('\\')
        {
            return FileKey::BasePrefix(head[..BASE_PREFIX_LEN].to_string());
        }
        return FileKey::Always;
    }
    if b.first() != Some(&b'/') {
        return FileKey::Always;
    }
    let w = first_wildcard(b).unwrap_or(b.len());
    // The literal text before the wildcard, up to its last `/`, is an ancestor of every match
    // (for `/a/**` that is `/a`, which the matcher also accepts as the path itself).
    let lit = &g[..w];
    let dir = match lit.rfind('/') {
        Some(i) => &lit[..i],
        None => "",
    };
    if dir.contains('\\') {
        return FileKey::Anchor(unescape(dir));
    }
    FileKey::Anchor(dir.to_string())
}

/// Builds the ruleset bytes.
pub fn write(spec: &RulesetSpec) -> Vec<u8> {
    let mut out = Out::default();
    let mut rules = vec![0u8; spec.rules.len() * RULE_LEN];
    let mut anchor = Table::new();
    let mut base = Table::new();
    let mut ext = Table::new();
    let mut bpfx = Table::new();
    let mut prog = Table::new();
    let mut file_always: Vec<u32> = Vec::new();
    let mut file_all = Vec::new();
    let mut exec_all = Vec::new();
    let mut connect_rules = Vec::new();
    let mut http_rules = Vec::new();

    for (idx, r) in spec.rules.iter().enumerate() {
        let ri = idx as u32;
        let rec = &mut rules[idx * RULE_LEN..(idx + 1) * RULE_LEN];
        put_pair(rec, RULE_ID, out.string(&r.id));
        put_pair(rec, RULE_REASON, out.string(&r.reason));
        put_pair(rec, RULE_TAGS, out.string(&r.tags.join(",")));
        put_pair(rec, RULE_SOURCE, out.string(&r.source));
        put_u32(rec, RULE_LINE, r.line);
        rec[RULE_DECISION] = r.decision as u8;
        rec[RULE_FLAGS] = if r.inactive { FLAG_INACTIVE } else { 0 };
        let slot = |s: usize| RULE_RANGES + s * 8;
        match &r.body {
            RuleBody::File {
                include,
                exclude,
                access,
            } => {
                rec[RULE_KIND] = KIND_FILE;
                rec[RULE_ACCESS] = *access;
                put_pair(rec, slot(SLOT_A), out.pats(include, PAT_GLOB_PATH));
                put_pair(rec, slot(SLOT_B), out.pats(exclude, PAT_GLOB_PATH));
                file_all.push(ri);
                for g in include {
                    match classify_file_glob(g) {
                        FileKey::Anchor(k) => anchor.add(&k, ri),
                        FileKey::Base(k) => base.add(&k, ri),
                        FileKey::Ext(k) => ext.add(&k, ri),
                        FileKey::BasePrefix(k) => bpfx.add(&k, ri),
                        FileKey::Always => {
                            if file_always.last() != Some(&ri) {
                                file_always.push(ri)
                            }
                        }
                    }
                }
            }
            RuleBody::Exec {
                program,
                words,
                any_arg,
                all_args,
            } => {
                rec[RULE_KIND] = KIND_EXEC;
                put_pair(
                    rec,
                    slot(SLOT_A),
                    out.pats(std::slice::from_ref(program), PAT_LITERAL),
                );
                put_pair(rec, slot(SLOT_B), out.pats(words, PAT_LITERAL));
                put_pair(rec, slot(SLOT_C), out.pats(any_arg, PAT_GLOB_ARG));
                put_pair(rec, slot(SLOT_D), out.pat_groups(all_args, PAT_GLOB_ARG));
                prog.add(program, ri);
                exec_all.push(ri);
            }
            RuleBody::Connect { hosts, nets, ports } => {
                rec[RULE_KIND] = KIND_CONNECT;
                let hosts: Vec<String> = hosts.iter().map(|h| h.to_ascii_lowercase()).collect();
                put_pair(rec, slot(SLOT_A), out.pats(&hosts, PAT_GLOB_HOST));
                let ns = out.nnets;
                for n in nets {
                    let (addr, fam) = n.to_bytes();
                    out.nets.extend_from_slice(&addr);
                    out.nets
                        .extend_from_slice(&[fam, n.prefix, 0, 0, 0, 0, 0, 0]);
                    out.nnets += 1;
                }
                put_pair(rec, slot(SLOT_B), (ns, nets.len() as u32));
                let ps = out.nports;
                for (lo, hi) in ports {
                    out.ports.extend_from_slice(&lo.to_le_bytes());
                    out.ports.extend_from_slice(&hi.to_le_bytes());
                    out.nports += 1;
                }
                put_pair(rec, slot(SLOT_C), (ps, ports.len() as u32));
                connect_rules.push(ri);
            }
            RuleBody::Http {
                hosts,
                methods,
                paths,
                body_contains,
                body_regex,
                graphql,
                graphql_ops,
            } => {
                rec[RULE_KIND] = KIND_HTTP;
                rec[RULE_GQL_OPS] = *graphql_ops;
                let hosts: Vec<String> = hosts.iter().map(|h| h.to_ascii_lowercase()).collect();
                put_pair(rec, slot(SLOT_A), out.pats(&hosts, PAT_GLOB_HOST));
                put_pair(rec, slot(SLOT_B), out.pats(methods, PAT_LITERAL));
                put_pair(rec, slot(SLOT_C), out.pats(paths, PAT_GLOB_ARG));
                put_pair(rec, slot(SLOT_D), out.pats(body_contains, PAT_LITERAL));
                put_pair(rec, slot(SLOT_E), out.pats(body_regex, PAT_REGEX));
                put_pair(rec, slot(SLOT_F), out.pats(graphql, PAT_LITERAL));
                http_rules.push(ri);
            }
        }
        let env_start = out.npats;
        for (k, v) in &r.when.env {
            out.pat(k, PAT_LITERAL);
            out.pat(v, PAT_GLOB_ARG);
        }
        put_pair(
            rec,
            slot(SLOT_WHEN_ENV),
            (env_start, r.when.env.len() as u32 * 2),
        );
        put_pair(
            rec,
            slot(SLOT_WHEN_CWD),
            out.pats(&r.when.cwd, PAT_GLOB_PATH),
        );
        put_pair(
            rec,
            slot(SLOT_WHEN_AGENT),
            out.pats(&r.when.agent, PAT_GLOB_ARG),
        );
    }

    let mut meta = vec![0u8; META_LEN];
    put_pair(&mut meta, META_NAME, out.string(&spec.name));
    meta[META_DEFAULT] = spec.default as u8;
    meta[META_MODE] = u8::from(spec.monitor);
    meta[META_UNGUARDABLE] = spec.unguardable_exec as u8;
    put_u32(&mut meta, META_ASK_TIMEOUT, spec.ask_timeout_ms);
    put_pair(
        &mut meta,
        META_ENV_STRIP,
        out.pats(&spec.env_strip, PAT_GLOB_ARG),
    );
    put_pair(
        &mut meta,
        META_ENV_KEEP,
        out.pats(&spec.env_keep, PAT_GLOB_ARG),
    );
    put_pair(&mut meta, META_FILE_ALWAYS, out.list(&file_always));
    put_pair(&mut meta, META_CONNECT_RULES, out.list(&connect_rules));
    put_pair(&mut meta, META_HTTP_RULES, out.list(&http_rules));
    put_pair(&mut meta, META_FILE_ALL, out.list(&file_all));
    put_pair(&mut meta, META_EXEC_ALL, out.list(&exec_all));
    let max_anchor = anchor.entries.iter().map(|e| e.1.len()).max().unwrap_or(0);
    put_u32(
        &mut meta,
        META_MAX_ANCHOR,
        u32::try_from(max_anchor).unwrap_or(u32::MAX),
    );

    let mut secrets = vec![0u8; spec.secrets.len() * SECRET_LEN];
    for (i, s) in spec.secrets.iter().enumerate() {
        let rec = &mut secrets[i * SECRET_LEN..(i + 1) * SECRET_LEN];
        put_pair(rec, SECRET_ID, out.string(&s.id));
        let p = out.pat(&s.regex, PAT_REGEX);
        put_u32(rec, SECRET_REGEX_PAT, p);
        rec[SECRET_DECISION] = s.decision as u8;
        put_pair(rec, SECRET_KEYWORDS, out.pats(&s.keywords, PAT_LITERAL));
        put_pair(rec, SECRET_SOURCE, out.string(&s.source));
        put_u32(rec, SECRET_LINE, s.line);
        if let Some(e) = s.min_entropy {
            rec[SECRET_FLAGS] = SECRET_FLAG_ENTROPY;
            rec[SECRET_ENTROPY..SECRET_ENTROPY + 8].copy_from_slice(&e.to_bits().to_le_bytes());
        }
    }
    put_u32(&mut meta, META_REGEX_COUNT, out.nregex);
    put_pair(
        &mut meta,
        META_SECRET_SCOPE,
        out.pats(&spec.secret_scope, PAT_GLOB_PATH),
    );
    put_pair(
        &mut meta,
        META_SECRET_EXCLUDE,
        out.pats(&spec.secret_exclude, PAT_GLOB_PATH),
    );

    let mut vopt = Table::new();
    let user = spec
        .value_options
        .iter()
        .flat_map(|(p, opts)| opts.iter().map(move |o| (p.as_str(), o.as_str())));
    let builtin = BUILTIN_VALUE_OPTIONS
        .iter()
        .flat_map(|(p, opts)| opts.iter().map(move |o| (*p, *o)));
    for (p, o) in builtin.chain(user) {
        vopt.add_key(&format!("{p}\0{o}"));
    }

    let (anchor_b, anchor_e) = anchor.layout(&mut out);
    let (base_b, base_e) = base.layout(&mut out);
    let (ext_b, ext_e) = ext.layout(&mut out);
    let (prog_b, prog_e) = prog.layout(&mut out);
    let (vopt_b, vopt_e) = vopt.layout(&mut out);
    let (bpfx_b, bpfx_e) = bpfx.layout(&mut out);

    let lists: Vec<u8> = out.lists.iter().flat_map(|v| v.to_le_bytes()).collect();
    let sections: [&[u8]; SECTION_COUNT] = [
        &out.strings,
        &meta,
        &rules,
        &out.pats,
        &out.nets,
        &out.ports,
        &lists,
        &anchor_b,
        &anchor_e,
        &base_b,
        &base_e,
        &ext_b,
        &ext_e,
        &prog_b,
        &prog_e,
        &vopt_b,
        &vopt_e,
        &secrets,
        &bpfx_b,
        &bpfx_e,
        &[],
    ];
    assemble(&sections)
}

/// `ruleset` (a compiled file) with section `sec` replaced by `data`, resealed; `None` when
/// `ruleset` does not load or `data` is not whole records of that section. For data computed
/// from the compiled ruleset itself (the policy compiler's secret detector image).
pub fn with_section(ruleset: &[u8], sec: usize, data: &[u8]) -> Option<Vec<u8>> {
    let rs = super::Ruleset::load(ruleset).ok()?;
    if sec >= SECTION_COUNT || !data.len().is_multiple_of(RECORD_SIZE[sec]) {
        return None;
    }
    let mut sections: [&[u8]; SECTION_COUNT] = [&[]; SECTION_COUNT];
    for (i, s) in sections.iter_mut().enumerate() {
        *s = if i == sec { data } else { rs.section(i) };
    }
    Some(assemble(&sections))
}

/// Header, section table, 8-byte-aligned sections, checksum.
pub fn assemble(sections: &[&[u8]; SECTION_COUNT]) -> Vec<u8> {
    let table_end = HEADER_LEN + SECTION_COUNT * SECTION_ENTRY_LEN;
    let mut buf = vec![0u8; table_end];
    for (i, s) in sections.iter().enumerate() {
        while !buf.len().is_multiple_of(8) {
            buf.push(0);
        }
        let off = buf.len() as u64;
        let e = HEADER_LEN + i * SECTION_ENTRY_LEN;
        buf[e..e + 8].copy_from_slice(&off.to_le_bytes());
        buf[e + 8..e + 16].copy_from_slice(&(s.len() as u64).to_le_bytes());
        buf.extend_from_slice(s);
    }
    while !buf.len().is_multiple_of(8) {
        buf.push(0);
    }
    seal(&mut buf);
    buf
}

/// Writes magic, version, lengths and the checksum into the header (also used by tests that
/// build deliberately inconsistent files with a valid checksum).
pub fn seal(buf: &mut [u8]) {
    if buf.len() < HEADER_LEN {
        return;
    }
    buf[..8].copy_from_slice(&MAGIC);
    buf[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    buf[12..16].copy_from_slice(&(HEADER_LEN as u32).to_le_bytes());
    let total = buf.len() as u64;
    buf[16..24].copy_from_slice(&total.to_le_bytes());
    buf[32..36].copy_from_slice(&(SECTION_COUNT as u32).to_le_bytes());
    let end = main_end(buf);
    let image_sum = checksum(&buf[end..]);
    buf[IMAGE_SUM_AT..IMAGE_SUM_AT + 8].copy_from_slice(&image_sum.to_le_bytes());
    let sum = checksum(&buf[HEADER_LEN..end.max(HEADER_LEN)]);
    buf[24..32].copy_from_slice(&sum.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(g: &str) -> String {
        match classify_file_glob(g) {
            FileKey::Anchor(k) => format!("anchor:{k}"),
            FileKey::Base(k) => format!("base:{k}"),
            FileKey::Ext(k) => format!("ext:{k}"),
            FileKey::BasePrefix(k) => format!("base-prefix:{k}"),
            FileKey::Always => "always".into(),
        }
    }

    #[test]
    fn file_globs_are_indexed_by_their_literal_part() {
        assert_eq!(key("/etc/passwd"), "anchor:/etc/passwd");
        assert_eq!(key(r"/etc/a\*b"), "anchor:/etc/a*b");
        assert_eq!(key("/home/u/.aws/**"), "anchor:/home/u/.aws");
        assert_eq!(key("/home/u/.ssh/id_*"), "anchor:/home/u/.ssh");
        assert_eq!(key("/a/**/b/*.c"), "anchor:/a");
        assert_eq!(key("/*"), "anchor:");
        assert_eq!(key("**/.env"), "base:.env");
        assert_eq!(key("**/x/.git/config"), "base:config");
        assert_eq!(key("**/*.pem"), "ext:pem");
        assert_eq!(key("**/*.tar.gz"), "ext:tar.gz");
        assert_eq!(key("**/id_*"), "base-prefix:id_");
        assert_eq!(key("**/.env.*"), "base-prefix:.en");
        assert_eq!(key("**/a/.netrc*"), "base-prefix:.ne");
        assert_eq!(key("**/ab*"), "always");
        assert_eq!(key(r"**/a\*b*"), "always");
        assert_eq!(key("**/abé*"), "always");
        assert_eq!(key("**/aé*"), "base-prefix:aé");
        assert_eq!(key("**/.git/hooks/**"), "always");
        assert_eq!(key("*/x"), "always");
    }

    #[test]
    fn tables_have_one_entry_per_key_with_values_in_rule_order() {
        let mut out = Out::default();
        let mut t = Table::new();
        for i in 0..100u32 {
            t.add(&format!("k{}", i % 10), i);
        }
        t.add_key("lonely");
        let (b, e) = t.layout(&mut out);
        let nb = b.len() / 4 - 1;
        assert!(nb.is_power_of_two() && nb >= 22);
        assert_eq!(e.len() / ENTRY_LEN, 11);
        assert_eq!(rd_u32(&b, nb * 4) as usize, 11);
        let k3 = (0..11)
            .map(|i| &e[i * ENTRY_LEN..(i + 1) * ENTRY_LEN])
            .find(|ent| rd_u64(ent, ENTRY_HASH) == key_hash(b"k3"))
            .map(|ent| {
                (
                    rd_u32(ent, ENTRY_VALUES) as usize,
                    rd_u32(ent, ENTRY_VALUES + 4) as usize,
                )
            });
        let (vs, vn) = k3.unwrap_or((0, 0));
        assert_eq!(
            out.lists[vs..vs + vn],
            (0..10).map(|j| j * 10 + 3).collect::<Vec<u32>>()[..]
        );
    }
}
