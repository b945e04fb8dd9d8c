//! C programs under libguard: every hooked libc entry point, in the three builds that import
//! different symbols (-O0; -O2 -D_FORTIFY_SOURCE=2 → `__open_2`/`__openat_2`;
//! -D_FILE_OFFSET_BITS=64 → `open64`, `fopen64`, ...). Each case checks the error the program
//! really saw and the audit event the fake broker received.

mod hooks_support;

use hooks_support::*;
use std::path::PathBuf;

const VARIANTS: [(&str, &[&str]); 3] = [
    ("O0", &["-O0"]),
    ("fortify", &["-O2", "-D_FORTIFY_SOURCE=2"]),
    (
        "lfs64",
        &["-O2", "-D_FORTIFY_SOURCE=2", "-D_FILE_OFFSET_BITS=64"],
    ),
];

fn probe_build(name: &str, flags: &[&str]) -> PathBuf {
    cc("c/probe.c", &format!("probe-{name}"), flags)
}

fn probe(variant: usize) -> PathBuf {
    let (name, flags) = VARIANTS[variant];
    probe_build(name, flags)
}

fn p(env: &Env, bin: &PathBuf, args: &[&str]) -> (String, String) {
    let mut c = env.cmd(bin);
    c.args(args);
    let (o, e, _) = out(c);
    (o, e)
}

#[test]
fn file_opens_in_every_build() {
    let env = Env::new("c-files");
    for (vname, flags) in VARIANTS {
        let bin = probe_build(vname, flags);
        let secret = env.h("secret/key");
        let (o, _) = p(&env, &bin, &["read", &secret]);
        assert_eq!(o.trim(), "ERR EACCES", "{} read secret", vname);
        let (o, _) = p(&env, &bin, &["openat", &secret]);
        assert_eq!(o.trim(), "ERR EACCES", "{} openat secret", vname);
        let (o, _) = p(&env, &bin, &["fopen", &secret, "r"]);
        assert_eq!(o.trim(), "ERR EACCES", "{} fopen secret", vname);
        let (o, _) = p(&env, &bin, &["read", &env.h("public/file")]);
        assert_eq!(o.trim(), "OK", "{} read public", vname);
        let (o, _) = p(&env, &bin, &["read", &env.h("protected/file")]);
        assert_eq!(o.trim(), "OK", "{} read protected", vname);
        let (o, _) = p(&env, &bin, &["write", &env.h("protected/file")]);
        assert_eq!(o.trim(), "ERR EACCES", "{} write protected", vname);
        let (o, _) = p(&env, &bin, &["creat", &env.h("protected/new")]);
        assert_eq!(o.trim(), "ERR EACCES", "{} creat protected", vname);
        let (o, _) = p(&env, &bin, &["fopen", &env.h("protected/file"), "a"]);
        assert_eq!(o.trim(), "ERR EACCES", "{} fopen append protected", vname);
        let (o, _) = p(&env, &bin, &["truncate", &env.h("protected/file")]);
        assert_eq!(o.trim(), "ERR EACCES", "{} truncate protected", vname);
        let (o, _) = p(&env, &bin, &["write", &env.h("public/out")]);
        assert_eq!(o.trim(), "OK", "{} write public", vname);
    }
    assert!(!env.home().join("protected/new").exists());
    assert_eq!(
        std::fs::read_to_string(env.home().join("protected/file")).unwrap(),
        "keep\n"
    );
    let e = env.broker.wait_for("read deny", |e| {
        e.action == "read" && e.target.ends_with("/secret/key")
    });
    assert_eq!(e.decision, "deny");
    assert_eq!(e.enforce_decision, "deny");
    assert_eq!(e.rule, "secret-files");
    assert_eq!(e.reason, "test secrets are off limits");
    assert!(e.tags.contains("OWASP-LLM06"), "{e:?}");
    assert_eq!(e.session, "test-session");
    assert_eq!(e.runtime, "native");
    assert!(e.exe.contains("probe-"), "{e:?}");
    assert_eq!(e.target, env.h("secret/key"));
    env.broker.wait_for("write deny", |e| {
        e.action == "write" && e.target.ends_with("/protected/file") && e.rule == "protected-tree"
    });
    env.broker
        .assert_none("for allowed opens", |e| e.target.contains("/public/"));
}

