//! `guardctl policy compile|check|test|explain`: the policy tools.
//!
//! Every subcommand works on the policy given with `--policy` (several files are merged) or, with
//! none, on the default policy embedded in `guard-policy`. Exit codes: 0 success, 1 a check or
//! test failed, 2 bad input (malformed policy, unreadable file, bad action syntax). Policy errors
//! are printed as `file:line:col: problem` so editors can jump to them.
//!
//! `explain` and the test cases share one action parser ([`ParsedAction`]), so a case in
//! `policies/tests/*.toml` means exactly what the same words mean on the command line.

use clap::{Args, Subcommand};
use guard_policy::{CompileContext, ExampleResult, Policy, PolicyError};
use guard_proto::action::{Action, Argv, Context, EnvLookup, FileAccess};
use guard_proto::decision::Decision;
use guard_proto::ruleset::{RuleInfo, RuleKind, Ruleset};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The decision table of the embedded default policy, run by `policy test` without `--policy`.
const DEFAULT_TESTS: &[(&str, &str)] = &[(
    "policies/tests/default.toml",
    include_str!("../../policies/tests/default.toml"),
)];

#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Compile policy files into a binary ruleset (written atomically).
    Compile(CompileArgs),
    /// Validate a policy (including every rule's examples) and print rule counts per kind.
    Check(CheckArgs),
    /// Run every rule's examples and the test cases; ends with `N passed, M failed`.
    Test(TestArgs),
    /// Evaluate one action without running it and show which rules decide it.
    Explain(ExplainArgs),
}

#[derive(Args)]
pub struct PolicyFiles {
    /// Top-level policy file; repeat to merge several. Default: the embedded default policy.
    #[arg(long = "policy", value_name = "FILE")]
    pub policy: Vec<PathBuf>,
}

#[derive(Args)]
pub struct ContextArgs {
    /// HOME that `~` expands to (default: $HOME).
    #[arg(long, value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// The launch directory, `{workspace}` (default: the current directory).
    #[arg(long, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
}

#[derive(Args)]
pub struct CompileArgs {
    #[command(flatten)]
    pub files: PolicyFiles,
    #[command(flatten)]
    pub ctx: ContextArgs,
    /// Where to write the ruleset (default: `ruleset.bin` in the guard's state directory).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Policy files, same as `--policy`.
    #[arg(value_name = "SRC")]
    pub sources: Vec<PathBuf>,
}

#[derive(Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub files: PolicyFiles,
    #[command(flatten)]
    pub ctx: ContextArgs,
}

#[derive(Args)]
pub struct TestArgs {
    #[command(flatten)]
    pub files: PolicyFiles,
    /// Directory of `*.toml` test files (default: `tests/` next to the first policy file, or the
    /// embedded tests of the default policy).
    #[arg(long, value_name = "DIR")]
    pub tests: Option<PathBuf>,
}

#[derive(Args)]
pub struct ExplainArgs {
    #[command(flatten)]
    pub files: PolicyFiles,
    #[command(flatten)]
    pub ctx: ContextArgs,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Current directory of the acting process (default: the current directory).
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// Environment variable of the acting process, for `when = { env = ... }`.
    #[arg(long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// Agent name, for `when = { agent = ... }`.
    #[arg(long, value_name = "NAME", default_value = "")]
    pub agent: String,
    /// `read PATH` | `write PATH` | `delete PATH` | `exec -- ARGV...` | `connect HOST:PORT` |
    /// `http METHOD URL [--body-file F | --body TEXT]`
    #[arg(
        value_name = "ACTION",
        required = true,
        num_args = 1..,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub action: Vec<String>,
}

/// Why a subcommand stopped: bad input (exit 2) or a failed check (exit 1).
enum Failure {
    Bad(String),
    Failed(String),
}

impl From<PolicyError> for Failure {
    fn from(e: PolicyError) -> Failure {
        Failure::Bad(format_policy_error(&e))
    }
}

/// `file:line:col: problem`; the embedded policy has no file on disk, so name it.
fn format_policy_error(e: &PolicyError) -> String {
    if e.file.as_os_str().is_empty() {
        format!("<default policy>:{}:{}: {}", e.line, e.col, e.message)
    } else {
        e.to_string()
    }
}

pub fn run(cmd: PolicyCommand) -> ExitCode {
    let result = match cmd {
        PolicyCommand::Compile(a) => compile(a),
        PolicyCommand::Check(a) => check(a),
        PolicyCommand::Test(a) => test(a),
        PolicyCommand::Explain(a) => explain(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Failed(msg)) => {
            if !msg.is_empty() {
                eprintln!("{msg}");
            }
            ExitCode::from(1)
        }
        Err(Failure::Bad(msg)) => {
            eprintln!("{msg}");
            ExitCode::from(2)
        }
    }
}

