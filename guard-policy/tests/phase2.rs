//! Behaviour fixed in phase 2: brace groups in `all_args`, `!` exclusions with braces, HOME or
//! workspace at `/`, examples checked in the canonical context, `{policy_dir}`, embedded test
//! files, secrets through guard-secrets, and the `[secrets]` scan scope.

mod common;

use common::{Dir, compile, error, try_compile_ctx};
use guard_policy::{CompileContext, Policy, embedded_tests, load_tests_from_str, run_tests};
use guard_proto::Decision::{Allow, Ask, Deny};
use guard_proto::action::NoEnv;
use guard_proto::ruleset::RegexCache;
use guard_proto::{Context, Ruleset};

const RM: &str = r#"
[[rule]]
id = "rm-root"
on = "exec"
command = "rm"
all_args = ["{-rf,-fr}", "/"]
decision = "deny"
examples = { match = ["rm -rf /", "rm -fr /", "rm / -fr"], no_match = ["rm -rf /tmp/x", "rm /", "rm -r /"] }

[[rule]]
id = "keys"
on = "file"
paths = ["~/.ssh/*", "!~/.ssh/{known_hosts,*.pub}"]
decision = "deny"
examples = { match = ["read ~/.ssh/id_rsa"], no_match = ["read ~/.ssh/known_hosts", "read ~/.ssh/id_rsa.pub"] }
"#;

#[test]
fn braces_in_all_args_are_one_requirement() {
    let c = compile(RM);
    assert_eq!(c.decision("exec -- rm -rf /"), Deny);
    assert_eq!(c.decision("exec -- rm -fr /"), Deny);
    assert_eq!(c.decision("exec -- rm / -rf"), Deny);
    // Before the fix every alternative was required: `-rf` and `-fr` together.
    assert_eq!(c.decision("exec -- rm -rf -fr /"), Deny);
    assert_eq!(c.decision("exec -- rm -rf /tmp/x"), Allow);
    assert_eq!(c.decision("exec -- rm /"), Allow);
}

#[test]
fn exclusions_with_braces() {
    let c = compile(RM);
    assert_eq!(c.decision("read ~/.ssh/id_ed25519"), Deny);
    assert_eq!(c.decision("read ~/.ssh/known_hosts"), Allow);
    assert_eq!(c.decision("read ~/.ssh/id_ed25519.pub"), Allow);
}

fn eval(bytes: &[u8], action: &str, home: &str, cwd: &str) -> guard_proto::Decision {
    let rs = Ruleset::load(bytes).unwrap_or_else(|e| panic!("{e}"));
    let cache = RegexCache::new(&rs);
    let words = guard_policy::shell_split(action).unwrap_or_else(|e| panic!("{e}"));
    let a = guard_policy::parse_action_in(&words, home, cwd).unwrap_or_else(|e| panic!("{e}"));
    let env = NoEnv;
    let cx = Context {
        env: &env,
        cwd: cwd.as_bytes(),
        agent: b"",
    };
    rs.evaluate_with(&a.as_action(), &cx, Some(&cache)).decision
}

#[test]
fn root_home_and_workspace_compile_and_examples_hold() {
    let p = Policy::default_policy().unwrap_or_else(|e| panic!("{e}"));
    for (home, ws) in [("/", "/home/agent/project"), ("/root/", "/"), ("/", "/")] {
        let cx = CompileContext {
            home: home.into(),
            workspace: ws.into(),
            ..CompileContext::canonical()
        };
        let bytes = p
            .compile(&cx)
            .unwrap_or_else(|e| panic!("{home} {ws}: {e}"));
        let rs = Ruleset::load(&bytes).unwrap_or_else(|e| panic!("{e}"));
        let results = p.run_examples(&rs, &cx);
        assert!(results.len() > 100);
        // Every example can be evaluated (no malformed `//` paths or unreadable actions).
        let errors: Vec<_> = results.iter().filter_map(|r| r.error.clone()).collect();
        assert!(errors.is_empty(), "{home} {ws}: {errors:?}");
        // HOME at `/` puts every path under HOME, so rules about "under HOME" match more
        // (some no_match examples then match) but never less: every match example holds.
        // A workspace at `/` changes what is "outside the workspace", so there only the
        // evaluation itself is checked.
        if ws != "/" {
            let missed: Vec<String> = results
                .iter()
                .filter(|r| r.expect_match && !r.pass)
                .map(|r| format!("{} `{}`", r.rule, r.example))
                .collect();
            assert!(missed.is_empty(), "home {home}: {missed:?}");
        }
        let h = home.trim_end_matches('/');
        assert_eq!(
            eval(&bytes, &format!("read {h}/.ssh/id_ed25519"), home, ws),
            Deny,
            "home {home}"
        );
        assert_eq!(
            eval(&bytes, &format!("read {h}/.ssh/id_ed25519.pub"), home, ws),
            Allow
        );
    }
    // No doubled slashes reach the ruleset: `~/.ssh/x` with HOME `/` is `/.ssh/x`.
    let cx = CompileContext {
        home: "/".into(),
        ..CompileContext::canonical()
    };
    let c = try_compile_ctx(RM, &[], &cx).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(eval(&c.bytes, "read /.ssh/id_rsa", "/", "/"), Deny);
    let cx = CompileContext {
        home: "/root//".into(),
        ..CompileContext::canonical()
    };
    let c = try_compile_ctx(RM, &[], &cx).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(eval(&c.bytes, "read /root/.ssh/id_rsa", "/root", "/"), Deny);
}

