//! Specialising a policy to a context (placeholders, `when.workspace`), laying out the ruleset
//! through `guard_proto::ruleset::writer`, and checking every example against the result.

use guard_proto::action::NoEnv;
use guard_proto::ruleset::format::SEC_SECRET_IMAGE;
use guard_proto::ruleset::writer::{
    RuleBody, RuleSpec, RulesetSpec, SecretSpec, WhenSpec, with_section, write,
};
use guard_proto::ruleset::{RegexCache, Ruleset, glob};
use guard_proto::{Context, FileAccess};

use crate::action::{OwnedAction, parse_connect_target, parse_http_example, shell_split};
use crate::{
    CompileContext, DEFAULT_SECRET_EXCLUDE, DEFAULT_SECRET_SCOPE, ExampleResult, Kind, Policy,
    PolicyError, RuleDef, SecretDef,
};

/// Most globs one pattern may expand to through braces.
pub(crate) const BRACE_LIMIT: usize = 1024;

/// The values substituted for placeholders; empty means unset.
pub(crate) struct Placeholders {
    pub home: String,
    pub workspace: String,
    pub state_dir: String,
    pub policy_dir: String,
    pub guard_lib: String,
    pub guard_exe: String,
}

impl Placeholders {
    pub fn dummy() -> Placeholders {
        let d = || "/p".to_string();
        Placeholders {
            home: d(),
            workspace: d(),
            state_dir: d(),
            policy_dir: d(),
            guard_lib: d(),
            guard_exe: d(),
        }
    }

    pub fn from_ctx(ctx: &CompileContext, policy: &Policy) -> Placeholders {
        // The embedded policy has no directory of its own: its source path (`policies/`) is
        // relative to nothing, and resolving it against the cwd would protect (and deny writes
        // to) whatever `policies/` folder the project has. Unset, it matches nothing.
        let policy_dir = if ctx.policy_dir.is_empty() && policy.embedded {
            String::new()
        } else if ctx.policy_dir.is_empty() {
            policy
                .top_dir
                .as_ref()
                .map(|d| {
                    std::path::absolute(d)
                        .unwrap_or_else(|_| d.clone())
                        .display()
                        .to_string()
                })
                .unwrap_or_default()
        } else {
            ctx.policy_dir.clone()
        };
        Placeholders {
            home: ctx.home.clone(),
            workspace: ctx.workspace.clone(),
            state_dir: ctx.state_dir.clone(),
            policy_dir,
            guard_lib: ctx.guard_lib.clone(),
            guard_exe: ctx.guard_exe.clone(),
        }
    }
}

/// An unset placeholder becomes a path no real file has, so rules that use it match nothing
/// (and their examples, expanded the same way, stay consistent). Set values are normalised:
/// repeated slashes collapse and a trailing slash goes, so `/root/` is `/root` and `/` stays `/`.
fn value_or_sentinel(v: &str, name: &str) -> String {
    if v.is_empty() {
        return format!("/nonexistent/.guard-unset-{name}");
    }
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        if c == '/' && out.ends_with('/') {
            continue;
        }
        out.push(c);
    }
    if out.len() > 1 && out.ends_with('/') {
        out.pop();
    }
    out
}

/// Appends a substituted value; when it is the root `/` and the text goes on with `/`, the
/// slash is written once (`~/.ssh` with HOME `/` is `/.ssh`, not `//.ssh`).
fn push_value(out: &mut String, value: &str, rest: &str) {
    if value == "/" && rest.starts_with('/') {
        return;
    }
    out.push_str(value);
}

