//! The guard must never crash or hang the program: init order (a DT_NEEDED library's
//! constructor), threads with fork/vfork/spawn, programs that close all fds and reuse the
//! numbers, a dead or stalled broker, and a corrupt ruleset.

mod hooks_support;

use hooks_support::*;
use std::io::Write;
use std::os::unix::net::UnixListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn constructor_of_a_needed_library_is_already_guarded() {
    let env = Env::new("r-initorder");
    let dir = build_dir();
    let lib = dir.join(format!("libearly-{}.so", std::process::id()));
    let st = Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&lib)
        .arg(program_src("c/libearly.c"))
        .status()
        .unwrap();
    assert!(st.success());
    let exe = dir.join(format!("mainearly-{}", std::process::id()));
    let st = Command::new("cc")
        .arg("-o")
        .arg(&exe)
        .arg(program_src("c/mainearly.c"))
        .arg(&lib)
        .arg(format!("-Wl,-rpath,{}", dir.display()))
        .status()
        .unwrap();
    assert!(st.success());
    let mut c = env.cmd(&exe);
    c.env("EARLY_PATH", env.h("secret/key"));
    let (o, e, code) = out(c);
    // Linked -z initfirst, the guard initialises before the library's constructor runs, so
    // the open is denied (not merely "not crashed").
    assert_eq!(o, "ctor ERR EACCES\nmain 42\n", "stderr: {e}");
    assert_eq!(code, Some(0));
    env.broker
        .wait_for("event from a constructor", |e| e.rule == "secret-files");
}

#[test]
fn threads_fork_vfork_and_spawn_do_not_deadlock() {
    let env = Env::new("r-stress");
    let bin = cc("c/stress.c", "stress", &["-O1", "-pthread"]);
    let mut c = env.cmd(&bin);
    c.args([&env.h("secret/key"), "25"]);
    let start = Instant::now();
    let o = run(c, Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        stdout.trim(),
        "DONE",
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success());
    eprintln!("stress took {:?}", start.elapsed());
    // Events came from the parent threads and from forked children (their own connections).
    let evs = env.broker.events();
    let parent = evs
        .iter()
        .filter(|e| e.rule == "secret-files")
        .map(|e| e.pid)
        .min();
    assert!(parent.is_some(), "no events at all");
    assert!(
        evs.iter()
            .filter(|e| e.rule == "secret-files")
            .any(|e| Some(e.pid) != parent),
        "no event from a fork child"
    );
    assert!(evs.iter().any(|e| e.action == "exec" && e.target == "true"));
}

#[test]
fn closing_all_fds_and_reusing_the_numbers() {
    let env = Env::new("r-closeall");
    let bin = cc("c/closeall.c", "closeall", &["-O0"]);
    let victim = env.home().join("public/victim");
    let mut c = env.cmd(&bin);
    c.arg(env.h("secret/key")).arg(&victim);
    let (o, e, _) = out(c);
    assert_eq!(o.trim(), "DONE", "{e}");
    assert_eq!(
        std::fs::read(&victim).unwrap(),
        b"",
        "audit bytes leaked into a reused fd"
    );
    // First event before the close, then the reconnect delivered the later ones.
    let deadline = Instant::now() + Duration::from_secs(10);
    while env
        .broker
        .events()
        .iter()
        .filter(|e| e.rule == "secret-files")
        .count()
        < 6
    {
        assert!(Instant::now() < deadline, "{:#?}", env.broker.events());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn burst(env: &Env, n: usize) -> Command {
    let bin = cc("c/probe.c", "probe-O0", &["-O0"]);
    let mut c = env.cmd(bin);
    let script = format!(
        "i=0; while [ $i -lt {n} ]; do echo '{}'; i=$((i+1)); done | \"$0\" lines",
        env.h("secret/key")
    );
    let mut sh = env.cmd("/bin/sh");
    let _ = &mut c;
    sh.arg("-c").arg(script).arg(c.get_program());
    sh
}

#[test]
fn dead_or_stalled_broker_never_kills_or_hangs() {
    // 1. The socket path exists but nobody listens.
    let env = Env::new("r-deadbroker");
    let dead = env.sb.state().join("dead.sock");
    drop(UnixListener::bind(&dead).unwrap());
    let mut c = burst(&env, 200);
    c.env("GUARD_SOCKET", &dead);
    let o = run(c, Duration::from_secs(30));
    assert!(o.status.success(), "{o:?}");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout)
            .matches("ERR EACCES")
            .count(),
        200
    );

    // 2. A listener that never accepts (backlog fills), and 3. one that accepts, never reads.
    for accept in [false, true] {
        let stalled = env.sb.state().join(format!("stalled-{accept}.sock"));
        let l = UnixListener::bind(&stalled).unwrap();
        let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        if accept {
            let h = held.clone();
            let l2 = l.try_clone().unwrap();
            std::thread::spawn(move || {
                for s in l2.incoming().flatten() {
                    h.lock().unwrap().push(s);
                }
            });
        }
        let mut c = burst(&env, 3000);
        c.env("GUARD_SOCKET", &stalled);
        let start = Instant::now();
        let o = run(c, Duration::from_secs(60));
        assert!(o.status.success(), "accept={accept}: {o:?}");
        assert_eq!(
            String::from_utf8_lossy(&o.stdout)
                .matches("ERR EACCES")
                .count(),
            3000
        );
        eprintln!("stalled broker (accept={accept}): {:?}", start.elapsed());
        drop(l);
    }
}

