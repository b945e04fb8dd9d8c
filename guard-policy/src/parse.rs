//! Reading policy files: TOML into span-carrying raw structs (unknown keys refused), includes
//! with cycle detection, and validation of everything that does not depend on the compile
//! context (decisions, ids, glob and regex syntax, key/kind combinations).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Range;
use std::path::{Path, PathBuf};

use guard_proto::Decision;
use guard_proto::ruleset::glob;
use guard_proto::ruleset::net::{IpNet, parse_port_range};
use serde::Deserialize;
use toml::Spanned;

use crate::{Example, Kind, Loc, Policy, PolicyError, RuleDef, SecretDef, WhenDef};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    policy: Option<RawPolicy>,
    #[serde(default)]
    rule: Vec<Spanned<RawRule>>,
    #[serde(default)]
    secret: Vec<Spanned<RawSecret>>,
    env: Option<RawEnv>,
    secrets: Option<RawSecretsScope>,
    #[serde(default)]
    programs: BTreeMap<String, RawProgram>,
}

/// `[secrets]`: which files content detection inspects.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSecretsScope {
    scope: SList,
    exclude: SList,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    name: Option<Spanned<String>>,
    default: Option<Spanned<String>>,
    mode: Option<Spanned<String>>,
    ask_timeout: Option<Spanned<String>>,
    unguardable_exec: Option<Spanned<String>>,
    include: Option<Vec<Spanned<String>>>,
}

type SList = Option<Spanned<Vec<Spanned<String>>>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: Spanned<String>,
    on: Spanned<String>,
    decision: Spanned<String>,
    reason: Option<String>,
    tags: Option<Vec<String>>,
    when: Option<Spanned<RawWhen>>,
    examples: Option<Spanned<RawExamples>>,
    paths: SList,
    access: SList,
    command: Option<Spanned<String>>,
    any_arg: SList,
    all_args: SList,
    hosts: SList,
    ips: SList,
    ports: Option<Spanned<Vec<Spanned<toml::Value>>>>,
    methods: SList,
    body_contains: SList,
    body_regex: SList,
    graphql: SList,
    graphql_operation: SList,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWhen {
    env: Option<BTreeMap<String, Spanned<String>>>,
    cwd: SList,
    workspace: SList,
    agent: SList,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawExamples {
    #[serde(rename = "match", default)]
    pub matches: Vec<Spanned<String>>,
    #[serde(default)]
    pub no_match: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSecret {
    id: Spanned<String>,
    regex: Spanned<String>,
    keywords: Option<Vec<String>>,
    decision: Option<Spanned<String>>,
    /// Minimum Shannon entropy (bits per byte) of the secret; see guard-secrets.
    entropy: Option<Spanned<f64>>,
    examples: Option<Spanned<RawExamples>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnv {
    strip: SList,
    keep: SList,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProgram {
    value_options: Vec<String>,
}

/// Where policy text comes from: the filesystem, or the policies embedded in the binary.
pub(crate) trait SourceProvider {
    fn read(&self, path: &Path) -> Result<String, String>;
    /// A stable identity for cycle detection.
    fn identity(&self, path: &Path) -> PathBuf;
}

pub(crate) struct FsSource;

impl SourceProvider for FsSource {
    fn read(&self, path: &Path) -> Result<String, String> {
        std::fs::read_to_string(path).map_err(|e| format!("cannot read policy file: {e}"))
    }
    fn identity(&self, path: &Path) -> PathBuf {
        std::fs::canonicalize(path).unwrap_or_else(|_| normalize(path))
    }
}

pub(crate) struct MapSource(pub HashMap<PathBuf, &'static str>);

impl SourceProvider for MapSource {
    fn read(&self, path: &Path) -> Result<String, String> {
        self.0
            .get(&normalize(path))
            .map(|s| s.to_string())
            .ok_or_else(|| "no such embedded policy file".to_string())
    }
    fn identity(&self, path: &Path) -> PathBuf {
        normalize(path)
    }
}

/// Lexical normalisation (no filesystem access): drops `.`, resolves `..`.
pub(crate) fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// One file's text, for turning byte spans into line:col.
pub(crate) struct SourceText<'a> {
    pub path: &'a Path,
    pub text: &'a str,
    /// Byte offset of the start of every line (so line:col is a binary search, not a scan).
    line_starts: Vec<usize>,
}

impl<'a> SourceText<'a> {
    pub fn new(path: &'a Path, text: &'a str) -> SourceText<'a> {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        SourceText {
            path,
            text,
            line_starts,
        }
    }

    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset).max(1);
        let start = self.line_starts.get(line - 1).copied().unwrap_or(0);
        let col = self
            .text
            .get(start..offset)
            .map(|l| l.chars().count())
            .unwrap_or(0)
            + 1;
        (line, col)
    }

    pub fn err(&self, span: Range<usize>, message: impl Into<String>) -> PolicyError {
        let (line, col) = self.line_col(span.start);
        PolicyError {
            file: self.path.to_path_buf(),
            line,
            col,
            message: message.into(),
        }
    }

    pub fn loc<T>(&self, v: T, span: Range<usize>) -> Loc<T> {
        let (line, col) = self.line_col(span.start);
        Loc {
            v,
            file: self.path.to_path_buf(),
            line,
            col,
        }
    }
}