/// Replaces a leading `~` and every `{placeholder}`. With `glob`, substituted values are
/// escaped so a home directory containing `[` or `*` matches only itself.
pub(crate) fn substitute_placeholders(s: &str, p: &Placeholders, as_glob: bool) -> String {
    let esc = |v: String| if as_glob { glob::escape(&v) } else { v };
    let mut out = String::with_capacity(s.len() + 32);
    let mut rest = s;
    if rest == "~" || rest.starts_with("~/") {
        rest = &rest[1..];
        push_value(&mut out, &esc(value_or_sentinel(&p.home, "home")), rest);
    }
    let names: [(&str, &str); 5] = [
        ("{workspace}", &p.workspace),
        ("{state_dir}", &p.state_dir),
        ("{policy_dir}", &p.policy_dir),
        ("{guard_lib}", &p.guard_lib),
        ("{guard_exe}", &p.guard_exe),
    ];
    while !rest.is_empty() {
        if let Some((tok, val)) = names.iter().find(|(t, _)| rest.starts_with(t)) {
            rest = &rest[tok.len()..];
            let v = esc(value_or_sentinel(val, &tok[1..tok.len() - 1]));
            // A value in the middle of a path (`/x{workspace}`) keeps its slash; only a value
            // that is all of `/` followed by `/` drops one.
            push_value(&mut out, &v, rest);
            continue;
        }
        let mut chars = rest.chars();
        if let Some(c) = chars.next() {
            out.push(c);
        }
        rest = chars.as_str();
    }
    out
}

fn expand(globs: &[String], p: &Placeholders) -> Vec<String> {
    let mut out = Vec::new();
    for g in globs {
        let s = substitute_placeholders(g, p, true);
        // Validated at load time; a failure here can only come from a substituted value, and
        // those are escaped, so fall back to the unexpanded text rather than dropping it.
        match glob::expand_braces(&s, BRACE_LIMIT) {
            Ok(v) => out.extend(v),
            Err(_) => out.push(s),
        }
    }
    out
}

fn rule_spec(r: &RuleDef, p: &Placeholders) -> RuleSpec {
    let body = match &r.kind {
        Kind::File { paths, access } => {
            let (mut inc, mut exc) = (Vec::new(), Vec::new());
            for g in paths {
                match g.v.strip_prefix('!') {
                    Some(x) => exc.push(x.to_string()),
                    None => inc.push(g.v.clone()),
                }
            }
            RuleBody::File {
                include: expand(&inc, p),
                exclude: expand(&exc, p),
                access: *access,
            }
        }
        Kind::Exec {
            command,
            any_arg,
            all_args,
        } => RuleBody::Exec {
            program: substitute_placeholders(&command[0], p, false),
            words: command[1..].to_vec(),
            any_arg: expand(any_arg, p),
            // Each entry is one requirement; its brace alternatives stay together.
            all_args: all_args
                .iter()
                .map(|a| expand(std::slice::from_ref(a), p))
                .collect(),
        },
        Kind::Connect { hosts, nets, ports } => RuleBody::Connect {
            hosts: expand(hosts, p),
            nets: nets.clone(),
            ports: ports.clone(),
        },
        Kind::Http {
            hosts,
            methods,
            paths,
            body_contains,
            body_regex,
            graphql,
            graphql_ops,
        } => RuleBody::Http {
            hosts: expand(hosts, p),
            methods: methods.clone(),
            paths: expand(paths, p),
            body_contains: body_contains.clone(),
            body_regex: body_regex.clone(),
            graphql: graphql.clone(),
            graphql_ops: *graphql_ops,
        },
    };
    let ws = expand(&r.when.workspace, p);
    let workspace = value_or_sentinel(&p.workspace, "workspace");
    let inactive = !ws.is_empty()
        && !ws
            .iter()
            .any(|g| glob::glob_match(g.as_bytes(), workspace.as_bytes(), true, false));
    RuleSpec {
        id: r.id.clone(),
        reason: r.reason.clone(),
        tags: r.tags.clone(),
        source: r.file.display().to_string(),
        line: r.line as u32,
        decision: r.decision,
        inactive,
        when: WhenSpec {
            env: r.when.env.clone(),
            cwd: expand(&r.when.cwd, p),
            agent: expand(&r.when.agent, p),
        },
        body,
    }
}

fn scope_list(set: &Option<Vec<String>>, default: &[&str]) -> Vec<String> {
    match set {
        Some(v) => v.clone(),
        None => default.iter().map(|g| g.to_string()).collect(),
    }
}

/// The guard-secrets detector a `[[secret]]` stands for (what libguard builds from the
/// ruleset's `secret(i)` and `secret_keywords(i)`).
pub(crate) fn secret_spec(s: &SecretDef) -> guard_secrets::SecretSpec {
    guard_secrets::SecretSpec {
        id: s.id.clone(),
        regex: s.regex.clone(),
        keywords: s.keywords.clone(),
        decision: s.decision,
        min_entropy: s.entropy,
    }
}