#[test]
fn relative_paths_symlinks_and_proc_aliases() {
    let env = Env::new("c-paths");
    let bin = probe(0);
    std::os::unix::fs::symlink(
        env.home().join("secret/key"),
        env.home().join("public/link"),
    )
    .unwrap();
    std::os::unix::fs::symlink(env.home().join("secret"), env.home().join("public/dirlink"))
        .unwrap();
    // A dangling link into the protected tree: O_CREAT would follow it.
    std::os::unix::fs::symlink(
        env.home().join("protected/created"),
        env.home().join("public/dang"),
    )
    .unwrap();
    let cases = [
        ("read", env.h("public/link")),
        ("read", env.h("public/dirlink/key")),
        ("read", "../secret/key".to_string()),
        ("read", "../public/../secret//./key".to_string()),
        ("read", format!("/proc/self/root{}", env.h("secret/key"))),
        ("write", env.h("public/dang")),
    ];
    for (op, path) in &cases {
        let (o, _) = p(&env, &bin, &[op, path]);
        assert_eq!(o.trim(), "ERR EACCES", "{op} {path}");
    }
    assert!(!env.home().join("protected/created").exists());
    // The event names the protected file, whichever name was used.
    env.broker.wait_for("deny through a symlink", |e| {
        e.rule == "secret-files" && e.target == env.h("secret/key")
    });
}

/// `fopen` for reading takes the open fast path (`openat2` without symlinks, then `fdopen`):
/// the stream must behave exactly like libc's own, and a symlink still cannot lead to a denied
/// file whatever the mode string says.
#[test]
fn fopen_read_modes() {
    let env = Env::new("c-fopen");
    std::fs::write(env.home().join("public/lines"), "first line\nsecond\n").unwrap();
    std::os::unix::fs::symlink(env.home().join("secret/key"), env.home().join("public/fl"))
        .unwrap();
    for (vname, flags) in VARIANTS {
        let bin = probe_build(vname, flags);
        for (mode, cloexec) in [("r", 0), ("rb", 0), ("re", 1), ("rbe", 1), ("reb", 1)] {
            let (o, _) = p(&env, &bin, &["fread", &env.h("public/lines"), mode]);
            assert_eq!(
                o.trim(),
                format!("OK first line cloexec={cloexec}"),
                "{vname} {mode}"
            );
            for target in [env.h("secret/key"), env.h("public/fl")] {
                let (o, _) = p(&env, &bin, &["fread", &target, mode]);
                assert_eq!(o.trim(), "ERR EACCES", "{vname} {mode} {target}");
            }
            let (o, _) = p(&env, &bin, &["fread", &env.h("public/missing"), mode]);
            assert_eq!(o.trim(), "ERR ENOENT", "{vname} {mode} missing");
        }
    }
    env.broker.wait_for("fopen through a symlink", |e| {
        e.rule == "secret-files" && e.target == env.h("secret/key") && e.decision == "deny"
    });
}

#[test]
fn deletes_and_renames() {
    let env = Env::new("c-delete");
    let bin = probe(0);
    let (o, _) = p(&env, &bin, &["unlink", &env.h("protected/file")]);
    assert_eq!(o.trim(), "ERR EACCES");
    let (o, _) = p(
        &env,
        &bin,
        &["rename", &env.h("protected/file"), &env.h("public/moved")],
    );
    assert_eq!(o.trim(), "ERR EACCES", "rename source is a delete");
    let (o, _) = p(
        &env,
        &bin,
        &["rename", &env.h("public/file"), &env.h("protected/file")],
    );
    assert_eq!(o.trim(), "ERR EACCES", "rename target is a write");
    assert_eq!(
        std::fs::read_to_string(env.home().join("protected/file")).unwrap(),
        "keep\n"
    );
    assert!(env.home().join("public/file").exists());
    let (o, _) = p(
        &env,
        &bin,
        &["rename", &env.h("public/file"), &env.h("public/file2")],
    );
    assert_eq!(o.trim(), "OK");
    env.broker.wait_for("delete event", |e| {
        e.action == "delete" && e.target == env.h("protected/file") && e.decision == "deny"
    });
}