#[test]
fn dropped_events_are_counted_and_reported() {
    let env = Env::new("r-dropped");
    let sock = env.sb.state().join("late.sock");
    let bin = cc("c/probe.c", "probe-O0", &["-O0"]);
    let mut c = env.cmd(bin);
    c.env("GUARD_SOCKET", &sock)
        .arg("lines")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    use std::io::BufRead;
    for _ in 0..3 {
        writeln!(stdin, "{}", env.h("secret/key")).unwrap();
        line.clear();
        stdout.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ERR EACCES");
    }
    // The broker appears; the next event reports the three it missed.
    let late = Broker::start(&sock);
    writeln!(stdin, "{}", env.h("secret/key")).unwrap();
    line.clear();
    stdout.read_line(&mut line).unwrap();
    drop(stdin);
    let _ = child.wait();
    let e = late.wait_for("first delivered event", |e| e.rule == "secret-files");
    assert_eq!(e.dropped_before, 3);
}

#[test]
fn corrupt_or_missing_ruleset_fails_closed_without_crashing() {
    for (name, bytes) in [
        ("garbage", &b"this is not a ruleset at all"[..]),
        ("empty", &b""[..]),
    ] {
        let env = Env::with_ruleset_bytes(&format!("r-corrupt-{name}"), bytes);
        let bin = cc("c/probe.c", "probe-O0", &["-O0"]);
        let mut c = env.cmd(&bin);
        c.args(["read", &env.h("public/file")]);
        let (o, e, code) = out(c);
        assert_eq!(o.trim(), "OK", "reads stay possible");
        assert_eq!(code, Some(0));
        let _ = e;
        let mut c = env.cmd(&bin);
        c.args(["write", &env.h("public/new")]);
        let (o, e, _) = out(c);
        assert_eq!(o.trim(), "ERR EACCES", "writes fail closed");
        assert_eq!(
            e.matches("guard: ruleset").count(),
            1,
            "one diagnostic line: {e}"
        );
        let mut c = env.cmd(&bin);
        c.args(["execvp", "true"]);
        let (o, e, _) = out(c);
        assert_eq!(o.trim(), "ERR EACCES", "exec fails closed");
        assert!(e.contains("denied by rule ruleset-unavailable"), "{e}");
        let mut c = env.cmd(&bin);
        c.args(["connect", "127.0.0.1", "10"]);
        assert_eq!(out(c).0.trim(), "ERR EACCES", "connect fails closed");
        // Shells still run and can report errors on the terminal / null device.
        let mut c = env.cmd("/bin/sh");
        c.args(["-c", "echo hi 2>/dev/null; echo done"]);
        let (o, _, code) = out(c);
        assert_eq!((o.as_str(), code), ("hi\ndone\n", Some(0)));
        let e = env
            .broker
            .wait_for("degraded event", |e| e.rule == "ruleset-unavailable");
        assert_eq!(e.decision, "deny");
    }
    // GUARD_RULESET pointing nowhere behaves the same.
    let env = Env::with_ruleset_bytes("r-missing", b"x");
    let bin = cc("c/probe.c", "probe-O0", &["-O0"]);
    let mut c = env.cmd(&bin);
    c.env("GUARD_RULESET", env.sb.root.join("nope.bin"))
        .args(["write", &env.h("public/new")]);
    let (o, e, _) = out(c);
    assert_eq!(o.trim(), "ERR EACCES");
    assert!(e.contains("guard: ruleset"), "{e}");
}