pub(crate) fn build_spec(policy: &Policy, ctx: &CompileContext) -> RulesetSpec {
    let p = Placeholders::from_ctx(ctx, policy);
    RulesetSpec {
        name: policy.name.clone(),
        default: policy.default,
        monitor: policy.monitor,
        ask_timeout_ms: policy.ask_timeout_ms,
        unguardable_exec: policy.unguardable_exec,
        rules: policy.rules.iter().map(|r| rule_spec(r, &p)).collect(),
        secrets: policy
            .secrets
            .iter()
            .map(|s| SecretSpec {
                id: s.id.clone(),
                regex: s.regex.clone(),
                keywords: s.keywords.clone(),
                decision: s.decision,
                source: s.file.display().to_string(),
                line: s.line as u32,
                min_entropy: s.entropy,
            })
            .collect(),
        env_strip: policy.env_strip.clone(),
        env_keep: policy.env_keep.clone(),
        value_options: policy.value_options.clone(),
        secret_scope: expand(&scope_list(&policy.secret_scope, DEFAULT_SECRET_SCOPE), &p),
        secret_exclude: expand(
            &scope_list(&policy.secret_exclude, DEFAULT_SECRET_EXCLUDE),
            &p,
        ),
    }
}

/// The actions one example stands for (a file example without an access prefix stands for
/// every access its rule lists).
fn example_actions(r: &RuleDef, text: &str, p: &Placeholders) -> Result<Vec<OwnedAction>, String> {
    match &r.kind {
        Kind::File { access, .. } => {
            let (only, path) = match text.split_once(' ') {
                Some((a, rest)) if FileAccess::parse(a).is_some() => {
                    (FileAccess::parse(a), rest.trim())
                }
                _ => (None, text.trim()),
            };
            let path = crate::action::absolute_path(
                &substitute_placeholders(path, p, false),
                &value_or_sentinel(&p.workspace, "workspace"),
            );
            let accesses: Vec<FileAccess> = match only {
                Some(a) => vec![a],
                None => [FileAccess::Read, FileAccess::Write, FileAccess::Delete]
                    .into_iter()
                    .filter(|a| access & a.bit() != 0)
                    .collect(),
            };
            Ok(accesses
                .into_iter()
                .map(|access| OwnedAction::File {
                    path: path.clone(),
                    access,
                })
                .collect())
        }
        Kind::Exec { .. } => {
            let words = shell_split(text)?;
            if words.is_empty() {
                return Err("empty command line".into());
            }
            let argv = words
                .iter()
                .map(|w| substitute_placeholders(w, p, false))
                .collect();
            Ok(vec![OwnedAction::Exec {
                argv,
                program: None,
            }])
        }
        Kind::Connect { .. } => Ok(vec![parse_connect_target(text.trim())?]),
        Kind::Http { .. } => Ok(vec![parse_http_example(text)?]),
    }
}