#[test]
fn examples_are_checked_in_the_canonical_context_only() {
    // The example names the canonical home literally: it holds canonically whatever the real
    // HOME, and the launch compile never looks at examples.
    let text = r#"
[[rule]]
id = "k"
on = "file"
paths = ["~/.kube/config"]
decision = "deny"
examples = { match = ["read /home/agent/.kube/config"] }
"#;
    let dir = Dir::new("canon");
    let path = dir.write("p.toml", text);
    let p = Policy::load(&[path]).unwrap_or_else(|e| panic!("{e}"));
    let odd = CompileContext {
        home: "/var/lib/odd".into(),
        workspace: "/".into(),
        ..Default::default()
    };
    p.check_examples().unwrap_or_else(|e| panic!("{e}"));
    let bytes = p.compile(&odd).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        eval(
            &bytes,
            "read /var/lib/odd/.kube/config",
            "/var/lib/odd",
            "/"
        ),
        Deny
    );
    let bytes = p.compile_for_launch(&odd).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        eval(
            &bytes,
            "read /var/lib/odd/.kube/config",
            "/var/lib/odd",
            "/"
        ),
        Deny
    );
    // A wrong example fails compile (canonically), but not the launch compile.
    let bad = text.replace("/home/agent/.kube/config", "/home/agent/.kube/other");
    let path = dir.write("bad.toml", &bad);
    let p = Policy::load(&[path]).unwrap_or_else(|e| panic!("{e}"));
    let e = p
        .compile(&odd)
        .err()
        .unwrap_or_else(|| panic!("should fail"));
    assert!(e.message.contains("should match"), "{e}");
    assert_eq!(e.line, 7, "{e}");
    assert!(p.compile_for_launch(&odd).is_ok());
}

#[test]
fn policy_dir_of_the_embedded_policy_is_the_config_dir() {
    let files: Vec<std::path::PathBuf> = Vec::new();
    let d = guard_policy::policy_dir_for(&files, "/home/x");
    match std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        Some(x) => assert_eq!(d, format!("{}/guard", x.to_string_lossy())),
        None => assert_eq!(d, "/home/x/.config/guard"),
    }
    let dir = Dir::new("pd");
    let f = dir.write("sub/p.toml", "");
    let want = std::fs::canonicalize(dir.0.join("sub")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        guard_policy::policy_dir_for(&[f], "/home/x"),
        want.to_string_lossy()
    );
    // Without a policy_dir in the context, the embedded policy's `{policy_dir}` is not a
    // `policies/` folder under the current directory.
    let p = Policy::default_policy().unwrap_or_else(|e| panic!("{e}"));
    let cx = CompileContext {
        policy_dir: String::new(),
        ..CompileContext::canonical()
    };
    let bytes = p.compile_unchecked(&cx);
    let cwd = std::env::current_dir().unwrap_or_else(|e| panic!("{e}"));
    let under_cwd = format!("write {}/policies/default.toml", cwd.display());
    assert_eq!(
        eval(&bytes, &under_cwd, "/home/agent", "/home/agent/project"),
        Allow
    );
    let bytes = p.compile_unchecked(&CompileContext::canonical());
    assert_eq!(
        eval(
            &bytes,
            "write /home/agent/.config/guard/default.toml",
            "/home/agent",
            "/home/agent/project"
        ),
        Deny
    );
}