// ---- loading and compiling ---------------------------------------------------------------------

fn load_policy(files: &[PathBuf]) -> Result<Policy, Failure> {
    if files.is_empty() {
        return Ok(Policy::default_policy()?);
    }
    for f in files {
        // Policy::load reports these too, but a plain "no such file" names the path reliably.
        if !f.is_file() {
            return Err(Failure::Bad(format!(
                "{}:1:1: cannot read policy file: {}",
                f.display(),
                if f.exists() {
                    "not a regular file"
                } else {
                    "no such file"
                }
            )));
        }
    }
    Ok(Policy::load(files)?)
}

fn absolute(p: &Path, base: &Path) -> PathBuf {
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    };
    PathBuf::from(normalize_path(&joined.to_string_lossy()))
}

fn current_dir() -> PathBuf {
    std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"))
}

fn env_home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// The guard's state directory, as the launcher computes it (`GUARD_STATE_DIR` first).
fn state_dir(home: &Path) -> PathBuf {
    if let Some(d) = std::env::var_os("GUARD_STATE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("guard");
    }
    home.join(".local/state/guard")
}

/// Where an installed policy lives when none is named: `$XDG_CONFIG_HOME/guard`.
fn default_policy_dir(home: &Path) -> PathBuf {
    match std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d).join("guard"),
        None => home.join(".config/guard"),
    }
}

fn self_exe() -> PathBuf {
    std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .unwrap_or_else(|_| PathBuf::from("guardctl"))
}

/// The library the launcher injects: installed next to `guardctl`.
fn guard_lib(exe: &Path) -> PathBuf {
    let lib = exe
        .parent()
        .map(|d| d.join("libguard.so"))
        .unwrap_or_else(|| PathBuf::from("libguard.so"));
    lib.canonicalize().unwrap_or(lib)
}

fn compile_context(files: &[PathBuf], ctx: &ContextArgs) -> CompileContext {
    let cwd = current_dir();
    let home = ctx
        .home
        .as_deref()
        .map(|h| absolute(h, &cwd))
        .unwrap_or_else(env_home);
    let workspace = ctx
        .workspace
        .as_deref()
        .map(|w| absolute(w, &cwd))
        .unwrap_or_else(|| cwd.clone());
    let policy_dir = match files.first() {
        Some(f) => {
            let abs = f.canonicalize().unwrap_or_else(|_| absolute(f, &cwd));
            abs.parent().map(Path::to_path_buf).unwrap_or(abs)
        }
        None => default_policy_dir(&home),
    };
    let exe = self_exe();
    CompileContext {
        home: path_string(&home),
        workspace: path_string(&workspace),
        state_dir: path_string(&state_dir(&home)),
        policy_dir: path_string(&policy_dir),
        guard_lib: path_string(&guard_lib(&exe)),
        guard_exe: path_string(&exe),
    }
}

fn path_string(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Ruleset bytes in an 8-byte aligned buffer: `Ruleset::load` refuses misaligned input, and a
/// `Vec<u8>` carries no alignment guarantee.
struct AlignedBytes {
    words: Vec<u64>,
    len: usize,
}

impl AlignedBytes {
    fn new(bytes: &[u8]) -> AlignedBytes {
        let mut words = vec![0u64; bytes.len().div_ceil(8)];
        for (i, chunk) in bytes.chunks(8).enumerate() {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            words[i] = u64::from_ne_bytes(w);
        }
        AlignedBytes {
            words,
            len: bytes.len(),
        }
    }

    fn as_bytes(&self) -> &[u8] {
        // SAFETY: the Vec<u64> owns at least `len` initialised bytes, u8 has no alignment or
        // validity requirements, and the slice borrows `self` so it cannot outlive the buffer.
        unsafe { std::slice::from_raw_parts(self.words.as_ptr().cast::<u8>(), self.len) }
    }
}

fn compile_ruleset(policy: &Policy, ctx: &CompileContext) -> Result<AlignedBytes, Failure> {
    let bytes = policy.compile(ctx)?;
    let aligned = AlignedBytes::new(&bytes);
    if let Err(e) = Ruleset::load(aligned.as_bytes()) {
        // The compiler wrote something its own reader refuses: a bug, not bad input.
        return Err(Failure::Bad(format!(
            "internal error: compiled ruleset does not load: {e}"
        )));
    }
    Ok(aligned)
}

fn load_ruleset(bytes: &AlignedBytes) -> Result<Ruleset<'_>, Failure> {
    Ruleset::load(bytes.as_bytes())
        .map_err(|e| Failure::Bad(format!("internal error: ruleset does not load: {e}")))
}

// ---- compile -----------------------------------------------------------------------------------