pub(crate) struct Loader<'s> {
    src: &'s dyn SourceProvider,
    stack: Vec<PathBuf>,
    loaded: HashSet<PathBuf>,
    ids: HashMap<String, (PathBuf, usize)>,
    secret_ids: HashMap<String, (PathBuf, usize)>,
    pub policy: Policy,
    settings_taken: bool,
}

impl<'s> Loader<'s> {
    pub fn new(src: &'s dyn SourceProvider) -> Loader<'s> {
        Loader {
            src,
            stack: Vec::new(),
            loaded: HashSet::new(),
            ids: HashMap::new(),
            secret_ids: HashMap::new(),
            policy: Policy::empty(),
            settings_taken: false,
        }
    }

    /// Loads a top-level file (`include_site`: where it was included from, for errors).
    pub fn load_file(
        &mut self,
        path: &Path,
        top_level: bool,
        include_site: Option<(&SourceText<'_>, Range<usize>)>,
    ) -> Result<(), PolicyError> {
        let ident = self.src.identity(path);
        if let Some(pos) = self.stack.iter().position(|p| *p == ident) {
            let chain: Vec<String> = self.stack[pos..]
                .iter()
                .chain(std::iter::once(&ident))
                .map(|p| p.display().to_string())
                .collect();
            let msg = format!("include cycle: {}", chain.join(" -> "));
            return Err(match include_site {
                Some((st, span)) => st.err(span, msg),
                None => PolicyError {
                    file: path.to_path_buf(),
                    line: 1,
                    col: 1,
                    message: msg,
                },
            });
        }
        if !self.loaded.insert(ident.clone()) {
            // Included twice through different paths (not a cycle): its rules are already in.
            return Ok(());
        }
        let text = match self.src.read(path) {
            Ok(t) => t,
            Err(e) => {
                return Err(match include_site {
                    Some((st, span)) => st.err(span, format!("{e}: {}", path.display())),
                    None => PolicyError {
                        file: path.to_path_buf(),
                        line: 1,
                        col: 1,
                        message: e,
                    },
                });
            }
        };
        if top_level && self.policy.top_dir.is_none() {
            self.policy.top_dir = Some(path.parent().map(Path::to_path_buf).unwrap_or_default());
        }
        self.policy.files.push(path.to_path_buf());
        self.stack.push(ident);
        let st = SourceText::new(path, &text);
        let r = self.load_text(&st, top_level);
        self.stack.pop();
        r
    }

    fn load_text(&mut self, st: &SourceText<'_>, top_level: bool) -> Result<(), PolicyError> {
        let raw: RawFile = toml::from_str(st.text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            st.err(span, e.message().trim().to_string())
        })?;
        let mut includes = Vec::new();
        if let Some(p) = raw.policy {
            let take_settings = top_level && !self.settings_taken;
            if top_level {
                self.settings_taken = true;
            }
            if !top_level {
                for (key, v) in [
                    ("default", &p.default),
                    ("mode", &p.mode),
                    ("ask_timeout", &p.ask_timeout),
                    ("unguardable_exec", &p.unguardable_exec),
                ] {
                    if let Some(v) = v {
                        return Err(st.err(
                            v.span(),
                            format!("`{key}` may only be set in a top-level policy, not in an included pack"),
                        ));
                    }
                }
            }
            if take_settings {
                if let Some(n) = &p.name {
                    self.policy.name = n.get_ref().clone();
                }
                if let Some(d) = &p.default {
                    self.policy.default = parse_decision(st, d, false)?;
                }
                if let Some(m) = &p.mode {
                    self.policy.monitor = match m.get_ref().as_str() {
                        "enforce" => false,
                        "monitor" => true,
                        other => {
                            return Err(st.err(
                                m.span(),
                                format!("unknown mode `{other}` (expected enforce or monitor)"),
                            ));
                        }
                    };
                }
                if let Some(t) = &p.ask_timeout {
                    self.policy.ask_timeout_ms = parse_duration(t.get_ref()).ok_or_else(|| {
                        st.err(
                            t.span(),
                            format!(
                                "bad ask_timeout `{}` (expected \"<n>ms\", \"<n>s\" or \"<n>m\")",
                                t.get_ref()
                            ),
                        )
                    })?;
                }
                if let Some(u) = &p.unguardable_exec {
                    self.policy.unguardable_exec = parse_decision(st, u, false)?;
                }
            }
            includes = p.include.unwrap_or_default();
        }
        for r in raw.rule {
            self.add_rule(st, r)?;
        }
        for s in raw.secret {
            self.add_secret(st, s)?;
        }
        if let Some(env) = raw.env {
            for (list, out) in [
                (env.strip, &mut self.policy.env_strip),
                (env.keep, &mut self.policy.env_keep),
            ] {
                for g in list.map(Spanned::into_inner).unwrap_or_default() {
                    check_glob(st, &g, "an env glob")?;
                    out.push(g.into_inner());
                }
            }
        }
        if let Some(sc) = raw.secrets {
            // The first file (top-level before its includes) that sets a list decides it.
            for (list, out) in [
                (sc.scope, &mut self.policy.secret_scope),
                (sc.exclude, &mut self.policy.secret_exclude),
            ] {
                let Some(list) = list else { continue };
                let mut globs = Vec::new();
                for g in list.into_inner() {
                    check_glob(st, &g, "a [secrets] path glob")?;
                    globs.push(g.into_inner());
                }
                if out.is_none() {
                    *out = Some(globs);
                }
            }
        }
        for (name, prog) in raw.programs {
            self.policy.value_options.push((name, prog.value_options));
        }
        let dir = st.path.parent().map(Path::to_path_buf).unwrap_or_default();
        for inc in includes {
            let target = dir.join(inc.get_ref());
            self.load_file(&target, false, Some((st, inc.span())))?;
        }
        Ok(())
    }

    fn add_rule(&mut self, st: &SourceText<'_>, r: Spanned<RawRule>) -> Result<(), PolicyError> {
        let rule_span = r.span();
        let r = r.into_inner();
        let id = r.id.get_ref().clone();
        if !valid_id(&id) {
            return Err(st.err(
                r.id.span(),
                format!("invalid rule id `{id}` (expected [a-z0-9][a-z0-9-._]*)"),
            ));
        }
        if let Some((f, line)) = self.ids.get(&id) {
            return Err(st.err(
                r.id.span(),
                format!(
                    "duplicate rule id `{id}` (first defined at {}:{line})",
                    f.display()
                ),
            ));
        }
        let decision = parse_decision(st, &r.decision, true)?;
        let kind_name = r.on.get_ref().as_str();
        // `redact` scrubs what a file read returns, or the secrets in an outbound HTTP body.
        if decision == Decision::Redact && kind_name != "file" && kind_name != "http" {
            return Err(st.err(
                r.decision.span(),
                "`redact` applies to file reads and outbound HTTP bodies: use it on a file rule with access = [\"read\"] or on an http rule",
            ));
        }
        // Keys allowed per kind, to refuse e.g. `command` on a file rule.
        let allowed: &[&str] = match kind_name {
            "file" => &["paths", "access"],
            "exec" => &["command", "any_arg", "all_args"],
            "connect" => &["hosts", "ips", "ports"],
            "http" => &[
                "hosts",
                "methods",
                "paths",
                "body_contains",
                "body_regex",
                "graphql",
                "graphql_operation",
            ],
            other => {
                return Err(st.err(r.on.span(), format!("unknown rule kind `on = \"{other}\"` (expected file, exec, connect or http)")));
            }
        };
        let present: [(&str, Option<Range<usize>>); 13] = [
            ("paths", r.paths.as_ref().map(|v| v.span())),
            ("access", r.access.as_ref().map(|v| v.span())),
            ("command", r.command.as_ref().map(|v| v.span())),
            ("any_arg", r.any_arg.as_ref().map(|v| v.span())),
            ("all_args", r.all_args.as_ref().map(|v| v.span())),
            ("hosts", r.hosts.as_ref().map(|v| v.span())),
            ("ips", r.ips.as_ref().map(|v| v.span())),
            ("ports", r.ports.as_ref().map(|v| v.span())),
            ("methods", r.methods.as_ref().map(|v| v.span())),
            ("body_contains", r.body_contains.as_ref().map(|v| v.span())),
            ("body_regex", r.body_regex.as_ref().map(|v| v.span())),
            ("graphql", r.graphql.as_ref().map(|v| v.span())),
            (
                "graphql_operation",
                r.graphql_operation.as_ref().map(|v| v.span()),
            ),
        ];
        for (key, span) in &present {
            if let Some(span) = span
                && !allowed.contains(key)
            {
                return Err(st.err(
                    span.clone(),
                    format!("`{key}` is not a key of `on = \"{kind_name}\"` rules"),
                ));
            }
        }
        let list =
            |v: SList| -> Vec<Spanned<String>> { v.map(Spanned::into_inner).unwrap_or_default() };
        let kind = match kind_name {
            "file" => {
                let paths = list(r.paths);
                if paths.iter().all(|p| p.get_ref().starts_with('!')) {
                    return Err(st.err(
                        r.id.span(),
                        format!("file rule `{id}` needs `paths` with at least one non-`!` glob"),
                    ));
                }
                for p in &paths {
                    let g = p.get_ref().strip_prefix('!').unwrap_or(p.get_ref());
                    check_glob(st, &Spanned::new(p.span(), g.to_string()), "a path glob")?;
                    let first = g.chars().next();
                    if !matches!(first, Some('/') | Some('~') | Some('{') | Some('*')) {
                        return Err(st.err(p.span(), format!("path glob `{g}` must be absolute (start with `/`, `~`, a placeholder such as `{{workspace}}`, or `**/`)")));
                    }
                }
                let mut access = 0u8;
                for a in list(r.access) {
                    match guard_proto::FileAccess::parse(a.get_ref()) {
                        Some(fa) => access |= fa.bit(),
                        None => {
                            return Err(st.err(
                                a.span(),
                                format!(
                                    "unknown access `{}` (expected read, write or delete)",
                                    a.get_ref()
                                ),
                            ));
                        }
                    }
                }
                if access == 0 {
                    access = 7;
                }
                if decision == Decision::Redact && access != guard_proto::FileAccess::Read.bit() {
                    return Err(st.err(
                        r.decision.span(),
                        "`redact` applies to reads only: set access = [\"read\"]",
                    ));
                }
                Kind::File {
                    paths: paths
                        .into_iter()
                        .map(|p| st.loc(p.get_ref().clone(), p.span()))
                        .collect(),
                    access,
                }
            }
            "exec" => {
                let Some(cmd) = r.command else {
                    return Err(st.err(r.id.span(), format!("exec rule `{id}` needs `command`")));
                };
                let words: Vec<String> = cmd
                    .get_ref()
                    .split_whitespace()
                    .map(str::to_string)
                    .collect();
                if words.is_empty() {
                    return Err(st.err(cmd.span(), "`command` is empty"));
                }
                let any_arg = list(r.any_arg);
                let all_args = list(r.all_args);
                for g in any_arg.iter().chain(all_args.iter()) {
                    check_glob(st, g, "an argument glob")?;
                }
                Kind::Exec {
                    command: words,
                    any_arg: any_arg.into_iter().map(Spanned::into_inner).collect(),
                    all_args: all_args.into_iter().map(Spanned::into_inner).collect(),
                }
            }
            "connect" => {
                let hosts = list(r.hosts);
                for h in &hosts {
                    check_glob(st, h, "a host glob")?;
                }
                let mut nets = Vec::new();
                for ip in list(r.ips) {
                    nets.push(IpNet::parse(ip.get_ref()).map_err(|e| st.err(ip.span(), e))?);
                }
                let mut ports = Vec::new();
                for p in r.ports.map(Spanned::into_inner).unwrap_or_default() {
                    let span = p.span();
                    let parsed = match p.into_inner() {
                        toml::Value::Integer(n) => u16::try_from(n)
                            .map(|n| (n, n))
                            .map_err(|_| format!("port {n} is out of range")),
                        toml::Value::String(s) => parse_port_range(&s),
                        _ => Err("a port is a number or a \"lo-hi\" string".to_string()),
                    };
                    ports.push(parsed.map_err(|e| st.err(span, e))?);
                }
                Kind::Connect {
                    hosts: hosts.into_iter().map(Spanned::into_inner).collect(),
                    nets,
                    ports,
                }
            }
            _ => {
                let hosts = list(r.hosts);
                let paths = list(r.paths);
                for g in hosts.iter().chain(paths.iter()) {
                    check_glob(st, g, "a glob")?;
                }
                let body_regex = list(r.body_regex);
                for re in &body_regex {
                    guard_proto::ruleset::build_regex(re.get_ref()).map_err(|e| {
                        st.err(re.span(), format!("invalid regex: {}", first_line(&e)))
                    })?;
                }
                let graphql = list(r.graphql);
                let ops_list = list(r.graphql_operation);
                let mut ops = 0u8;
                for o in &ops_list {
                    use guard_proto::ruleset::format::{GQL_MUTATION, GQL_QUERY, GQL_SUBSCRIPTION};
                    ops |= match o.get_ref().as_str() {
                        "query" => GQL_QUERY,
                        "mutation" => GQL_MUTATION,
                        "subscription" => GQL_SUBSCRIPTION,
                        other => return Err(st.err(o.span(), format!("unknown graphql operation `{other}` (expected query, mutation or subscription)"))),
                    };
                }
                if !ops_list.is_empty() && graphql.is_empty() {
                    return Err(st.err(
                        ops_list[0].span(),
                        "`graphql_operation` needs `graphql` field names",
                    ));
                }
                if ops == 0 {
                    ops = guard_proto::ruleset::format::GQL_MUTATION;
                }
                Kind::Http {
                    hosts: hosts.into_iter().map(Spanned::into_inner).collect(),
                    methods: list(r.methods)
                        .into_iter()
                        .map(|m| m.into_inner().to_ascii_uppercase())
                        .collect(),
                    paths: paths.into_iter().map(Spanned::into_inner).collect(),
                    body_contains: list(r.body_contains)
                        .into_iter()
                        .map(Spanned::into_inner)
                        .collect(),
                    body_regex: body_regex.into_iter().map(Spanned::into_inner).collect(),
                    graphql: graphql.into_iter().map(Spanned::into_inner).collect(),
                    graphql_ops: ops,
                }
            }
        };
        let mut when = WhenDef::default();
        if let Some(w) = r.when {
            let w = w.into_inner();
            for (k, v) in w.env.unwrap_or_default() {
                check_glob(st, &v, "an env value glob")?;
                when.env.push((k, v.into_inner()));
            }
            for (src, out) in [
                (w.cwd, &mut when.cwd),
                (w.workspace, &mut when.workspace),
                (w.agent, &mut when.agent),
            ] {
                for g in list(src) {
                    check_glob(st, &g, "a `when` glob")?;
                    out.push(g.into_inner());
                }
            }
        }
        let examples = match r.examples {
            Some(e) => {
                let span = e.span();
                let e = e.into_inner();
                if e.matches.is_empty() {
                    return Err(st.err(
                        span,
                        format!("rule `{id}` needs at least one `match` example"),
                    ));
                }
                collect_examples(st, e)
            }
            None => {
                return Err(st.err(
                    rule_span,
                    format!(
                        "rule `{id}` has no `examples` (at least one `match` example is required)"
                    ),
                ));
            }
        };
        let (line, col) = st.line_col(rule_span.start);
        self.ids.insert(id.clone(), (st.path.to_path_buf(), line));
        self.policy.rules.push(RuleDef {
            id,
            file: st.path.to_path_buf(),
            line,
            col,
            decision,
            reason: r.reason.unwrap_or_default(),
            tags: r.tags.unwrap_or_default(),
            when,
            kind,
            examples,
        });
        Ok(())
    }

    fn add_secret(
        &mut self,
        st: &SourceText<'_>,
        s: Spanned<RawSecret>,
    ) -> Result<(), PolicyError> {
        let span = s.span();
        let s = s.into_inner();
        let id = s.id.get_ref().clone();
        if !valid_id(&id) {
            return Err(st.err(
                s.id.span(),
                format!("invalid secret id `{id}` (expected [a-z0-9][a-z0-9-._]*)"),
            ));
        }
        if let Some((f, line)) = self.secret_ids.get(&id) {
            return Err(st.err(
                s.id.span(),
                format!(
                    "duplicate secret id `{id}` (first defined at {}:{line})",
                    f.display()
                ),
            ));
        }
        let decision = match &s.decision {
            None => Decision::Redact,
            Some(d) => match Decision::parse(d.get_ref()) {
                Some(x @ (Decision::Redact | Decision::Deny | Decision::Audit)) => x,
                _ => {
                    return Err(st.err(
                        d.span(),
                        format!(
                            "a secret's decision must be redact, deny or audit, not `{}`",
                            d.get_ref()
                        ),
                    ));
                }
            },
        };
        let keywords = s.keywords.unwrap_or_default();
        // Validated by guard-secrets itself (what libguard builds its detectors with), so a
        // policy that loads never holds a detector libguard would refuse. Its limits (ASCII
        // mode, 4 MiB program) are within the evaluator's own (`build_regex`: 8 MiB), so the
        // regex is compiled once here rather than twice.
        let spec = guard_secrets::SecretSpec {
            id: id.clone(),
            regex: s.regex.get_ref().clone(),
            keywords: keywords.clone(),
            decision,
            min_entropy: s.entropy.as_ref().map(|e| *e.get_ref()),
        };
        if let Err(e) = guard_secrets::Detectors::from_specs(std::slice::from_ref(&spec)) {
            let span = if e.message.starts_with("regex") {
                s.regex.span()
            } else if e.message.starts_with("entropy") {
                s.entropy
                    .as_ref()
                    .map(Spanned::span)
                    .unwrap_or(span.clone())
            } else {
                span.clone()
            };
            let msg = match e.message.strip_prefix("regex: ") {
                Some(r) => format!("invalid regex: {}", first_line(r)),
                None => e.message.clone(),
            };
            return Err(st.err(span, format!("secret `{id}`: {msg}")));
        }
        let (line, col) = st.line_col(span.start);
        self.secret_ids
            .insert(id.clone(), (st.path.to_path_buf(), line));
        self.policy.secrets.push(SecretDef {
            id,
            regex: s.regex.into_inner(),
            keywords,
            decision,
            entropy: s.entropy.map(Spanned::into_inner),
            file: st.path.to_path_buf(),
            line,
            col,
            examples: s
                .examples
                .map(|e| collect_examples(st, e.into_inner()))
                .unwrap_or_default(),
        });
        Ok(())
    }
}

fn collect_examples(st: &SourceText<'_>, e: RawExamples) -> Vec<Example> {
    let mut out = Vec::new();
    for (list, expect) in [(e.matches, true), (e.no_match, false)] {
        for x in list {
            let (line, col) = st.line_col(x.span().start);
            out.push(Example {
                text: x.into_inner(),
                expect_match: expect,
                line,
                col,
            });
        }
    }
    out
}

fn first_line(s: &str) -> String {
    // regex errors are multi-line with a caret diagram; keep them readable in one line.
    s.lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or(s)
        .trim()
        .to_string()
}

fn valid_id(id: &str) -> bool {
    let b = id.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter().all(|&c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'-' | b'.' | b'_')
        })
}