#[test]
fn raw_syscall_doors() {
    let env = Env::new("c-syscall");
    let bin = probe(0);
    let (o, _) = p(&env, &bin, &["openat2", &env.h("secret/key")]);
    assert_eq!(o.trim(), "ERR EACCES", "syscall(SYS_openat2)");
    let (o, _) = p(&env, &bin, &["sys-openat", &env.h("secret/key")]);
    assert_eq!(o.trim(), "ERR EACCES", "syscall(SYS_openat)");
    let (o, _) = p(&env, &bin, &["openat2", &env.h("public/file")]);
    assert_eq!(o.trim(), "OK");
    let (o, _) = p(&env, &bin, &["freopen", &env.h("secret/key"), "r"]);
    assert_eq!(o.trim(), "ERR EACCES", "freopen");
    let (o, _) = p(&env, &bin, &["io_uring", "x"]);
    assert_eq!(o.trim(), "ERR ENOSYS", "io_uring_setup is refused");
    env.broker.wait_for("openat2 event", |e| {
        e.action == "read" && e.rule == "secret-files"
    });
}

#[test]
fn audit_and_ask_decisions() {
    let env = Env::new("c-audit");
    let bin = probe(0);
    let (o, _) = p(&env, &bin, &["read", &env.h("notes/n.txt")]);
    assert_eq!(o.trim(), "OK", "audit allows");
    let e = env.broker.wait_for("audit", |e| e.rule == "audited-notes");
    assert_eq!((e.action.as_str(), e.decision.as_str()), ("read", "audit"));
    assert_eq!(e.target, env.h("notes/n.txt"));
    let (o, _) = p(&env, &bin, &["write", &env.h("drafts/d.txt")]);
    assert_eq!(
        o.trim(),
        "ERR EACCES",
        "ask fails closed until approvals exist"
    );
    let e = env.broker.wait_for("ask", |e| e.rule == "ask-drafts");
    assert_eq!(e.decision, "deny");
    assert!(e.reason.contains("approval"), "{e:?}");
}

#[test]
fn exec_family_is_gated() {
    let env = Env::new("c-exec");
    let bin = probe(0);
    let date = which("date").expect("date");
    let date_s = date.to_string_lossy().into_owned();
    for args in [
        vec!["execl", date_s.as_str(), "+%s"],
        vec!["execvp", "date"],
        vec!["spawnp", "date"],
        vec!["execve-empty-env", date_s.as_str()],
        vec!["execlp", "date", "+%s"],
        vec!["execle-empty-env", date_s.as_str()],
        vec!["fexecve", date_s.as_str()],
        vec!["sys-execve", date_s.as_str()],
    ] {
        let (o, e) = p(&env, &bin, &args);
        assert_eq!(o.trim(), "ERR EACCES", "{args:?}");
        assert_eq!(
            e.trim(),
            "guard: exec of date denied by rule no-date: date is forbidden in tests",
            "{args:?}"
        );
    }
    let e = env
        .broker
        .wait_for("exec deny", |e| e.action == "exec" && e.rule == "no-date");
    assert_eq!(e.decision, "deny");
    assert!(
        e.target.starts_with("date") || e.target.contains("/date"),
        "{e:?}"
    );
    // Allowed execs are recorded too.
    let (o, _) = p(&env, &bin, &["spawnp", "true"]);
    assert_eq!(o.trim(), "OK status=0");
    env.broker.wait_for("allowed exec", |e| {
        e.action == "exec" && e.target == "true" && e.decision == "allow"
    });
    if which("git").is_some() {
        let (o, e) = p(
            &env,
            &bin,
            &["execvp", "git", "push", "--force", "origin", "main"],
        );
        assert_eq!(o.trim(), "ERR EACCES");
        assert!(
            e.contains("guard: exec of git denied by rule git-force-push"),
            "{e}"
        );
    }
}