fn compile(args: CompileArgs) -> Result<(), Failure> {
    let mut files = args.files.policy.clone();
    files.extend(args.sources.iter().cloned());
    let policy = load_policy(&files)?;
    let ctx = compile_context(&files, &args.ctx);
    let ruleset = compile_ruleset(&policy, &ctx)?;
    let out = match args.output {
        Some(o) => o,
        None => PathBuf::from(&ctx.state_dir).join("ruleset.bin"),
    };
    write_atomically(&out, ruleset.as_bytes())
        .map_err(|e| Failure::Bad(format!("{}: cannot write ruleset: {e}", out.display())))?;
    let rs = load_ruleset(&ruleset)?;
    eprintln!(
        "wrote {} ({} rules, {} bytes)",
        out.display(),
        rs.rule_count(),
        ruleset.as_bytes().len()
    );
    Ok(())
}

/// Writes via a temporary file in the same directory and a rename, so a process mapping the
/// ruleset never sees a half-written file.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "ruleset".into());
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

// ---- check -------------------------------------------------------------------------------------

fn kind_name(kind: RuleKind) -> &'static str {
    match kind {
        RuleKind::File => "file",
        RuleKind::Exec => "exec",
        RuleKind::Connect => "connect",
        RuleKind::Http => "http",
    }
}

fn check(args: CheckArgs) -> Result<(), Failure> {
    let policy = load_policy(&args.files.policy)?;
    let ctx = compile_context(&args.files.policy, &args.ctx);
    let failures = example_failures(&policy, &ctx)?;
    if !failures.is_empty() {
        for f in &failures {
            eprintln!("{f}");
        }
        return Err(Failure::Failed(format!(
            "{} rule example(s) failed",
            failures.len()
        )));
    }
    let bytes = compile_ruleset(&policy, &ctx)?;
    let rs = load_ruleset(&bytes)?;
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for i in 0..rs.rule_count() {
        if let Some(info) = rs.rule(i) {
            *counts.entry(kind_name(info.kind)).or_default() += 1;
        }
    }
    let name = if rs.policy_name().is_empty() {
        "(unnamed)"
    } else {
        rs.policy_name()
    };
    println!("policy {name}: ok");
    for kind in ["file", "exec", "connect", "http"] {
        println!("{kind:<8} {}", counts.get(kind).copied().unwrap_or(0));
    }
    println!("{:<8} {}", "secret", rs.secret_count());
    println!("{:<8} {}", "total", rs.rule_count());
    Ok(())
}

// ---- rule examples -----------------------------------------------------------------------------

/// One line per failing rule or secret example, `file:line:col: ...` so editors can jump to it.
fn describe_example(r: &ExampleResult) -> String {
    let want = if r.expect_match { "match" } else { "not match" };
    let why = match &r.error {
        Some(e) => format!("cannot be evaluated: {e}"),
        None => format!("should {want} but {}", if r.matched { "does" } else { "does not" }),
    };
    format!(
        "{}:{}:{}: {} `{}` example `{}` {why}",
        r.file.display(),
        r.line,
        r.col,
        if r.kind == "secret" { "secret" } else { "rule" },
        r.rule,
        r.example
    )
}

/// Runs every rule and secret example of `policy` under `ctx` (without failing on the first,
/// as `compile` does).
fn run_examples(policy: &Policy, ctx: &CompileContext) -> Result<Vec<ExampleResult>, Failure> {
    let bytes = AlignedBytes::new(&policy.compile_unchecked(ctx));
    let rs = load_ruleset(&bytes)?;
    Ok(policy.run_examples(&rs, ctx))
}

fn example_failures(policy: &Policy, ctx: &CompileContext) -> Result<Vec<String>, Failure> {
    Ok(run_examples(policy, ctx)?
        .iter()
        .filter(|r| !r.pass)
        .map(describe_example)
        .collect())
}

// ---- test --------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    #[serde(default)]
    context: TestContext,
    #[serde(default, rename = "case")]
    cases: Vec<TestCase>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestContext {
    home: Option<String>,
    workspace: Option<String>,
    state_dir: Option<String>,
    policy_dir: Option<String>,
    guard_lib: Option<String>,
    guard_exe: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestCase {
    action: String,
    expect: String,
    rule: Option<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    cwd: Option<String>,
    #[serde(default)]
    agent: String,
}

impl TestContext {
    /// Fixed stand-ins for what a test file leaves out, so results never depend on the machine.
    fn to_compile_context(&self) -> CompileContext {
        let home = self.home.clone().unwrap_or_else(|| "/home/agent".into());
        let workspace = self
            .workspace
            .clone()
            .unwrap_or_else(|| format!("{home}/project"));
        CompileContext {
            state_dir: self
                .state_dir
                .clone()
                .unwrap_or_else(|| format!("{home}/.local/state/guard")),
            policy_dir: self
                .policy_dir
                .clone()
                .unwrap_or_else(|| format!("{home}/.config/guard")),
            guard_lib: self
                .guard_lib
                .clone()
                .unwrap_or_else(|| "/usr/local/lib/libguard.so".into()),
            guard_exe: self
                .guard_exe
                .clone()
                .unwrap_or_else(|| "/usr/local/bin/guardctl".into()),
            home,
            workspace,
        }
    }
}

/// Line and column (1-based) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count() + 1)
        .unwrap_or(1);
    (line, col)
}