fn parse_decision(
    st: &SourceText<'_>,
    d: &Spanned<String>,
    allow_redact: bool,
) -> Result<Decision, PolicyError> {
    match Decision::parse(d.get_ref()) {
        Some(Decision::Redact) if !allow_redact => Err(st.err(
            d.span(),
            "`redact` is not allowed here (allow, audit, deny or ask)",
        )),
        Some(x) => Ok(x),
        None => Err(st.err(
            d.span(),
            format!(
                "unknown decision `{}` (expected allow, audit, deny, ask or redact)",
                d.get_ref()
            ),
        )),
    }
}

pub(crate) fn parse_duration(s: &str) -> Option<u32> {
    let s = s.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1u64)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1000)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60_000)
    } else {
        return None;
    };
    let n: u64 = num.trim().parse().ok()?;
    u32::try_from(n.checked_mul(mult)?).ok()
}

/// Validates glob syntax with placeholders replaced by a plain path, so `{workspace}` is not
/// taken for a one-alternative brace.
fn check_glob(st: &SourceText<'_>, g: &Spanned<String>, what: &str) -> Result<(), PolicyError> {
    let text = crate::compile::substitute_placeholders(
        g.get_ref(),
        &crate::compile::Placeholders::dummy(),
        true,
    );
    let err = |msg: String| st.err(g.span(), format!("invalid {what} `{}`: {msg}", g.get_ref()));
    glob::validate(&text).map_err(|(_, m)| err(m))?;
    glob::expand_braces(&text, crate::compile::BRACE_LIMIT).map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_ids_and_positions() {
        assert_eq!(parse_duration("120s"), Some(120_000));
        assert_eq!(parse_duration("250ms"), Some(250));
        assert_eq!(parse_duration("3m"), Some(180_000));
        assert_eq!(parse_duration("3h"), None);
        assert_eq!(parse_duration("s"), None);
        assert_eq!(parse_duration("99999999m"), None);
        assert!(valid_id("ssh-private-keys.v2_x"));
        assert!(!valid_id("-x") && !valid_id("") && !valid_id("A"));
        let st = SourceText::new(Path::new("f"), "ab\ncdé\n\nx");
        assert_eq!(st.line_col(0), (1, 1));
        assert_eq!(st.line_col(3), (2, 1));
        assert_eq!(st.line_col(7), (2, 4));
        assert_eq!(st.line_col(8), (3, 1));
        assert_eq!(st.line_col(9), (4, 1));
        assert_eq!(st.line_col(10), (4, 2));
        assert_eq!(st.line_col(1000), (4, 2));
        assert_eq!(normalize(Path::new("a/./b/../c")), PathBuf::from("a/c"));
    }
}