#[test]
fn system_and_popen_keep_the_guard_after_unsetenv() {
    let env = Env::new("c-system");
    let bin = probe(0);
    let lib = env.lib.to_string_lossy().into_owned();
    // system() runs sh; sh's exec of date is refused in the child, which reports 126.
    let (o, e) = p(&env, &bin, &["unset-system", "date"]);
    assert_eq!(o.trim(), "OK status=126", "stderr: {e}");
    assert!(
        e.contains("guard: exec of date denied by rule no-date"),
        "{e}"
    );
    let (o, _) = p(
        &env,
        &bin,
        &["unset-system", "env | grep -c '^LD_PRELOAD=' ; exit 3"],
    );
    assert_eq!(o.trim(), "1\nOK status=3");
    let (o, _) = p(&env, &bin, &["popen", "env"]);
    assert!(o.contains(&format!("LD_PRELOAD={lib}")), "{o}");
    assert!(o.contains("GUARD_SESSION=test-session"), "{o}");
    assert!(o.trim_end().ends_with("OK status=0"), "{o}");
    env.broker
        .wait_for("exec event from the system() child", |e| {
            e.action == "exec" && e.rule == "no-date" && e.exe.ends_with("sh")
        });
}

#[test]
fn child_environment_is_reinjected_and_stripped() {
    let env = Env::new("c-env");
    let bin = probe(0);
    let envbin = which("env").unwrap();
    let envs = envbin.to_string_lossy().into_owned();
    let mut c = env.cmd(&bin);
    c.args(["execve-empty-env", &envs]);
    let (o, _, _) = out(c);
    let lib = env.lib.to_string_lossy().into_owned();
    let mut c = env.cmd(&bin);
    c.args(["execle-empty-env", &envs]);
    let (o2, _, _) = out(c);
    assert_eq!(
        o, o2,
        "execle with an empty envp gets the same re-injected environment"
    );
    assert!(o.contains(&format!("LD_PRELOAD={lib}\n")), "{o}");
    for v in [
        "GUARD_SOCKET=",
        "GUARD_RULESET=",
        "GUARD_SESSION=test-session",
        "GUARD_AGENT=test-agent",
        "GUARD_MODEL=test-model",
        "GUARD_WORKSPACE=",
        "UV_USE_IO_URING=0",
    ] {
        assert!(o.contains(v), "missing {v} in {o}");
    }
    // Other preloaded libraries keep their place; stripped variables are gone.
    let mut c = env.cmd(&bin);
    c.env("LD_PRELOAD", format!("{lib}:/nonexistent/other.so"))
        .env("STRIPME_TOKEN", "t0ps3cret")
        .env("KEEPME", "1")
        .env("UV_USE_IO_URING", "1")
        .args(["execvp", "env"]);
    let (o, _, _) = out(c);
    assert!(
        o.contains(&format!("LD_PRELOAD={lib}:/nonexistent/other.so\n")),
        "{o}"
    );
    assert!(!o.contains("STRIPME_TOKEN"), "{o}");
    assert!(o.contains("KEEPME=1"), "{o}");
    assert!(
        o.contains("UV_USE_IO_URING=0") && !o.contains("UV_USE_IO_URING=1"),
        "{o}"
    );
}

#[test]
fn connect_is_gated() {
    let env = Env::new("c-connect");
    let bin = probe(0);
    let (o, _) = p(&env, &bin, &["connect", "127.0.0.1", "9"]);
    assert_eq!(o.trim(), "ERR EACCES");
    // A port no rule covers reaches the kernel (nothing listens there).
    let (o, _) = p(&env, &bin, &["connect", "127.0.0.1", "10"]);
    assert_eq!(o.trim(), "ERR ECONNREFUSED");
    let e = env
        .broker
        .wait_for("connect deny", |e| e.action == "connect");
    assert_eq!(
        (e.decision.as_str(), e.rule.as_str()),
        ("deny", "no-discard-port")
    );
    assert!(e.target.contains("127.0.0.1:9"), "{e:?}");
}