fn parse_test_file(name: &str, text: &str) -> Result<TestFile, Failure> {
    toml::from_str::<TestFile>(text).map_err(|e| {
        let (line, col) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
        Failure::Bad(format!("{name}:{line}:{col}: {}", e.message()))
    })
}

/// The test files to run: `(display name, contents)`.
fn test_sources(args: &TestArgs) -> Result<Vec<(String, String)>, Failure> {
    let dir = match (&args.tests, args.files.policy.first()) {
        (Some(d), _) => d.clone(),
        (None, Some(first)) => {
            let parent = first.parent().unwrap_or(Path::new("."));
            let parent = if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            };
            let d = parent.join("tests");
            if !d.is_dir() {
                return Ok(Vec::new());
            }
            d
        }
        (None, None) => {
            return Ok(DEFAULT_TESTS
                .iter()
                .map(|(n, t)| (n.to_string(), t.to_string()))
                .collect());
        }
    };
    let entries = std::fs::read_dir(&dir)
        .map_err(|e| Failure::Bad(format!("{}: cannot read tests: {e}", dir.display())))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
        .collect();
    paths.sort();
    let mut out = Vec::new();
    for p in paths {
        let text = std::fs::read_to_string(&p)
            .map_err(|e| Failure::Bad(format!("{}:1:1: cannot read: {e}", p.display())))?;
        out.push((p.display().to_string(), text));
    }
    Ok(out)
}