/// Runs every rule's and secret's examples against `ruleset` (compiled from `policy`).
pub fn run_examples(
    policy: &Policy,
    ruleset: &Ruleset<'_>,
    ctx: &CompileContext,
) -> Vec<ExampleResult> {
    let p = Placeholders::from_ctx(ctx, policy);
    let cache = RegexCache::new(ruleset);
    let cwd = value_or_sentinel(&p.workspace, "workspace");
    let env = NoEnv;
    let c = Context {
        env: &env,
        cwd: cwd.as_bytes(),
        agent: b"",
    };
    let mut out = Vec::new();
    let by_id: std::collections::HashMap<&str, u32> = (0..ruleset.rule_count())
        .filter_map(|i| ruleset.rule(i).map(|r| (r.id, i)))
        .collect();
    for r in &policy.rules {
        let index = by_id.get(r.id.as_str()).copied();
        for ex in &r.examples {
            let (got, error) = match (index, example_actions(r, &ex.text, &p)) {
                (None, _) => (false, Some("rule missing from the ruleset".to_string())),
                (_, Err(e)) => (false, Some(e)),
                (Some(i), Ok(actions)) => {
                    let hits: Vec<bool> = actions
                        .iter()
                        .map(|a| ruleset.rule_matches_example(i, &a.as_action(), &c, Some(&cache)))
                        .collect();
                    // match: every access matches; no_match: none does.
                    let got = if ex.expect_match {
                        hits.iter().all(|&h| h)
                    } else {
                        hits.iter().any(|&h| h)
                    };
                    (got, None)
                }
            };
            out.push(ExampleResult {
                rule: r.id.clone(),
                kind: r.kind.name(),
                example: ex.text.clone(),
                expect_match: ex.expect_match,
                matched: got,
                pass: error.is_none() && got == ex.expect_match,
                error,
                file: r.file.clone(),
                line: ex.line,
                col: ex.col,
                rule_line: r.line,
            });
        }
    }
    for s in &policy.secrets {
        // Exactly libguard's matching (keyword prefilter, `secret` group, entropy floor), with
        // the placeholder allowlist off: examples are placeholders by design.
        let detectors = guard_secrets::Detectors::from_specs(&[secret_spec(s)]).map(|mut d| {
            d.set_allowlist(guard_secrets::Allowlist::none());
            d
        });
        for ex in &s.examples {
            let (got, error) = match &detectors {
                Ok(d) => (!d.scan(ex.text.as_bytes()).is_empty(), None),
                Err(e) => (false, Some(e.to_string())),
            };
            out.push(ExampleResult {
                rule: s.id.clone(),
                kind: "secret",
                example: ex.text.clone(),
                expect_match: ex.expect_match,
                matched: got,
                pass: error.is_none() && got == ex.expect_match,
                error,
                file: s.file.clone(),
                line: ex.line,
                col: ex.col,
                rule_line: s.line,
            });
        }
    }
    out
}

/// Writes the ruleset for `ctx` and makes sure it loads.
pub(crate) fn compile_for(policy: &Policy, ctx: &CompileContext) -> Result<Vec<u8>, PolicyError> {
    let bytes = write_with_image(&build_spec(policy, ctx));
    load_check(policy, &bytes)?;
    Ok(bytes)
}

/// The ruleset with its secret detector image: the set libguard would build from this ruleset
/// at a process's first scanned read (`Detectors::from_ruleset`), precompiled once here so that
/// processes map it instead (`Detectors::for_ruleset`). Without the image (should the ruleset
/// not load here) libguard builds the set itself.
pub(crate) fn write_with_image(spec: &RulesetSpec) -> Vec<u8> {
    let bytes = write(spec);
    let image = match Ruleset::load(&bytes) {
        Ok(rs) => guard_secrets::Detectors::from_ruleset(&rs).to_image(),
        Err(_) => return bytes,
    };
    with_section(&bytes, SEC_SECRET_IMAGE, &image).unwrap_or(bytes)
}

fn load_check(policy: &Policy, bytes: &[u8]) -> Result<(), PolicyError> {
    Ruleset::load(bytes).map(|_| ()).map_err(|e| PolicyError {
        file: policy.files.first().cloned().unwrap_or_default(),
        line: 1,
        col: 1,
        message: format!("internal error: the compiled ruleset does not load: {e}"),
    })
}
/// Checks every example in the canonical context.
pub(crate) fn check_examples(policy: &Policy) -> Result<(), PolicyError> {
    let ctx = CompileContext::canonical();
    let bytes = write(&build_spec(policy, &ctx));
    let rs = Ruleset::load(&bytes).map_err(|e| PolicyError {
        file: policy.files.first().cloned().unwrap_or_default(),
        line: 1,
        col: 1,
        message: format!("internal error: the compiled ruleset does not load: {e}"),
    })?;
    if let Some(f) = run_examples(policy, &rs, &ctx)
        .into_iter()
        .find(|r| !r.pass)
    {
        let what = if f.kind == "secret" { "secret" } else { "rule" };
        let message = match &f.error {
            Some(e) => format!(
                "{what} `{}` ({}:{}): example `{}` cannot be read: {e}",
                f.rule,
                f.file.display(),
                f.rule_line,
                f.example
            ),
            None => format!(
                "{what} `{}` ({}:{}): example `{}` should {} but {}",
                f.rule,
                f.file.display(),
                f.rule_line,
                f.example,
                if f.expect_match { "match" } else { "not match" },
                if f.expect_match { "does not" } else { "does" },
            ),
        };
        return Err(PolicyError {
            file: f.file,
            line: f.line,
            col: f.col,
            message,
        });
    }
    Ok(())
}