/// Datagrams with a destination and TCP Fast Open reach an address without `connect`: the
/// same rules apply (a batch with one forbidden destination sends nothing).
#[test]
fn sends_with_a_destination_are_gated_like_connect() {
    let env = Env::new("c-sendto");
    let bin = probe(0);
    for op in [
        "udp-sendto",
        "udp-sendmsg",
        "udp-sendmmsg",
        "udp-syscall",
        "tcp-fastopen",
    ] {
        let (o, _) = p(&env, &bin, &[op, "127.0.0.1", "9"]);
        assert_eq!(o.trim(), "ERR EACCES", "{op} to a denied port");
    }
    for op in ["udp-sendto", "udp-sendmsg", "udp-syscall"] {
        let (o, _) = p(&env, &bin, &[op, "127.0.0.1", "10"]);
        assert_eq!(o.trim(), "OK", "{op} to an allowed port");
    }
    // Fast Open to an allowed port reaches the kernel (nothing listens: refused, or the data
    // is queued for a connection that fails later; either way not EACCES).
    let (o, _) = p(&env, &bin, &["tcp-fastopen", "127.0.0.1", "10"]);
    assert_ne!(o.trim(), "ERR EACCES");
    let e = env.broker.wait_for("sendto deny", |e| {
        e.action == "connect" && e.target.contains("127.0.0.1:9")
    });
    assert_eq!(
        (e.decision.as_str(), e.rule.as_str()),
        ("deny", "no-discard-port")
    );
}

/// A hard link is a second name for the same file: it must not turn a denied or redacted file
/// into one the rules do not name (`ln ~/secret/key /tmp/k`, `mv .env /tmp/e`); and creating a
/// name (link, symlink, directory) inside a write-protected tree is a write there.
#[test]
fn hard_links_and_moves_cannot_rename_a_file_out_of_its_rules() {
    let policy = format!(
        "{POLICY}\n[[rule]]\nid = \"env-redact\"\non = \"file\"\npaths = [\"**/.env\"]\n\
         access = [\"read\"]\ndecision = \"redact\"\nreason = \"dotenv\"\n\
         examples = {{ match = [\"~/.env\"] }}\n"
    );
    let env = Env::with_policy("c-links", &policy);
    let bin = probe(0);
    std::fs::write(env.home().join("public/.env"), "TOKEN=abc\n").unwrap();
    std::os::unix::fs::symlink(env.home().join("secret/key"), env.home().join("public/sk"))
        .unwrap();
    std::os::unix::fs::symlink(env.home().join("public/.env"), env.home().join("public/el"))
        .unwrap();
    let out_dir = env.sb.root.join("elsewhere");
    std::fs::create_dir_all(&out_dir).unwrap();
    let dst = |n: &str| out_dir.join(n).to_string_lossy().into_owned();
    let cases = [
        ("link", env.h("secret/key"), dst("k1")),
        ("link-syscall", env.h("secret/key"), dst("k2")),
        ("linkat-follow", env.h("public/sk"), dst("k3")),
        ("link", env.h("public/.env"), dst("e1")),
        ("linkat-follow", env.h("public/el"), dst("e2")),
        ("rename", env.h("public/.env"), dst("e3")),
        ("link", env.h("public/file"), env.h("protected/new-link")),
        ("symlink", env.h("public/file"), env.h("protected/new-sym")),
        ("mkdir", env.h("protected/new-dir"), String::new()),
    ];
    for (op, a, b) in &cases {
        let (o, _) = p(&env, &bin, &[op, a, b]);
        assert_eq!(o.trim(), "ERR EACCES", "{op} {a} {b}");
    }
    assert_eq!(std::fs::read_dir(&out_dir).unwrap().count(), 0);
    assert!(env.home().join("public/.env").exists());
    for n in ["new-link", "new-sym", "new-dir"] {
        assert!(!env.home().join("protected").join(n).exists(), "{n}");
    }
    // Links of plain files still work.
    let (o, _) = p(&env, &bin, &["link", &env.h("public/file"), &dst("ok")]);
    assert_eq!(o.trim(), "OK");
    let (o, _) = p(&env, &bin, &["symlink", &env.h("secret/key"), &dst("sym")]);
    assert_eq!(
        o.trim(),
        "OK",
        "a symlink to a denied file is harmless: opens judge its target"
    );
    let (o, _) = p(&env, &bin, &["read", &dst("sym")]);
    assert_eq!(o.trim(), "ERR EACCES");
    env.broker.wait_for("link of a denied file", |e| {
        e.rule == "secret-files" && e.decision == "deny"
    });
}