fn test(args: TestArgs) -> Result<(), Failure> {
    let policy = load_policy(&args.files.policy)?;
    let sources = test_sources(&args)?;
    // Examples run under the context of the first test file (or fixed stand-ins), so results
    // do not depend on the machine's HOME.
    let example_ctx = sources
        .first()
        .and_then(|(n, t)| parse_test_file(n, t).ok())
        .map(|f| f.context.to_compile_context())
        .unwrap_or_else(|| TestContext::default().to_compile_context());
    let mut passed = 0usize;
    let mut failed = 0usize;
    for r in run_examples(&policy, &example_ctx)? {
        if r.pass {
            passed += 1;
        } else {
            failed += 1;
            println!("FAIL {}", describe_example(&r));
        }
    }
    for (name, text) in &sources {
        let file = parse_test_file(name, text)?;
        let ctx = file.context.to_compile_context();
        // Unchecked: failing examples were reported above; the cases still run.
        let bytes = AlignedBytes::new(&policy.compile_unchecked(&ctx));
        let rs = load_ruleset(&bytes)?;
        for (i, case) in file.cases.iter().enumerate() {
            match run_case(&rs, &ctx, case) {
                Ok(()) => passed += 1,
                Err(why) => {
                    failed += 1;
                    println!("FAIL {name} case {} `{}`: {why}", i + 1, case.action);
                }
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        Err(Failure::Failed(String::new()))
    } else {
        Ok(())
    }
}

fn run_case(rs: &Ruleset<'_>, ctx: &CompileContext, case: &TestCase) -> Result<(), String> {
    let expect = Decision::parse(&case.expect)
        .ok_or_else(|| format!("expect = {:?} is not a decision", case.expect))?;
    let words = split_words(&case.action)?;
    let cwd = case.cwd.clone().unwrap_or_else(|| ctx.workspace.clone());
    let env: Vec<(String, String)> = case
        .env
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let action = ParsedAction::parse(&words, Path::new(&cwd), Path::new(&ctx.home), &env)?;
    let outcome = evaluate(rs, &action, &cwd, &case.agent, &env);
    let got_rule = outcome.rule.map(|r| r.id);
    let mut problems = Vec::new();
    if outcome.decision != expect {
        problems.push(format!(
            "expected {expect}, got {} (rule {})",
            outcome.decision,
            got_rule.unwrap_or("none")
        ));
    }
    if let Some(want) = &case.rule
        && got_rule != Some(want.as_str())
    {
        problems.push(format!(
            "expected rule {want}, got {}",
            got_rule.unwrap_or("none")
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

// ---- explain -----------------------------------------------------------------------------------

fn explain(args: ExplainArgs) -> Result<(), Failure> {
    let mut env = Vec::new();
    for kv in &args.env {
        match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => env.push((k.to_string(), v.to_string())),
            _ => return Err(Failure::Bad(format!("--env {kv:?}: expected K=V"))),
        }
    }
    let ctx = compile_context(&args.files.policy, &args.ctx);
    let here = current_dir();
    let cwd = args
        .cwd
        .as_deref()
        .map(|c| absolute(c, &here))
        .unwrap_or_else(|| here.clone());
    // Bad action syntax is reported before the (slower) policy compilation.
    let action = ParsedAction::parse(&args.action, &cwd, Path::new(&ctx.home), &env)
        .map_err(|e| Failure::Bad(format!("explain: {e}")))?;
    let policy = load_policy(&args.files.policy)?;
    let bytes = compile_ruleset(&policy, &ctx)?;
    let rs = load_ruleset(&bytes)?;
    let cwd_s = path_string(&cwd);
    let outcome = evaluate(&rs, &action, &cwd_s, &args.agent, &env);
    if args.json {
        println!("{}", explain_json(&rs, &action, &outcome));
    } else {
        print!("{}", explain_text(&rs, &action, &outcome));
    }
    Ok(())
}

/// The result of evaluating one action: the verdict plus every matching rule, in rule order.
struct Outcome<'a> {
    decision: Decision,
    rule: Option<RuleInfo<'a>>,
    matched: Vec<RuleInfo<'a>>,
}

fn evaluate<'a>(
    rs: &Ruleset<'a>,
    action: &ParsedAction,
    cwd: &str,
    agent: &str,
    env: &[(String, String)],
) -> Outcome<'a> {
    let env_list = EnvList(env);
    let context = Context {
        env: &env_list,
        cwd: cwd.as_bytes(),
        agent: agent.as_bytes(),
    };
    action.with_action(|a| {
        let verdict = rs.evaluate(a, &context);
        let mut matched = Vec::new();
        rs.for_each_match(a, &context, &mut |i| {
            if let Some(info) = rs.rule(i) {
                matched.push(info);
            }
        });
        Outcome {
            decision: verdict.decision,
            rule: verdict.rule.and_then(|i| rs.rule(i)),
            matched,
        }
    })
}

fn split_tags(tags: &str) -> Vec<&str> {
    tags.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect()
}

fn explain_json(rs: &Ruleset<'_>, action: &ParsedAction, o: &Outcome<'_>) -> String {
    let matches: Vec<serde_json::Value> = o
        .matched
        .iter()
        .map(|r| {
            serde_json::json!({
                "id": r.id,
                "kind": kind_name(r.kind),
                "decision": r.decision.as_str(),
                "reason": r.reason,
            })
        })
        .collect();
    let value = serde_json::json!({
        "decision": o.decision.as_str(),
        "rule": o.rule.map(|r| r.id),
        "reason": o.rule.map(|r| r.reason),
        "tags": o.rule.map(|r| split_tags(r.tags)).unwrap_or_default(),
        "matched": o.matched.iter().map(|r| r.id).collect::<Vec<_>>(),
        "matches": matches,
        "action": action.kind(),
        "target": action.target(),
        "policy": rs.policy_name(),
        "default": rs.default_decision().as_str(),
    });
    value.to_string()
}

fn explain_text(rs: &Ruleset<'_>, action: &ParsedAction, o: &Outcome<'_>) -> String {
    let mut s = String::new();
    s.push_str(&format!("decision: {}\n", o.decision));
    s.push_str(&format!(
        "action:   {} {}\n",
        action.kind(),
        action.target()
    ));
    match o.rule {
        Some(r) => {
            s.push_str(&format!("rule:     {} ({})\n", r.id, kind_name(r.kind)));
            s.push_str(&format!("reason:   {}\n", r.reason));
            let tags = split_tags(r.tags);
            if !tags.is_empty() {
                s.push_str(&format!("tags:     {}\n", tags.join(", ")));
            }
        }
        None => s.push_str(&format!(
            "rule:     none (policy {:?} default: {})\n",
            rs.policy_name(),
            rs.default_decision()
        )),
    }
    let others: Vec<&RuleInfo<'_>> = o
        .matched
        .iter()
        .filter(|r| o.rule.is_none_or(|w| w.id != r.id))
        .collect();
    if !others.is_empty() {
        s.push_str("also matched:\n");
        for r in others {
            s.push_str(&format!("  {} ({}): {}\n", r.id, r.decision, r.reason));
        }
    }
    s
}

// ---- actions -----------------------------------------------------------------------------------

/// An action in owned form, parsed from `explain` words or a test case.
#[derive(Debug)]
enum ParsedAction {
    File {
        path: String,
        access: FileAccess,
    },
    Exec {
        argv: Vec<String>,
        program: Option<String>,
    },
    Connect {
        host: Option<String>,
        ip: Option<IpAddr>,
        port: u16,
    },
    Http {
        method: String,
        host: String,
        path: String,
        url: String,
        body: Vec<u8>,
    },
}

impl ParsedAction {
    /// Parses `read PATH`, `write PATH`, `delete PATH`, `exec [--] ARGV...`, `connect HOST:PORT`
    /// or `http METHOD URL [--body-file F | --body TEXT]`. Relative paths are taken from `cwd`,
    /// a leading `~` from `home` (as a shell would have expanded them).
    fn parse(
        words: &[String],
        cwd: &Path,
        home: &Path,
        env: &[(String, String)],
    ) -> Result<ParsedAction, String> {
        let Some((verb, rest)) = words.split_first() else {
            return Err("missing ACTION (read|write|delete|exec|connect|http ...)".into());
        };
        match verb.as_str() {
            "read" | "write" | "delete" => {
                let access = FileAccess::parse(verb).ok_or("bad access")?;
                let [path] = rest else {
                    return Err(format!("`{verb}` takes exactly one PATH"));
                };
                let expanded = expand_tilde(path, home);
                Ok(ParsedAction::File {
                    path: path_string(&absolute(Path::new(&expanded), cwd)),
                    access,
                })
            }
            "exec" => {
                let argv: Vec<String> = match rest.first() {
                    Some(first) if first == "--" => rest[1..].to_vec(),
                    _ => rest.to_vec(),
                };
                let argv: Vec<String> = argv.iter().map(|a| expand_tilde(a, home)).collect();
                if argv.is_empty() {
                    return Err("`exec` needs a command: exec -- ARGV...".into());
                }
                let program = resolve_program(&argv, cwd, env);
                Ok(ParsedAction::Exec { argv, program })
            }
            "connect" => {
                let [target] = rest else {
                    return Err("`connect` takes exactly one HOST:PORT".into());
                };
                parse_connect(target)
            }
            "http" => parse_http(rest),
            other => Err(format!(
                "unknown action {other:?} (expected read, write, delete, exec, connect or http)"
            )),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            ParsedAction::File { access, .. } => access.as_str(),
            ParsedAction::Exec { .. } => "exec",
            ParsedAction::Connect { .. } => "connect",
            ParsedAction::Http { .. } => "http",
        }
    }

    /// What the action is applied to, as audit events name it.
    fn target(&self) -> String {
        match self {
            ParsedAction::File { path, .. } => path.clone(),
            ParsedAction::Exec { argv, .. } => join_words(argv),
            ParsedAction::Connect { host, ip, port } => {
                let h = match (host, ip) {
                    (Some(h), _) => h.clone(),
                    (None, Some(IpAddr::V6(v6))) => format!("[{v6}]"),
                    (None, Some(ip)) => ip.to_string(),
                    (None, None) => String::new(),
                };
                format!("{h}:{port}")
            }
            ParsedAction::Http { method, url, .. } => format!("{method} {url}"),
        }
    }

    fn with_action<R>(&self, f: impl FnOnce(&Action<'_>) -> R) -> R {
        match self {
            ParsedAction::File { path, access } => f(&Action::File {
                path: path.as_bytes(),
                access: *access,
            }),
            ParsedAction::Exec { argv, program } => {
                let args = ArgList(argv);
                f(&Action::Exec {
                    argv: &args,
                    program: program.as_deref().map(str::as_bytes),
                })
            }
            ParsedAction::Connect { host, ip, port } => f(&Action::Connect {
                host: host.as_deref().map(str::as_bytes),
                ip: *ip,
                port: *port,
            }),
            ParsedAction::Http {
                method,
                host,
                path,
                body,
                ..
            } => f(&Action::Http {
                method: method.as_bytes(),
                host: host.as_bytes(),
                path: path.as_bytes(),
                body,
            }),
        }
    }
}

/// Owned argv seen through the evaluator's borrowed `Argv` view.
struct ArgList<'a>(&'a [String]);

impl Argv for ArgList<'_> {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn arg(&self, i: usize) -> &[u8] {
        self.0.get(i).map(|a| a.as_bytes()).unwrap_or(b"")
    }
}

