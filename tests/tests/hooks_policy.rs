//! Policy features as the hooks apply them: monitor mode, execs the preload cannot follow
//! (static and setuid binaries), setuid wrappers' payloads (`su -c`), connect rules on host
//! names learned from getaddrinfo, and children that try to swap the ruleset.

mod hooks_support;

use hooks_support::*;

fn probe() -> std::path::PathBuf {
    cc("c/probe.c", "probe-O0", &["-O0"])
}

#[test]
fn monitor_mode_records_but_never_blocks() {
    let policy = POLICY.replace(
        "default = \"allow\"",
        "default = \"allow\"\nmode = \"monitor\"",
    );
    let env = Env::with_policy("pol-monitor", &policy);
    let mut c = env.cmd(probe());
    c.args(["read", &env.h("secret/key")]);
    assert_eq!(out(c).0.trim(), "OK");
    let mut c = env.cmd(probe());
    c.args(["spawnp", "date", "+%Y"]);
    let (o, e, _) = out(c);
    assert!(o.trim_end().ends_with("OK status=0"), "{o} {e}");
    assert!(!e.contains("guard:"), "{e}");
    let ev = env
        .broker
        .wait_for("monitored read", |e| e.rule == "secret-files");
    assert_eq!(
        (ev.decision.as_str(), ev.enforce_decision.as_str()),
        ("allow", "deny")
    );
    let ev = env.broker.wait_for("monitored exec", |e| {
        e.rule == "no-date" && e.action == "exec"
    });
    assert_eq!(
        (ev.decision.as_str(), ev.enforce_decision.as_str()),
        ("allow", "deny")
    );
}

fn static_binary() -> Option<std::path::PathBuf> {
    let dir = build_dir();
    let out = dir.join(format!("static-hello-{}", std::process::id()));
    let ok = std::process::Command::new("cc")
        .args(["-static", "-O1", "-o"])
        .arg(&out)
        .arg(program_src("c/static_hello.c"))
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        eprintln!("SKIP: no static libc (cc -static failed)");
        return None;
    }
    Some(out)
}

#[test]
fn static_binaries_are_recorded_as_unguardable() {
    let Some(bin) = static_binary() else { return };
    let s = bin.to_string_lossy().into_owned();
    let env = Env::new("pol-static");
    let mut c = env.cmd(probe());
    c.args(["spawnp", &s]);
    let (o, e, _) = out(c);
    assert_eq!(o, "static hello\nOK status=0\n", "{e}");
    let ev = env
        .broker
        .wait_for("unguardable", |e| e.action == "exec-unguardable");
    assert_eq!(ev.target, s);
    assert_eq!(ev.decision, "audit");
    assert!(ev.reason.contains("statically linked"), "{ev:?}");

    let policy = POLICY.replace(
        "default = \"allow\"",
        "default = \"allow\"\nunguardable_exec = \"deny\"",
    );
    let env = Env::with_policy("pol-static-deny", &policy);
    let mut c = env.cmd(probe());
    c.args(["spawnp", &s]);
    let (o, e, _) = out(c);
    assert_eq!(o.trim(), "ERR EACCES", "{e}");
    assert!(e.contains("guard: exec of static-hello"), "{e}");
    let ev = env
        .broker
        .wait_for("unguardable deny", |e| e.action == "exec-unguardable");
    assert_eq!(ev.decision, "deny");
}

#[test]
fn su_payload_is_evaluated() {
    let Some(su) = which("su") else {
        eprintln!("SKIP: su is not installed");
        return;
    };
    let env = Env::new("pol-su");
    let mut c = env.cmd(probe());
    c.args(["execvp", &su.to_string_lossy(), "-c", "date +%s", "nobody"]);
    let (o, e, _) = out(c);
    assert_eq!(o.trim(), "ERR EACCES", "{e}");
    assert!(
        e.contains("guard: exec of su denied by rule no-date"),
        "{e}"
    );
    // su is setuid: the preload cannot follow it, which is recorded too.
    env.broker.wait_for("setuid su", |e| {
        e.action == "exec-unguardable" && e.target.ends_with("/su")
    });
}

