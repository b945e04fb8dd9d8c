//! `guardctl run` as a process supervisor: exit status, signals, environment, directories,
//! policy errors and orphan reaping. Every test has its own HOME, workspace and state directory.

use guard_e2e::{Sandbox, guardctl_path, libguard_path};
use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `guardctl run` confined to the sandbox: its HOME, its state, launched from its workspace.
fn guardctl(sb: &Sandbox) -> Command {
    let mut c = Command::new(guardctl_path());
    c.current_dir(sb.workspace())
        .env("HOME", sb.home())
        .env("GUARD_STATE_DIR", sb.state())
        .env_remove("LD_PRELOAD")
        .env_remove("XDG_STATE_HOME")
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("GUARD_LIB");
    c
}

fn run_sh(sb: &Sandbox, script: &str) -> Output {
    guardctl(sb)
        .args(["run", "--", "sh", "-c", script])
        .output()
        .expect("spawn guardctl")
}

fn wait_for(path: &Path, timeout: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if path.exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn exit_status_is_the_commands() {
    let sb = Sandbox::new("lr-exit");
    for (script, want) in [
        ("exit 0", 0),
        ("exit 3", 3),
        ("kill -9 $$", 128 + 9),
        ("kill -TERM $$", 128 + 15),
    ] {
        let out = run_sh(&sb, script);
        assert_eq!(
            out.status.code(),
            Some(want),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.lines().any(|l| l.starts_with("guard: session ")
                && l.contains(" events (")
                && l.contains("audit log ")),
            "summary line missing: {err}"
        );
    }
    let out = guardctl(&sb)
        .args(["run", "--", "/nonexistent/prog"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(127));
}

#[test]
fn signals_are_forwarded_to_the_command() {
    let sb = Sandbox::new("lr-sig");
    let ready = sb.root.join("ready");
    let script = format!(
        "trap 'echo got-usr1' USR1; trap 'echo got-term; exit 42' TERM; : > {}; while :; do sleep 0.05; done",
        ready.display()
    );
    let child = guardctl(&sb)
        .args(["run", "--", "bash", "-c", &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        wait_for(&ready, Duration::from_secs(10)),
        "command never started"
    );
    let pid = child.id() as libc::pid_t;
    // SAFETY: plain kill(2) on our own child.
    unsafe { libc::kill(pid, libc::SIGUSR1) };
    std::thread::sleep(Duration::from_millis(300));
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(42),
        "stdout {stdout} stderr {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("got-usr1") && stdout.contains("got-term"),
        "{stdout}"
    );
}

fn parse_env(path: &Path) -> HashMap<String, String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn command_gets_the_guard_environment() {
    let sb = Sandbox::new("lr-env");
    let envfile = sb.root.join("env.txt");
    let lib = libguard_path().canonicalize().unwrap();
    let out = guardctl(&sb)
        .env("LD_PRELOAD", "/other/libfoo.so")
        .args([
            "run", "--agent", "agent-x", "--model", "model-y", "--", "sh", "-c",
        ])
        .arg(format!("env > {}", envfile.display()))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let env = parse_env(&envfile);
    let preload: Vec<&str> = env["LD_PRELOAD"].split([':', ' ']).collect();
    assert_eq!(Path::new(preload[0]), lib, "ours first, absolute");
    assert!(
        preload.contains(&"/other/libfoo.so"),
        "existing preload kept: {preload:?}"
    );
    assert_eq!(env["GUARD_AGENT"], "agent-x");
    assert_eq!(env["GUARD_MODEL"], "model-y");
    assert_eq!(
        Path::new(&env["GUARD_WORKSPACE"]),
        sb.workspace().canonicalize().unwrap()
    );
    assert_eq!(env["UV_USE_IO_URING"], "0");
    let socket = PathBuf::from(&env["GUARD_SOCKET"]);
    assert_eq!(socket.parent().unwrap(), sb.state().join("run"));
    let run_mode = std::fs::metadata(sb.state().join("run"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(run_mode & 0o777, 0o700);
    let ruleset = PathBuf::from(&env["GUARD_RULESET"]);
    assert!(
        ruleset.starts_with(sb.state().join("rulesets")) && ruleset.extension().unwrap() == "rules"
    );
    assert_eq!(
        std::fs::metadata(&ruleset).unwrap().permissions().mode() & 0o777,
        0o444
    );
    let session = &env["GUARD_SESSION"];
    assert!(!session.is_empty());
    assert!(
        sb.state()
            .join(format!("sessions/{session}.jsonl"))
            .is_file()
    );

    // Defaults: agent is the command's basename, model "unknown"; a second identical run
    // reuses the cached ruleset and gets a different session id.
    let out = guardctl(&sb)
        .args(["run", "--", "/bin/sh", "-c"])
        .arg(format!("env > {}", envfile.display()))
        .output()
        .unwrap();
    assert!(out.status.success());
    let env2 = parse_env(&envfile);
    assert_eq!(env2["GUARD_AGENT"], "sh");
    assert_eq!(env2["GUARD_MODEL"], "unknown");
    assert_eq!(env2["GUARD_RULESET"], env["GUARD_RULESET"]);
    assert_ne!(&env2["GUARD_SESSION"], session);
    assert!(
        !Path::new(&env2["GUARD_SOCKET"]).exists(),
        "socket removed after the session"
    );
}

#[test]
fn malformed_policy_exits_2_with_location_and_does_not_run() {
    let sb = Sandbox::new("lr-badpol");
    let pol = sb.workspace().join("bad.toml");
    std::fs::write(&pol, "[policy]\nname = \"x\"\ndefault = \"allow\"\n\n[[rule]]\nid = \"r\"\non = \"file\"\npaths = [\"/x\"\n").unwrap();
    let marker = sb.root.join("ran");
    let out = guardctl(&sb)
        .arg("run")
        .arg("--policy")
        .arg(&pol)
        .args(["--", "sh", "-c"])
        .arg(format!(": > {}", marker.display()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(!marker.exists(), "the command must not run");
    let err = String::from_utf8_lossy(&out.stderr);
    let first = err.lines().next().unwrap_or("");
    let rest = first
        .strip_prefix(&format!("{}:", pol.display()))
        .unwrap_or_else(|| panic!("no file: {err}"));
    let mut parts = rest.splitn(3, ':');
    let line: usize = parts
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("no line: {err}"));
    let col: usize = parts
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("no col: {err}"));
    assert!(line >= 1 && col >= 1, "{err}");
}

#[test]
fn double_forked_orphans_are_reparented_and_reaped() {
    let sb = Sandbox::new("lr-orphan");
    let pidfile = sb.root.join("orphan.pid");
    // The subshell exits at once, orphaning `sleep`; as a subreaper guardctl becomes its
    // parent (not init) and must reap it when it exits while the session still runs.
    let script = format!(
        r#"( sleep 0.5 & echo $! > {p} ); sleep 0.2
o=$(cat {p}); pp=$(awk '{{print $4}}' /proc/$o/stat)
[ "$pp" = "$PPID" ] && echo reparented || echo "parent=$pp want=$PPID"
sleep 1
if [ -e /proc/$o ]; then echo "still there: $(awk '{{print $3}}' /proc/$o/stat)"; else echo reaped; fi"#,
        p = pidfile.display()
    );
    let out = guardctl(&sb)
        .args(["run", "--", "bash", "-c", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("reparented"), "{stdout}");
    assert!(stdout.contains("reaped"), "{stdout}");
}

#[test]
fn missing_libguard_is_a_clear_error() {
    // A copy of guardctl in a directory without libguard.so, and GUARD_LIB pointing nowhere.
    let sb = Sandbox::new("lr-nolib");
    let bin = sb.root.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(guardctl_path(), bin.join("guardctl")).unwrap();
    let marker = sb.root.join("ran");
    let out = Command::new(bin.join("guardctl"))
        .current_dir(sb.workspace())
        .env("HOME", sb.home())
        .env("GUARD_STATE_DIR", sb.state())
        .env("GUARD_LIB", sb.root.join("nope/libguard.so"))
        .args(["run", "--", "sh", "-c"])
        .arg(format!(": > {}", marker.display()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(!marker.exists());
    assert!(String::from_utf8_lossy(&out.stderr).contains("libguard.so"));
    // With GUARD_LIB pointing at the real library it runs.
    let out = Command::new(bin.join("guardctl"))
        .current_dir(sb.workspace())
        .env("HOME", sb.home())
        .env("GUARD_STATE_DIR", sb.state())
        .env("GUARD_LIB", libguard_path())
        .args(["run", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn without_guard_state_dir_the_xdg_directories_are_used() {
    let sb = Sandbox::new("lr-xdg");
    let envfile = sb.root.join("env.txt");
    let (state, runtime) = (sb.root.join("xdg-state"), sb.root.join("xdg-run"));
    let out = Command::new(guardctl_path())
        .current_dir(sb.workspace())
        .env("HOME", sb.home())
        .env_remove("GUARD_STATE_DIR")
        .env_remove("LD_PRELOAD")
        .env("XDG_STATE_HOME", &state)
        .env("XDG_RUNTIME_DIR", &runtime)
        .args(["run", "--", "sh", "-c"])
        .arg(format!("env > {}", envfile.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let env = parse_env(&envfile);
    assert_eq!(
        Path::new(&env["GUARD_SOCKET"]).parent().unwrap(),
        runtime.join("guard")
    );
    assert_eq!(
        std::fs::metadata(runtime.join("guard"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
    assert!(Path::new(&env["GUARD_RULESET"]).starts_with(state.join("guard/rulesets")));
    let session = &env["GUARD_SESSION"];
    assert!(
        state
            .join(format!("guard/sessions/{session}.jsonl"))
            .is_file()
    );
    assert!(
        !sb.state().join("sessions").exists(),
        "nothing written to the sandbox's GUARD_STATE_DIR"
    );
}