/// `--env K=V` pairs as the evaluator's `EnvLookup`; the last assignment of a name wins.
struct EnvList<'a>(&'a [(String, String)]);

impl EnvLookup for EnvList<'_> {
    fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k.as_bytes() == key)
            .map(|(_, v)| v.as_bytes())
    }
}

fn expand_tilde(word: &str, home: &Path) -> String {
    let home = home.to_string_lossy();
    if word == "~" {
        home.into_owned()
    } else if let Some(rest) = word.strip_prefix("~/") {
        format!("{}/{rest}", home.trim_end_matches('/'))
    } else {
        word.to_string()
    }
}

/// The executable the kernel would run: a path as given (made absolute), or the first match
/// on `PATH` (from `--env PATH=...` if given). `None` when not found: rules then match on the
/// basename of `argv[0]`.
fn resolve_program(argv: &[String], cwd: &Path, env: &[(String, String)]) -> Option<String> {
    // Leading VAR=x words are assignments seen through by the evaluator, not the program.
    let first = argv.iter().find(|w| !is_assignment(w))?;
    if first.contains('/') {
        return Some(path_string(&absolute(Path::new(first), cwd)));
    }
    let path_var = env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .or_else(|| std::env::var("PATH").ok())?;
    path_var
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(first))
        .find(|p| p.is_file())
        .map(|p| path_string(&absolute(&p, cwd)))
}

