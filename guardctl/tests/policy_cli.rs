//! Runs the built `guardctl policy ...` binary: the default policy's decision table through
//! `explain`, the JSON shape, `compile`/`check`/`test`, and bad input (exit 2 with
//! `file:line:col`).

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

fn guardctl() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_guardctl"));
    // Never let a developer's own state or config leak into (or out of) a test.
    c.env_remove("GUARD_STATE_DIR")
        .env_remove("XDG_STATE_HOME")
        .env_remove("XDG_CONFIG_HOME");
    c
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

/// A scratch directory with `home/project` (the workspace), removed on drop.
struct Scratch {
    root: PathBuf,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let root = std::env::temp_dir().join(format!(
            "guardctl-policy-{name}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("home/project")).expect("create scratch dir");
        Scratch { root }
    }
    fn home(&self) -> PathBuf {
        self.root.join("home")
    }
    fn workspace(&self) -> PathBuf {
        self.root.join("home/project")
    }
    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.root.join(rel);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).expect("create dir");
        }
        std::fs::write(&p, text).expect("write file");
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run guardctl")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// `guardctl policy explain --json` with the scratch HOME and workspace; returns the object.
fn explain(s: &Scratch, extra: &[&str], action: &[&str]) -> Value {
    let mut c = guardctl();
    c.args(["policy", "explain", "--json", "--home"])
        .arg(s.home())
        .arg("--workspace")
        .arg(s.workspace())
        .arg("--cwd")
        .arg(s.workspace())
        .args(extra)
        .args(action);
    let o = run(&mut c);
    assert_eq!(code(&o), 0, "explain {action:?} failed: {}", stderr(&o));
    let out = stdout(&o);
    assert_eq!(
        out.trim().lines().count(),
        1,
        "--json prints exactly one line: {out}"
    );
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// Whether `s` contains `name:LINE:COL:` with numbers.
fn has_location(s: &str, name: &str) -> bool {
    s.match_indices(name).any(|(i, _)| {
        let rest = &s[i + name.len()..];
        let mut parts = rest.splitn(4, ':');
        parts.next() == Some("")
            && parts
                .next()
                .is_some_and(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_digit()))
            && parts
                .next()
                .is_some_and(|c| !c.is_empty() && c.chars().all(|c| c.is_ascii_digit()))
    })
}

#[test]
fn default_policy_decision_table() {
    let s = Scratch::new("table");
    let h = s.home().to_string_lossy().into_owned();
    let w = s.workspace().to_string_lossy().into_owned();
    let rail_delete = r#"{"query":"mutation { volumeDelete(volumeId: \"v-1\") }"}"#;
    let rail_read = r#"{"query":"query { me { name } }"}"#;
    let rows: Vec<(Vec<String>, &str)> = vec![
        (vec!["read".into(), format!("{h}/.ssh/id_ed25519")], "deny"),
        (
            vec!["read".into(), format!("{h}/.ssh/id_ed25519.pub")],
            "allow",
        ),
        (
            vec!["read".into(), format!("{h}/.ssh/known_hosts")],
            "allow",
        ),
        (
            vec!["read".into(), format!("{h}/.aws/credentials")],
            "redact",
        ),
        (vec!["read".into(), format!("{w}/.env")], "redact"),
        (
            vec!["read".into(), format!("{w}/.env.production")],
            "redact",
        ),
        (
            vec!["write".into(), format!("{h}/.ssh/authorized_keys")],
            "deny",
        ),
        (vec!["write".into(), format!("{h}/.bashrc")], "ask"),
        (vec!["write".into(), format!("{h}/.profile")], "ask"),
        (
            vec!["write".into(), format!("{w}/.git/hooks/pre-commit")],
            "ask",
        ),
        (
            vec!["delete".into(), format!("{h}/Pictures/2009/img.jpg")],
            "ask",
        ),
        (vec!["delete".into(), format!("{w}/build/out.o")], "allow"),
        (vec!["delete".into(), "/tmp/scratch.txt".into()], "allow"),
        (vec!["read".into(), format!("{w}/src/main.rs")], "allow"),
    ];
    let mut rows = rows;
    let execs: Vec<(&str, &str)> = vec![
        ("git push --force", "ask"),
        ("git push -f origin main", "ask"),
        ("git push --force-with-lease origin main", "ask"),
        ("git push origin +main", "ask"),
        ("git reset --hard", "ask"),
        ("git clean -fdx", "ask"),
        ("git status", "allow"),
        ("git log", "allow"),
        ("git diff", "allow"),
        ("git push origin main", "allow"),
        ("rm -rf /", "deny"),
        ("terraform destroy", "ask"),
        ("terraform apply -destroy", "ask"),
        ("kubectl delete pod web-1", "ask"),
        ("helm uninstall web", "ask"),
        ("terraform plan", "allow"),
        ("kubectl get pods", "allow"),
        ("docker run --privileged -it ubuntu bash", "deny"),
    ];
    for (cmd, d) in execs {
        let mut words = vec!["exec".to_string(), "--".to_string()];
        words.extend(cmd.split(' ').map(String::from));
        rows.push((words, d));
    }
    rows.push((
        vec![
            "exec".into(),
            "--".into(),
            "git".into(),
            "commit".into(),
            "-m".into(),
            "never push --force".into(),
        ],
        "allow",
    ));
    rows.push((
        vec![
            "exec".into(),
            "--".into(),
            "rm".into(),
            "-rf".into(),
            h.clone(),
        ],
        "deny",
    ));
    rows.push((
        vec![
            "exec".into(),
            "--".into(),
            "rm".into(),
            "-rf".into(),
            format!("{h}/"),
        ],
        "deny",
    ));
    rows.push((vec!["connect".into(), "169.254.169.254:80".into()], "deny"));
    rows.push((
        vec![
            "http".into(),
            "POST".into(),
            "https://backboard.railway.app/graphql/v2".into(),
            "--body".into(),
            rail_delete.into(),
        ],
        "ask",
    ));
    rows.push((
        vec![
            "http".into(),
            "POST".into(),
            "https://backboard.railway.app/graphql/v2".into(),
            "--body".into(),
            rail_read.into(),
        ],
        "allow",
    ));
    let mut wrong = Vec::new();
    for (action, want) in &rows {
        let words: Vec<&str> = action.iter().map(String::as_str).collect();
        let v = explain(&s, &[], &words);
        if v["decision"] != *want {
            wrong.push(format!("{words:?}: want {want}, got {v}"));
        }
    }
    assert!(wrong.is_empty(), "wrong decisions:\n{}", wrong.join("\n"));
}