#[test]
fn connect_rules_see_host_names_from_getaddrinfo() {
    let Some(python) = python() else {
        panic!("python3 is required")
    };
    let policy = format!(
        "{POLICY}\n[[rule]]\nid = \"no-localhost-7\"\non = \"connect\"\nhosts = [\"localhost\"]\n\
         ports = [7]\ndecision = \"deny\"\nexamples = {{ match = [\"localhost:7\"] }}\n"
    );
    let env = Env::with_policy("pol-hosts", &policy);
    let run_py = |host: &str| {
        let mut c = env.cmd(&python);
        c.arg(program_src("python/probe.py"))
            .args(["connect", host, "7"]);
        out(c).0
    };
    assert_eq!(run_py("localhost").trim(), "ERR PermissionError 13");
    assert_eq!(run_py("127.0.0.1").trim(), "ERR ConnectionRefusedError 111");
    let ev = env
        .broker
        .wait_for("host rule", |e| e.rule == "no-localhost-7");
    assert!(ev.target.contains("localhost"), "{ev:?}");
}

#[test]
fn children_cannot_swap_the_ruleset_or_drop_the_preload() {
    let env = Env::new("pol-swap");
    let mut c = env.cmd("/bin/bash");
    c.args([
        "-c",
        &format!(
            "GUARD_RULESET=/nonexistent GUARD_SOCKET=/dev/null cat {}",
            env.h("secret/key")
        ),
    ]);
    let (o, e, code) = out(c);
    assert_eq!((o.as_str(), code), ("", Some(1)));
    assert!(
        e.contains("Permission denied") && !e.contains("guard: ruleset"),
        "{e}"
    );
    // The event still reaches the real broker.
    env.broker.wait_for("cat's event", |e| {
        e.rule == "secret-files" && e.exe.ends_with("/cat")
    });
}

#[test]
fn ask_fails_closed_when_the_broker_does_not_answer() {
    let env = Env::new("pol-ask");
    let mut c = env.cmd(probe());
    c.args(["spawnp", "touch", &env.h("public/t")]);
    let (o, e, _) = out(c);
    assert_eq!(o.trim(), "ERR EACCES", "{e}");
    assert_eq!(
        e.trim(),
        format!(
            "guard: exec touch {} needs approval (rule ask-touch) but the broker is unreachable: denied",
            env.h("public/t")
        )
    );
    assert!(!env.home().join("public/t").exists());
    let ev = env.broker.wait_for("ask exec", |e| e.rule == "ask-touch");
    assert_eq!((ev.action.as_str(), ev.decision.as_str()), ("exec", "deny"));
    assert!(
        ev.reason.starts_with("approval: the broker is unreachable"),
        "{ev:?}"
    );
}

/// A `when.cwd` rule makes the same path's verdict depend on the current directory, for relative
/// and absolute names alike: the library's per-process memo of allowed accesses must not answer
/// for it (it turns itself off for such rulesets), the fast open path must pass the cwd for
/// absolute names too, and with a path-only policy the memo must never blur two names.
#[test]
fn verdicts_follow_the_cwd_within_one_process() {
    let policy = format!(
        "{POLICY}\n[[rule]]\nid = \"prod-config\"\non = \"file\"\npaths = [\"**/app.conf\"]\n\
         decision = \"deny\"\nreason = \"production config\"\nwhen = {{ cwd = [\"~/prod/**\", \"~/prod\"] }}\n\
         examples = {{ match = [\"~/prod/app.conf\"] }}\n"
    );
    let env = Env::with_policy("pol-cwd-memo", &policy);
    for d in ["dev", "prod"] {
        std::fs::create_dir_all(env.home().join(d)).unwrap();
        std::fs::write(env.home().join(d).join("app.conf"), "x\n").unwrap();
    }
    // Same relative name: dev's file (allowed), then prod's file from prod (denied).
    let mut c = env.cmd(probe());
    c.current_dir(env.home().join("dev"));
    c.args(["reopen", "app.conf", &env.h("prod")]);
    assert_eq!(out(c).0.trim(), "first=OK second=EACCES");
    // Same absolute name, first from dev (allowed), then from prod (denied by the cwd rule).
    let mut c = env.cmd(probe());
    c.current_dir(env.home().join("dev"));
    c.args(["reopen", &env.h("dev/app.conf"), &env.h("prod")]);
    assert_eq!(out(c).0.trim(), "first=OK second=EACCES");
    // The path-only test policy (memo on): a second, different name is judged on its own.
    let env = Env::new("pol-memo");
    std::fs::write(env.home().join("public/k"), "x\n").unwrap();
    let mut c = env.cmd(probe());
    c.current_dir(env.home().join("public"));
    c.args(["reopen", "k", &env.h("secret")]);
    assert_eq!(out(c).0.trim(), "first=OK second=EACCES");
    let mut c = env.cmd(probe());
    c.current_dir(env.home().join("public"));
    c.args(["reopen", "key", &env.h("secret")]);
    assert_eq!(out(c).0.trim(), "first=ENOENT second=EACCES");
}