fn is_assignment(word: &str) -> bool {
    match word.split_once('=') {
        Some((name, _)) => {
            !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        }
        None => false,
    }
}

fn parse_port(s: &str, what: &str) -> Result<u16, String> {
    s.parse::<u16>()
        .map_err(|_| format!("{what}: bad port {s:?}"))
}

fn normalize_host(h: &str) -> String {
    h.trim_end_matches('.').to_ascii_lowercase()
}

fn parse_connect(target: &str) -> Result<ParsedAction, String> {
    let (host, port) = if let Some(rest) = target.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("{target:?}: missing `]`"))?;
        let port = after
            .strip_prefix(':')
            .ok_or_else(|| format!("{target:?}: expected [IPV6]:PORT"))?;
        (h, port)
    } else {
        target
            .rsplit_once(':')
            .ok_or_else(|| format!("{target:?}: expected HOST:PORT"))?
    };
    if host.is_empty() {
        return Err(format!("{target:?}: empty host"));
    }
    let port = parse_port(port, target)?;
    match host.parse::<IpAddr>() {
        Ok(ip) => Ok(ParsedAction::Connect {
            host: None,
            ip: Some(ip),
            port,
        }),
        Err(_) => Ok(ParsedAction::Connect {
            host: Some(normalize_host(host)),
            ip: None,
            port,
        }),
    }
}

fn parse_http(rest: &[String]) -> Result<ParsedAction, String> {
    let (method, url, opts) = match rest {
        [m, u, opts @ ..] => (m, u, opts),
        _ => return Err("`http` takes METHOD URL [--body-file F | --body TEXT]".into()),
    };
    let mut body: Option<Vec<u8>> = None;
    let mut i = 0;
    while i < opts.len() {
        let (flag, inline) = match opts[i].split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (opts[i].as_str(), None),
        };
        let value = match inline {
            Some(v) => v,
            None => {
                i += 1;
                opts.get(i)
                    .cloned()
                    .ok_or_else(|| format!("{flag} needs a value"))?
            }
        };
        if body.is_some() {
            return Err("give one body: --body-file F or --body TEXT".into());
        }
        body = Some(match flag {
            "--body" => value.into_bytes(),
            "--body-file" => std::fs::read(&value).map_err(|e| format!("{value}: {e}"))?,
            other => return Err(format!("unknown http option {other:?}")),
        });
        i += 1;
    }
    let (scheme, after) = url
        .split_once("://")
        .ok_or_else(|| format!("{url:?}: expected http:// or https:// URL"))?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err(format!("{url:?}: expected http:// or https:// URL"));
    }
    let split = after.find(['/', '?', '#']).unwrap_or(after.len());
    let authority = &after[..split];
    let mut path = after[split..].to_string();
    // The fragment is never sent; the query string is part of the request line.
    if let Some(hash) = path.find('#') {
        path.truncate(hash);
    }
    if !path.starts_with('/') {
        path.insert(0, '/');
    }
    let hostport = authority.rsplit('@').next().unwrap_or(authority);
    let host = if let Some(rest) = hostport.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        hostport.split(':').next().unwrap_or(hostport)
    };
    if host.is_empty() {
        return Err(format!("{url:?}: missing host"));
    }
    if method.is_empty() || !method.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(format!("{method:?}: not an HTTP method"));
    }
    Ok(ParsedAction::Http {
        method: method.to_ascii_uppercase(),
        host: normalize_host(host),
        path,
        url: url.clone(),
        body: body.unwrap_or_default(),
    })
}