#[test]
fn embedded_tests_load_from_memory_and_pass() {
    let files = embedded_tests().unwrap_or_else(|e| panic!("{e}"));
    assert!(!files.is_empty());
    assert!(files[0].path.starts_with("policies/tests"));
    let p = Policy::default_policy().unwrap_or_else(|e| panic!("{e}"));
    let mut n = 0;
    for f in &files {
        for r in run_tests(&p, &CompileContext::canonical(), f).unwrap_or_else(|e| panic!("{e}")) {
            assert!(
                r.pass,
                "{}:{} {} got {}",
                r.file.display(),
                r.line,
                r.action,
                r.got
            );
            n += 1;
        }
    }
    assert!(n > 10);
    let t = load_tests_from_str(
        "mem.toml",
        "[[case]]\naction = \"read ~/.ssh/id_ed25519\"\nexpect = \"deny\"\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(t.cases.len(), 1);
    let e = load_tests_from_str("mem.toml", "[[case]]\naction = \"x\"\nexpect = \"nope\"\n")
        .err()
        .unwrap_or_else(|| panic!("should fail"));
    assert_eq!((e.file.to_string_lossy().as_ref(), e.line), ("mem.toml", 3));
}

const SECRETS: &str = r#"
[[secret]]
id = "tok"
regex = 'token\s*=\s*(?P<secret>[A-Za-z0-9]{16,})'
keywords = ["token"]
entropy = 3.0
examples = { match = ["token = a8Fk29sLq0ZxPw7R"], no_match = ["token = aaaaaaaaaaaaaaaa", "token = short"] }
"#;

#[test]
fn secrets_use_guard_secrets_matching_and_keep_entropy() {
    let c = compile(SECRETS);
    let rs = c.ruleset();
    let s = rs.secret(0).unwrap_or_else(|| panic!("secret"));
    assert_eq!(s.min_entropy, Some(3.0));
    // Without the entropy floor the low-entropy example matches, so it fails.
    let e = error(&SECRETS.replace("entropy = 3.0\n", ""), &[]);
    assert!(e.message.contains("aaaaaaaaaaaaaaaa"), "{e}");
    // guard-secrets' own validation, with file:line:col.
    let e = error(&SECRETS.replace("entropy = 3.0", "entropy = 9.5"), &[]);
    assert_eq!((e.line, e.col), (6, 11), "{e}");
    assert!(e.message.contains("entropy"), "{e}");
    let e = error(
        &SECRETS.replace(r#"keywords = ["token"]"#, r#"keywords = [""]"#),
        &[],
    );
    assert!(e.message.contains("keyword"), "{e}");
    let e = error(&SECRETS.replace("(?P<secret>", "(?P<secret>("), &[]);
    assert_eq!(e.line, 4, "{e}");
}

#[test]
fn secret_scan_scope_defaults_and_policy_lists() {
    let c = compile(RM);
    let rs = c.ruleset();
    assert!(rs.in_secret_scope(b"/home/u/proj/.env"));
    assert!(rs.in_secret_scope(b"/home/u/.aws/credentials"));
    assert!(!rs.in_secret_scope(b"/home/u/proj/node_modules/a/.env"));
    assert!(!rs.in_secret_scope(b"/home/u/proj/target/debug/x"));
    assert!(!rs.in_secret_scope(b"/home/u/proj/.git/objects/ab/cdef"));
    assert!(!rs.in_secret_scope(b"/home/u/proj/logo.png"));
    assert!(!rs.in_secret_scope(b"/etc/hosts"));
    let text = format!(
        "{RM}\n[secrets]\nscope = [\"{{workspace}}/**\", \"/srv/{{a,b}}/**\"]\nexclude = [\"**/*.log\"]\n"
    );
    let c = compile(&text);
    let rs = c.ruleset();
    assert!(rs.in_secret_scope(b"/home/u/proj/.env"));
    assert!(rs.in_secret_scope(b"/srv/b/cfg"));
    assert!(!rs.in_secret_scope(b"/home/u/.aws/credentials"));
    assert!(rs.in_secret_scope(b"/home/u/proj/node_modules/x"));
    assert!(!rs.in_secret_scope(b"/home/u/proj/app.log"));
    let e = error(&format!("{RM}\n[secrets]\nscope = [\"[\"]\n"), &[]);
    assert!(e.message.contains("[secrets]"), "{e}");
    let e = error(&format!("{RM}\n[secrets]\nbogus = 1\n"), &[]);
    assert!(e.message.contains("bogus"), "{e}");
}

#[test]
fn decisions_unchanged_for_ask() {
    // all_args with a single alternative still behaves as before.
    let c = compile(
        r#"
[[rule]]
id = "a"
on = "exec"
command = "git push"
all_args = ["-f", "origin"]
decision = "ask"
examples = { match = ["git push -f origin"], no_match = ["git push origin"] }
"#,
    );
    assert_eq!(c.decision("exec -- git push origin -f"), Ask);
    assert_eq!(c.decision("exec -- git push -f"), Allow);
}
