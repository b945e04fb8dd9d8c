//! `guardctl policy compile|check|test|explain`: the policy tools.
//!
//! Every subcommand works on the policy given with `--policy` (several files are merged) or, with
//! none, on the default policy embedded in `guard-policy`. Exit codes: 0 success, 1 a check or
//! test failed, 2 bad input (malformed policy, unreadable file, bad action syntax). Policy errors
//! are printed as `file:line:col: problem` so editors can jump to them.
//!
//! `explain` and the test cases share the engine's action parser (`parse_action_in`), so a case
//! in `policies/tests/*.toml` means exactly what the same words mean on the command line.

use clap::{Args, Subcommand};
use guard_policy::{
    CaseResult, CompileContext, ExampleResult, OwnedAction, Policy, PolicyError, TestFile,
    absolute_path, embedded_tests, load_tests, parse_action_in, policy_dir_for, run_tests,
};
use guard_proto::action::Context;
use guard_proto::decision::Decision;
use guard_proto::ruleset::{RegexCache, RuleInfo, RuleKind, Ruleset};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

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
    PathBuf::from(absolute_path(&p.to_string_lossy(), &base.to_string_lossy()))
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
    let policy_dir = policy_dir_for(files, &path_string(&home));
    let exe = self_exe();
    CompileContext {
        home: path_string(&home),
        workspace: path_string(&workspace),
        state_dir: path_string(&state_dir(&home)),
        policy_dir,
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
    // Examples hold or not in the canonical context, whatever this machine's HOME/workspace.
    let failures = example_failures(&policy, &CompileContext::canonical())?;
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
        None => format!(
            "should {want} but {}",
            if r.matched { "does" } else { "does not" }
        ),
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

/// Fixed stand-ins for the placeholders a test file does not set, so results never depend on
/// the machine running the tests (the canonical context rule examples are checked in). A
/// file's `[context] home`/`workspace` override these.
fn test_base_context() -> CompileContext {
    CompileContext::canonical()
}

/// The test files to run: from `--tests`, from `tests/` next to the first policy file, or the
/// embedded tests of the default policy.
fn load_test_files(args: &TestArgs) -> Result<Vec<TestFile>, Failure> {
    let dir = match (&args.tests, args.files.policy.first()) {
        (Some(d), _) => {
            if !d.is_dir() {
                return Err(Failure::Bad(format!(
                    "{}: not a directory of test files",
                    d.display()
                )));
            }
            d.clone()
        }
        (None, Some(first)) => {
            let d = first
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .join("tests");
            if !d.is_dir() {
                return Ok(Vec::new());
            }
            d
        }
        (None, None) => return load_embedded_tests(),
    };
    Ok(load_tests(&dir)?)
}

/// The embedded tests of the default policy, parsed from memory; errors and results name
/// them by their path in the source tree.
fn load_embedded_tests() -> Result<Vec<TestFile>, Failure> {
    Ok(embedded_tests()?)
}

fn test(args: TestArgs) -> Result<(), Failure> {
    let policy = load_policy(&args.files.policy)?;
    let files = load_test_files(&args)?;
    let base = test_base_context();
    // Examples always run in the canonical context (as `check` and `compile` check them).
    let example_ctx = CompileContext::canonical();
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
    for file in &files {
        for r in run_tests(&policy, &base, file)? {
            if r.pass {
                passed += 1;
            } else {
                failed += 1;
                println!("FAIL {}", describe_case(&r));
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

fn describe_case(r: &CaseResult) -> String {
    let what = match &r.error {
        Some(e) => format!("cannot be evaluated: {e}"),
        None => {
            let mut parts = Vec::new();
            if r.got != r.expect {
                parts.push(format!("expected {}, got {}", r.expect, r.got));
            }
            if let Some(want) = &r.expect_rule
                && r.got_rule.as_ref() != Some(want)
            {
                parts.push(format!("expected rule {want}"));
            }
            format!(
                "{} (decided by {})",
                parts.join(", "),
                r.got_rule.as_deref().unwrap_or("the policy default")
            )
        }
    };
    format!(
        "{}:{}: case `{}`: {what}",
        r.file.display(),
        r.line,
        r.action
    )
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
        .unwrap_or(here);
    let cwd = path_string(&cwd);
    // Bad action syntax is reported before the (slower) policy compilation.
    let action = parse_action_in(&args.action, &ctx.home, &cwd)
        .map_err(|e| Failure::Bad(format!("explain: {e}")))?;
    let policy = load_policy(&args.files.policy)?;
    let bytes = compile_ruleset(&policy, &ctx)?;
    let rs = load_ruleset(&bytes)?;
    let outcome = evaluate(&rs, &action, &cwd, &args.agent, &env);
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
    action: &OwnedAction,
    cwd: &str,
    agent: &str,
    env: &Vec<(String, String)>,
) -> Outcome<'a> {
    let context = Context {
        env,
        cwd: cwd.as_bytes(),
        agent: agent.as_bytes(),
    };
    // One cache for both passes, so a body_regex compiles once.
    let cache = RegexCache::new(rs);
    let a = action.as_action();
    let verdict = rs.evaluate_with(&a, &context, Some(&cache));
    let mut matched = Vec::new();
    rs.for_each_match_with(&a, &context, Some(&cache), &mut |i| {
        if let Some(info) = rs.rule(i) {
            matched.push(info);
        }
    });
    Outcome {
        decision: verdict.decision,
        rule: verdict.rule.and_then(|i| rs.rule(i)),
        matched,
    }
}

fn action_kind(a: &OwnedAction) -> &'static str {
    match a {
        OwnedAction::File { access, .. } => access.as_str(),
        OwnedAction::Exec { .. } => "exec",
        OwnedAction::Connect { .. } => "connect",
        OwnedAction::Http { .. } => "http",
    }
}

fn split_tags(tags: &str) -> Vec<&str> {
    tags.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect()
}

fn explain_json(rs: &Ruleset<'_>, action: &OwnedAction, o: &Outcome<'_>) -> String {
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
        "action": action_kind(action),
        "target": action.target(),
        "policy": rs.policy_name(),
        "default": rs.default_decision().as_str(),
    });
    value.to_string()
}

fn explain_text(rs: &Ruleset<'_>, action: &OwnedAction, o: &Outcome<'_>) -> String {
    let mut s = String::new();
    s.push_str(&format!("decision: {}\n", o.decision));
    s.push_str(&format!(
        "action:   {} {}\n",
        action_kind(action),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A private directory removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> std::io::Result<TempDir> {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let dir =
                std::env::temp_dir().join(format!("guardctl-tests-{}-{nanos}", std::process::id()));
            std::fs::create_dir(&dir)?;
            Ok(TempDir(dir))
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn aligned_bytes_round_trip() {
        let data: Vec<u8> = (0..29u8).collect();
        let a = AlignedBytes::new(&data);
        assert_eq!(a.as_bytes(), data.as_slice());
        assert_eq!(a.as_bytes().as_ptr() as usize % 8, 0);
        assert!(AlignedBytes::new(&[]).as_bytes().is_empty());
    }

    #[test]
    fn embedded_tests_load_under_their_source_name() {
        let files = load_embedded_tests().unwrap_or_else(|_| panic!("embedded tests load"));
        assert!(!files.is_empty());
        assert_eq!(files[0].path, PathBuf::from("policies/tests/default.toml"));
        assert!(files[0].cases.len() > 50, "the decision table is embedded");
    }

    #[test]
    fn absolute_paths_are_clean() {
        assert_eq!(
            absolute(Path::new("../x/./y//z"), Path::new("/a/b")),
            PathBuf::from("/a/x/y/z")
        );
        assert_eq!(
            absolute(Path::new("/etc/../etc/hosts"), Path::new("/a")),
            PathBuf::from("/etc/hosts")
        );
    }

    #[test]
    fn write_atomically_replaces_and_leaves_no_temp() {
        let tmp = TempDir::new().expect("temp dir");
        let out = tmp.0.join("sub/rules.bin");
        write_atomically(&out, b"one").expect("first write");
        write_atomically(&out, b"two").expect("second write");
        assert_eq!(std::fs::read(&out).expect("read back"), b"two");
        let names: Vec<_> = std::fs::read_dir(tmp.0.join("sub"))
            .expect("list")
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("rules.bin")]);
    }

    #[test]
    fn case_failures_name_file_line_and_expectation() {
        let r = CaseResult {
            file: PathBuf::from("t.toml"),
            line: 7,
            action: "read /x".into(),
            expect: Decision::Deny,
            expect_rule: Some("r1".into()),
            got: Decision::Allow,
            got_rule: None,
            pass: false,
            error: None,
        };
        let d = describe_case(&r);
        assert!(d.starts_with("t.toml:7: case `read /x`"), "{d}");
        assert!(d.contains("expected deny, got allow"), "{d}");
        assert!(d.contains("expected rule r1"), "{d}");
    }
}