/// Lexically cleans an absolute path: no `.`, no `..`, no doubled or trailing `/`.
fn normalize_path(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for comp in p.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Splits a command line like a POSIX shell without expansion: single quotes, double quotes
/// (with `\"`, `\\`, `\$`, `` \` `` escapes) and backslashes outside quotes.
fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(ch) => cur.push(ch),
                        None => return Err(format!("unterminated ' in {line:?}")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(e @ ('"' | '\\' | '$' | '`')) => cur.push(e),
                            Some('\n') => {}
                            Some(other) => {
                                cur.push('\\');
                                cur.push(other);
                            }
                            None => return Err(format!("unterminated \" in {line:?}")),
                        },
                        Some(ch) => cur.push(ch),
                        None => return Err(format!("unterminated \" in {line:?}")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some('\n') => {}
                    Some(ch) => cur.push(ch),
                    None => cur.push('\\'),
                }
            }
            ch => {
                in_word = true;
                cur.push(ch);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// Joins argv for display, quoting words a shell would split or expand.
fn join_words(argv: &[String]) -> String {
    argv.iter()
        .map(|w| {
            if !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:=+,@%^".contains(c))
            {
                w.clone()
            } else {
                format!("'{}'", w.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn split_words_follows_posix_quoting() {
        assert_eq!(
            split_words(r#"git commit -m 'never push --force'"#).unwrap(),
            s(&["git", "commit", "-m", "never push --force"])
        );
        assert_eq!(
            split_words(r#"a "b \"c\" \d" e\ f ''"#).unwrap(),
            s(&["a", "b \"c\" \\d", "e f", ""])
        );
        assert!(split_words("echo 'open").is_err());
        assert!(split_words("echo \"open").is_err());
    }

    #[test]
    fn file_actions_are_absolute_and_clean() {
        let home = Path::new("/home/u");
        let cwd = Path::new("/home/u/p");
        let a =
            ParsedAction::parse(&s(&["read", "~/.ssh/../.ssh//id_rsa"]), cwd, home, &[]).unwrap();
        assert_eq!(a.target(), "/home/u/.ssh/id_rsa");
        let a = ParsedAction::parse(&s(&["delete", "./build/x.o"]), cwd, home, &[]).unwrap();
        assert_eq!(a.target(), "/home/u/p/build/x.o");
        assert_eq!(a.kind(), "delete");
        assert!(ParsedAction::parse(&s(&["read"]), cwd, home, &[]).is_err());
        assert!(ParsedAction::parse(&s(&["open", "/x"]), cwd, home, &[]).is_err());
    }

    #[test]
    fn exec_skips_the_separator_and_expands_home() {
        let a = ParsedAction::parse(
            &s(&["exec", "--", "rm", "-rf", "~/"]),
            Path::new("/"),
            Path::new("/home/u"),
            &[],
        )
        .unwrap();
        match a {
            ParsedAction::Exec { argv, .. } => assert_eq!(argv, s(&["rm", "-rf", "/home/u/"])),
            other => panic!("not exec: {other:?}"),
        }
    }

    #[test]
    fn connect_targets() {
        let a = parse_connect("[fd00:ec2::254]:80").unwrap();
        assert_eq!(a.target(), "[fd00:ec2::254]:80");
        match parse_connect("Metadata.Google.Internal.:80").unwrap() {
            ParsedAction::Connect { host, ip, port } => {
                assert_eq!(host.as_deref(), Some("metadata.google.internal"));
                assert_eq!(ip, None);
                assert_eq!(port, 80);
            }
            other => panic!("not connect: {other:?}"),
        }
        assert!(parse_connect("169.254.169.254").is_err());
        assert!(parse_connect("host:99999").is_err());
    }

    #[test]
    fn http_requests() {
        let a = parse_http(&s(&[
            "post",
            "https://User@API.example.com:8443/v1/x?y=1#frag",
            "--body",
            "{}",
        ]))
        .unwrap();
        match a {
            ParsedAction::Http {
                method,
                host,
                path,
                body,
                ..
            } => {
                assert_eq!(method, "POST");
                assert_eq!(host, "api.example.com");
                assert_eq!(path, "/v1/x?y=1");
                assert_eq!(body, b"{}");
            }
            other => panic!("not http: {other:?}"),
        }
        assert!(parse_http(&s(&["GET", "ftp://x/"])).is_err());
        assert!(parse_http(&s(&["GET", "https://x/", "--body"])).is_err());
        assert!(parse_http(&s(&["GET", "https://x/", "--body", "a", "--body", "b"])).is_err());
    }

    #[test]
    fn aligned_bytes_round_trip() {
        let data: Vec<u8> = (0..29u8).collect();
        let a = AlignedBytes::new(&data);
        assert_eq!(a.as_bytes(), data.as_slice());
        assert_eq!(a.as_bytes().as_ptr() as usize % 8, 0);
    }

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("x", 0), (1, 1));
    }

    #[test]
    fn embedded_tests_parse() {
        for (name, text) in DEFAULT_TESTS {
            let f = parse_test_file(name, text).unwrap_or_else(|_| panic!("{name} parses"));
            assert!(f.cases.len() > 50, "{name} has the decision table");
            for c in &f.cases {
                assert!(Decision::parse(&c.expect).is_some(), "{}", c.action);
                assert!(split_words(&c.action).is_ok(), "{}", c.action);
            }
        }
    }
}
