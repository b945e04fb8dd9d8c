//! The session broker against hostile and honest local clients, and `guardctl log` over what it
//! wrote. The test plays the guarded processes itself: it reads `GUARD_SOCKET` from a command
//! that waits, connects, and sends frames.

use guard_e2e::{Sandbox, guardctl_path};
use guard_proto::wire::{Event, Message, encode_frame};
use serde_json::Value;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn guardctl(sb: &Sandbox) -> Command {
    let mut c = Command::new(guardctl_path());
    c.current_dir(sb.workspace())
        .env("HOME", sb.home())
        .env("GUARD_STATE_DIR", sb.state())
        .env_remove("LD_PRELOAD")
        .env_remove("XDG_STATE_HOME")
        .env_remove("XDG_RUNTIME_DIR");
    c
}

fn wait_for(path: &Path) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if std::fs::metadata(path).is_ok_and(|m| m.len() > 0) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Starts a session whose command publishes its socket path and waits for a `go` file. It uses
/// shell builtins only (sleeping is a `read -t` on a FIFO), so libguard records no exec events
/// and the only events in the session are the ones the test sends.
fn start_session(sb: &Sandbox, agent: &str) -> (Child, String) {
    let sockfile = sb.root.join("socket.txt");
    let go = sb.root.join("go");
    let fifo = sb.root.join("fifo");
    let _ = std::fs::remove_file(&sockfile);
    let _ = std::fs::remove_file(&go);
    if !fifo.exists() {
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    }
    let script = format!(
        "exec 9<>{f}; printf %s \"$GUARD_SOCKET\" > {s}; while [ ! -e {g} ]; do read -t 0.02 -u 9; done; exit 0",
        f = fifo.display(),
        s = sockfile.display(),
        g = go.display()
    );
    let child = guardctl(sb)
        .args([
            "run",
            "--agent",
            agent,
            "--model",
            "test-model",
            "--",
            "bash",
            "-c",
            &script,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(wait_for(&sockfile), "session never started");
    (child, std::fs::read_to_string(&sockfile).unwrap())
}

fn end_session(sb: &Sandbox, child: Child) -> Output {
    std::fs::write(sb.root.join("go"), b"").unwrap();
    child.wait_with_output().unwrap()
}

fn event<'a>(
    target: &'a str,
    decision: &'a str,
    enforce: &'a str,
    rule: &'a str,
    dropped: u64,
) -> Event<'a> {
    Event {
        session: "forged-session",
        pid: 4242,
        ppid: 4241,
        exe: "/usr/bin/cat",
        runtime: "native",
        cwd: "/work/project",
        action: "read",
        target,
        decision,
        enforce_decision: enforce,
        rule,
        reason: "test reason",
        tags: "OWASP-LLM06,ATLAS-AML.T0055",
        dropped_before: dropped,
        approval_id: 0,
        approval_answer: "",
        approval_who: "",
        approval_latency_ms: 0,
    }
}

fn frame(ev: Event<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; 4096];
    let n = encode_frame(&Message::Event(ev), &mut buf).unwrap();
    buf.truncate(n);
    buf
}