/// A directory carries every file below it: moving `~/secret` (whose files a rule denies) to
/// another name, or moving a directory of one's own onto a name whose subtree a write rule
/// protects, would sidestep those rules. Both are refused, from C, bash and Python; moves that
/// carry nothing a rule protects still work.
#[test]
fn moving_a_directory_cannot_carry_files_out_of_their_rules() {
    let policy = format!(
        "{POLICY}\n[[rule]]\nid = \"hook-scripts\"\non = \"file\"\npaths = [\"~/cfg/hooks/**\"]\n\
         access = [\"write\"]\ndecision = \"deny\"\nreason = \"hook scripts run later\"\n\
         examples = {{ match = [\"write ~/cfg/hooks/pre-commit\"] }}\n"
    );
    let env = Env::with_policy("c-dirmove", &policy);
    let bin = probe(0);
    let elsewhere = env.sb.root.join("elsewhere");
    std::fs::create_dir_all(elsewhere.join("mine/hooks")).unwrap();
    std::fs::write(elsewhere.join("mine/hooks/pre-commit"), "#!/bin/sh\n").unwrap();
    let away = elsewhere.join("s").to_string_lossy().into_owned();
    let (o, _) = p(&env, &bin, &["rename", &env.h("secret"), &away]);
    assert_eq!(o.trim(), "ERR EACCES", "moving the denied tree away");
    let mine = elsewhere.join("mine").to_string_lossy().into_owned();
    let (o, _) = p(&env, &bin, &["rename", &mine, &env.h("cfg")]);
    assert_eq!(o.trim(), "ERR EACCES", "moving a tree onto a protected one");
    // The same through bash's mv and Python's os.rename.
    let mut c = env.cmd("bash");
    c.arg("-c").arg(format!("mv {} {away}", env.h("secret")));
    let (_, e, code) = out(c);
    assert_ne!(code, Some(0), "mv must fail");
    assert!(e.contains("Permission denied"), "{e}");
    if let Some(py) = python() {
        let mut c = env.cmd(py);
        c.args(["-c", "import os,sys; os.rename(sys.argv[1], sys.argv[2])"])
            .arg(env.h("secret"))
            .arg(&away);
        let (_, e, code) = out(c);
        assert_ne!(code, Some(0));
        assert!(e.contains("PermissionError"), "{e}");
    }
    assert!(env.home().join("secret/key").exists());
    assert!(!elsewhere.join("s").exists());
    assert!(!env.home().join("cfg").exists());
    // Nothing protected below: the move goes through.
    std::fs::create_dir_all(env.home().join("public/sub/inner")).unwrap();
    let (o, _) = p(
        &env,
        &bin,
        &["rename", &env.h("public/sub"), &env.h("public/sub2")],
    );
    assert_eq!(o.trim(), "OK");
    assert!(env.home().join("public/sub2/inner").is_dir());
    let e = env.broker.wait_for("the refused move of ~/secret", |e| {
        e.rule == "secret-files" && e.action == "delete" && e.decision == "deny"
    });
    assert_eq!(e.target, env.h("secret"));
    env.broker.wait_for("the refused move onto ~/cfg", |e| {
        e.rule == "hook-scripts" && e.action == "write" && e.target == env.h("cfg")
    });
}