#[test]
fn explain_json_shape() {
    let s = Scratch::new("json");
    let key = format!("{}/.ssh/id_ed25519", s.home().display());
    let v = explain(&s, &[], &["read", &key]);
    assert_eq!(v["decision"], "deny");
    assert_eq!(v["rule"], "ssh-private-keys");
    assert_eq!(v["action"], "read");
    assert_eq!(v["target"], key.as_str());
    assert!(v["reason"].as_str().is_some_and(|r| !r.is_empty()), "{v}");
    let matched = v["matched"].as_array().expect("matched is a list");
    assert!(matched.iter().any(|m| m == "ssh-private-keys"), "{v}");

    // Nothing matches: `rule` is null, the decision is the policy default.
    let v = explain(&s, &[], &["read", "/usr/share/doc/readme.txt"]);
    assert_eq!(v["decision"], "allow");
    assert!(v["rule"].is_null(), "{v}");
    assert_eq!(v["matched"].as_array().map(Vec::len), Some(0), "{v}");
}

#[test]
fn explain_text_names_the_rule_and_reason() {
    let s = Scratch::new("text");
    let o = run(guardctl()
        .args(["policy", "explain", "--home"])
        .arg(s.home())
        .args(["exec", "--", "git", "push", "--force"]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("decision: ask"), "{out}");
    assert!(out.contains("git-force-push"), "{out}");
}

#[test]
fn explain_uses_env_for_when_conditions() {
    let s = Scratch::new("env");
    let v = explain(
        &s,
        &["--env", "TF_WORKSPACE=prod"],
        &["exec", "--", "terraform", "destroy"],
    );
    assert_eq!(v["decision"], "deny", "{v}");
    assert_eq!(v["rule"], "prod-terraform-destroy");
    let v = explain(
        &s,
        &["--env", "TF_WORKSPACE=staging"],
        &["exec", "--", "terraform", "destroy"],
    );
    assert_eq!(v["decision"], "ask", "{v}");
}

#[test]
fn explain_rejects_bad_actions() {
    for action in [
        vec!["open", "/etc/passwd"],
        vec!["connect", "no-port"],
        vec!["http", "GET", "ftp://x/"],
        vec!["exec", "--"],
    ] {
        let o = run(guardctl().args(["policy", "explain"]).args(&action));
        assert_eq!(code(&o), 2, "{action:?}: {}", stderr(&o));
    }
}

#[test]
fn check_default_policy_counts_kinds() {
    let o = run(guardctl().args(["policy", "check"]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    for kind in ["file", "exec", "connect", "http", "secret"] {
        let n: usize = out
            .lines()
            .find_map(|l| {
                let mut it = l.split_whitespace();
                (it.next() == Some(kind))
                    .then(|| it.next().and_then(|n| n.parse().ok()))
                    .flatten()
            })
            .unwrap_or_else(|| panic!("no count for {kind}: {out}"));
        assert!(n > 0, "{kind} count is 0: {out}");
    }
}

#[test]
fn test_default_policy_passes() {
    let o = run(guardctl().args(["policy", "test"]));
    let out = stdout(&o);
    let last = out.trim().lines().last().unwrap_or("");
    assert_eq!(code(&o), 0, "{out}\n{}", stderr(&o));
    let (passed, failed) = last
        .split_once(" passed, ")
        .unwrap_or_else(|| panic!("last line: {last}"));
    assert_eq!(failed, "0 failed");
    let passed: usize = passed.parse().expect("a count");
    assert!(passed > 100, "{last}");
}

#[test]
fn test_on_repo_policy_files_uses_tests_dir_next_to_it() {
    let policy = repo_root().join("policies/default.toml");
    let o = run(guardctl().args(["policy", "test", "--policy"]).arg(&policy));
    let out = stdout(&o);
    assert_eq!(code(&o), 0, "{out}\n{}", stderr(&o));
    assert!(out.trim().ends_with(" passed, 0 failed"), "{out}");
}

const MINI: &str = r#"
[policy]
name = "mini"
default = "allow"

[[rule]]
id = "no-secrets"
on = "file"
paths = ["~/secret/**"]
access = ["read"]
decision = "deny"
reason = "secret"
tags = ["OWASP-LLM02"]
examples = { match = ["~/secret/a"], no_match = ["~/public/a"] }
"#;

#[test]
fn failing_test_case_exits_1_and_counts() {
    let s = Scratch::new("failcase");
    let policy = s.write("pol/mini.toml", MINI);
    s.write(
        "pol/tests/mini.toml",
        r#"
[context]
home = "/home/t"
workspace = "/home/t/w"

[[case]]
action = "read /home/t/secret/x"
expect = "deny"
rule = "no-secrets"

[[case]]
action = "read /home/t/public/x"
expect = "deny"
"#,
    );
    let o = run(guardctl().args(["policy", "test", "--policy"]).arg(&policy));
    let out = stdout(&o);
    assert_eq!(code(&o), 1, "{out}\n{}", stderr(&o));
    assert!(out.contains("FAIL"), "{out}");
    assert!(out.contains("/home/t/public/x"), "{out}");
    assert!(out.trim().ends_with(" passed, 1 failed"), "{out}");
}

#[test]
fn compile_writes_a_ruleset_atomically() {
    let s = Scratch::new("compile");
    let policy = s.write("pol/mini.toml", MINI);
    let out = s.root.join("out/rules.bin");
    let o = run(guardctl()
        .args(["policy", "compile", "--policy"])
        .arg(&policy)
        .arg("-o")
        .arg(&out)
        .arg("--home")
        .arg(s.home()));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let bytes = std::fs::read(&out).expect("ruleset written");
    assert!(bytes.len() > 16);
    let leftovers: Vec<_> = std::fs::read_dir(s.root.join("out"))
        .expect("out dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name() != "rules.bin")
        .collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");

    // Positional sources mean the same as --policy; the default policy compiles too.
    let out2 = s.root.join("out2.bin");
    let o = run(guardctl()
        .args(["policy", "compile"])
        .arg(&policy)
        .arg("-o")
        .arg(&out2)
        .arg("--home")
        .arg(s.home()));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(std::fs::read(&out2).expect("second ruleset"), bytes);
    let out3 = s.root.join("default.bin");
    let o = run(guardctl().args(["policy", "compile", "-o"]).arg(&out3));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(std::fs::metadata(&out3).map(|m| m.len()).unwrap_or(0) > bytes.len() as u64);
}

#[test]
fn several_policies_merge() {
    let s = Scratch::new("merge");
    let a = s.write("a.toml", MINI);
    let b = s.write(
        "b.toml",
        r#"
[policy]
name = "extra"

[[rule]]
id = "no-curl"
on = "exec"
command = "curl"
decision = "ask"
reason = "network"
tags = []
examples = { match = ["curl https://example.com"], no_match = ["wget https://example.com"] }
"#,
    );
    let secret = format!("{}/secret/x", s.home().display());
    let v = explain(
        &s,
        &[
            "--policy",
            &a.to_string_lossy(),
            "--policy",
            &b.to_string_lossy(),
        ],
        &["read", &secret],
    );
    assert_eq!(v["rule"], "no-secrets", "{v}");
    let v = explain(
        &s,
        &[
            "--policy",
            &a.to_string_lossy(),
            "--policy",
            &b.to_string_lossy(),
        ],
        &["exec", "--", "curl", "https://example.com"],
    );
    assert_eq!(v["decision"], "ask", "{v}");
    assert_eq!(v["rule"], "no-curl", "{v}");
}

/// Runs `check` on a bad policy; asserts exit 2 and `name:line:col:` in stderr.
fn assert_bad_policy(s: &Scratch, top: &Path, name: &str) -> String {
    let o = run(guardctl().args(["policy", "check", "--policy"]).arg(top));
    let err = stderr(&o);
    assert_eq!(code(&o), 2, "{name}: exit {}, stderr: {err}", code(&o));
    assert!(
        has_location(&err, name),
        "{name}: no {name}:line:col in: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    let _ = s;
    err
}

#[test]
fn malformed_toml_is_exit_2_with_location() {
    let s = Scratch::new("malformed");
    let p = s.write("bad.toml", "[policy]\nname = \"x\"\n[[rule]\nid = 1\n");
    assert_bad_policy(&s, &p, "bad.toml");
}

#[test]
fn unknown_key_is_exit_2_with_location() {
    let s = Scratch::new("unknown");
    let p = s.write(
        "unknown.toml",
        &MINI.replace(
            "decision = \"deny\"",
            "decision = \"deny\"\nseverity = \"high\"",
        ),
    );
    let err = assert_bad_policy(&s, &p, "unknown.toml");
    assert!(err.contains("severity"), "{err}");
}

#[test]
fn bad_glob_is_exit_2_with_location() {
    let s = Scratch::new("glob");
    let p = s.write(
        "glob.toml",
        &MINI.replace("paths = [\"~/secret/**\"]", "paths = [\"~/secret/[abc\"]"),
    );
    assert_bad_policy(&s, &p, "glob.toml");
}

#[test]
fn include_cycle_is_exit_2_with_location() {
    let s = Scratch::new("cycle");
    let top = s.write(
        "top.toml",
        "[policy]\nname = \"top\"\ninclude = [\"packs/a.toml\"]\n",
    );
    s.write(
        "packs/a.toml",
        "[policy]\nname = \"a\"\ninclude = [\"b.toml\"]\n",
    );
    s.write(
        "packs/b.toml",
        "[policy]\nname = \"b\"\ninclude = [\"a.toml\"]\n",
    );
    let err = assert_bad_policy(&s, &top, ".toml");
    assert!(err.contains("a.toml") || err.contains("b.toml"), "{err}");
}

#[test]
fn missing_policy_file_is_exit_2_with_location() {
    let s = Scratch::new("missing");
    let p = s.root.join("nope.toml");
    assert_bad_policy(&s, &p, "nope.toml");
    // An include that does not exist names the including file.
    let top = s.write(
        "top.toml",
        "[policy]\nname = \"top\"\ninclude = [\"packs/missing.toml\"]\n",
    );
    assert_bad_policy(&s, &top, "top.toml");
}

#[test]
fn failing_rule_example_fails_check() {
    let s = Scratch::new("example");
    let p = s.write(
        "ex.toml",
        &MINI.replace("match = [\"~/secret/a\"]", "match = [\"~/public/a\"]"),
    );
    let o = run(guardctl().args(["policy", "check", "--policy"]).arg(&p));
    let err = stderr(&o);
    assert_eq!(code(&o), 1, "a failed check exits 1: {err}");
    assert!(err.contains("no-secrets"), "{err}");
    assert!(has_location(&err, "ex.toml"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn explain_reads_http_body_from_file() {
    let s = Scratch::new("bodyfile");
    let body = s.write(
        "body.json",
        r#"{"query":"mutation Drop { a: environmentDelete(id: \"e\") }"}"#,
    );
    let url = "https://backboard.railway.app/graphql/v2";
    let v = explain(
        &s,
        &[],
        &["http", "POST", url, "--body-file", &body.to_string_lossy()],
    );
    assert_eq!(v["decision"], "ask", "{v}");
    assert_eq!(v["rule"], "railway-destructive-mutations", "{v}");
    assert_eq!(v["action"], "http");
    let missing = s.root.join("missing.json");
    let o = run(guardctl()
        .args(["policy", "explain", "http", "POST", url, "--body-file"])
        .arg(&missing));
    assert_eq!(code(&o), 2, "{}", stderr(&o));
}

#[test]
fn test_takes_a_tests_directory() {
    let s = Scratch::new("testsdir");
    s.write(
        "cases/extra.toml",
        r#"
[context]
home = "/home/t"
workspace = "/home/t/w"

[[case]]
action = "read /home/t/.ssh/id_rsa"
expect = "deny"

[[case]]
action = "exec -- git push origin main"
expect = "ask"
"#,
    );
    let o = run(guardctl()
        .args(["policy", "test", "--tests"])
        .arg(s.root.join("cases")));
    let out = stdout(&o);
    assert_eq!(code(&o), 1, "{out}");
    assert!(out.contains("extra.toml"), "{out}");
    assert!(out.contains("git push origin main"), "{out}");
    assert!(out.trim().ends_with(" passed, 1 failed"), "{out}");
}