/// True when the broker closed the connection (EOF or reset) within the timeout.
fn closed_by_peer(s: &mut UnixStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut b = [0u8; 16];
    match s.read(&mut b) {
        Ok(n) => n == 0,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

#[test]
fn broker_survives_hostile_clients_and_records_events() {
    let sb = Sandbox::new("lb-broker");
    let (child, socket) = start_session(&sb, "agent-under-test");

    // Garbage, a wrong version, an oversized length prefix: each closes only its own connection.
    let mut garbage = UnixStream::connect(&socket).unwrap();
    garbage
        .write_all(b"\x05\x00\x00\x00\x01\xff\xff\xff\xff")
        .unwrap();
    let mut badver = UnixStream::connect(&socket).unwrap();
    badver.write_all(&[3, 0, 0, 0, 9, 0, 0]).unwrap();
    let mut huge = UnixStream::connect(&socket).unwrap();
    huge.write_all(&[0xff, 0xff, 0xff, 0x7f]).unwrap();
    huge.write_all(&[0x41; 8192]).unwrap_or(());
    for (name, s) in [
        ("garbage", &mut garbage),
        ("bad version", &mut badver),
        ("oversized", &mut huge),
    ] {
        assert!(
            closed_by_peer(s),
            "{name}: connection should be closed by the broker"
        );
    }
    // A half frame that never completes does not block other clients.
    let mut half = UnixStream::connect(&socket).unwrap();
    let f = frame(event("/never", "deny", "deny", "x", 0));
    half.write_all(&f[..f.len() / 2]).unwrap();

    // An honest client, sending two frames in one write and one byte by byte.
    let mut good = UnixStream::connect(&socket).unwrap();
    let mut both = frame(event(
        "/home/u/.ssh/id_ed25519",
        "deny",
        "deny",
        "ssh-private-keys",
        5,
    ));
    both.extend(frame(event(
        "/work/project/README.md",
        "allow",
        "deny",
        "",
        0,
    )));
    good.write_all(&both).unwrap();
    let mut slow = UnixStream::connect(&socket).unwrap();
    for b in frame(event(
        "/work/project/slow",
        "audit",
        "audit",
        "slow-rule",
        2,
    )) {
        slow.write_all(&[b]).unwrap();
    }
    drop((good, slow));
    std::thread::sleep(Duration::from_millis(100));

    let out = end_session(&sb, child);
    drop(half);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let summary = stderr
        .lines()
        .find(|l| l.starts_with("guard: session "))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(
        summary.contains(": 3 events (7 dropped), audit log "),
        "{summary}"
    );
    let log_path = summary.rsplit("audit log ").next().unwrap();
    let session = summary
        .trim_start_matches("guard: session ")
        .split(':')
        .next()
        .unwrap();

    let lines: Vec<Value> = std::fs::read_to_string(log_path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let denied = lines
        .iter()
        .find(|e| e["target"] == "/home/u/.ssh/id_ed25519")
        .unwrap();
    for key in [
        "ts", "session", "agent", "model", "host", "pid", "ppid", "exe", "runtime", "cwd",
        "action", "target", "decision", "rule", "reason", "tags",
    ] {
        assert!(denied.get(key).is_some(), "missing {key}: {denied}");
    }
    assert_eq!(
        denied["session"], session,
        "the broker's session id wins over the client's"
    );
    assert_eq!(denied["agent"], "agent-under-test");
    assert_eq!(denied["model"], "test-model");
    assert_eq!(denied["host"], host.trim());
    assert_eq!(denied["pid"], 4242);
    assert_eq!(denied["rule"], "ssh-private-keys");
    assert_eq!(
        denied["tags"],
        serde_json::json!(["OWASP-LLM06", "ATLAS-AML.T0055"])
    );
    assert_eq!(denied["dropped_before"], 5);
    assert!(denied.get("enforce_decision").is_none());
    let ts = denied["ts"].as_str().unwrap();
    assert!(
        ts.len() == 24 && ts.ends_with('Z') && ts.as_bytes()[19] == b'.',
        "{ts}"
    );
    let monitored = lines
        .iter()
        .find(|e| e["target"] == "/work/project/README.md")
        .unwrap();
    assert!(monitored["rule"].is_null());
    assert_eq!(monitored["enforce_decision"], "deny");

    // `log --last --json` prints exactly these events; filters narrow them.
    let log = |args: &[&str]| {
        let out = guardctl(&sb).arg("log").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let json = log(&["--last", "--json"]);
    let printed: Vec<Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(printed, lines);
    assert_eq!(log(&["--session", session, "--json"]), json);
    let denies = log(&["--last", "--json", "--decision", "deny"]);
    assert_eq!(denies.lines().count(), 1);
    assert!(denies.contains("id_ed25519"));
    assert_eq!(
        log(&["--last", "--json", "--rule", "slow-rule"])
            .lines()
            .count(),
        1
    );
    assert_eq!(
        log(&["--last", "--json", "--agent", "someone-else"])
            .lines()
            .count(),
        0
    );
    assert_eq!(
        log(&["--last", "--json", "--since", "2000-01-01T00:00:00Z"])
            .lines()
            .count(),
        3
    );
    assert_eq!(
        log(&["--last", "--json", "--since", "2999-01-01T00:00:00Z"])
            .lines()
            .count(),
        0
    );
    let text = log(&["--last"]);
    let header = text.lines().next().unwrap();
    assert!(
        header.starts_with("TIME") && header.contains("DECISION") && header.contains("TARGET"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 4, "{text}");
    assert!(
        text.contains("ssh-private-keys") && text.contains("allow (enforce: deny)"),
        "{text}"
    );

    // A second session becomes `--last`; the first stays reachable by id.
    let (child, _) = start_session(&sb, "second");
    let out = end_session(&sb, child);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(": 0 events (0 dropped)"));
    assert_eq!(log(&["--last", "--json"]), "");
    assert_eq!(log(&["--session", session, "--json"]).lines().count(), 3);
    let bad = guardctl(&sb)
        .args(["log", "--session", "../../etc/passwd"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn log_without_sessions_fails_cleanly() {
    let sb = Sandbox::new("lb-empty");
    let out = guardctl(&sb).args(["log", "--last"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no sessions"));
}
