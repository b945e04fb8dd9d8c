//! Faults and load for the audit path, with real libguard events: `bench/broker_load.c` forks
//! processes that make paced denied opens under `guardctl run`, so the only events of the
//! session are those opens and the number sent is known exactly.
//!
//! - 4 processes x 2,500 events/s for 60 s: every event stored, none dropped (required in CI).
//! - A writer throttled far below the send rate, and a broker stopped (SIGSTOP) so that the
//!   socket buffers fill: libguard never blocks, and sent = stored + dropped exactly.

use guard_e2e::{Sandbox, guardctl_path};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn guardctl(sb: &Sandbox) -> Command {
    let mut c = Command::new(guardctl_path());
    c.current_dir(sb.workspace())
        .env("HOME", sb.home())
        .env("GUARD_STATE_DIR", sb.state())
        .env_remove("LD_PRELOAD")
        .env_remove("XDG_STATE_HOME")
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("GUARD_LIB")
        .env_remove("GUARD_TEST_WRITER_DELAY_US");
    c
}

/// Compiles the load generator; returns it and the denied file it opens.
fn setup(name: &str) -> (Sandbox, PathBuf, PathBuf) {
    let sb = Sandbox::new(name);
    let ssh = sb.home().join(".ssh");
    std::fs::create_dir_all(&ssh).unwrap();
    let key = ssh.join("id_ed25519");
    std::fs::write(&key, "-----BEGIN OPENSSH PRIVATE KEY-----\n").unwrap();
    let bin = sb.root.join("broker_load");
    let src = guard_e2e::repo_root().join("bench/broker_load.c");
    let st = Command::new("cc")
        .args(["-O2", "-o"])
        .arg(&bin)
        .arg(&src)
        .status()
        .unwrap();
    assert!(st.success());
    (sb, bin, key)
}

struct Result {
    sent: u64,
    max_us: u64,
    stored: u64,
    /// Of `stored`, events that reached the broker through spill files.
    spilled: u64,
    dropped: u64,
    log: PathBuf,
}

fn parse(stdout: &str, sb: &Sandbox) -> Result {
    let (mut sent, mut max_us) = (0, 0);
    for l in stdout.lines() {
        let w: Vec<&str> = l.split_whitespace().collect();
        if w.len() == 4 && w[0] == "sent" {
            sent += w[1].parse::<u64>().unwrap();
            max_us = max_us.max(w[3].parse::<u64>().unwrap());
        }
    }
    let index = std::fs::read_to_string(sb.state().join("sessions/index.jsonl")).unwrap();
    let end: Value = index
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .rfind(|v| v["event"] == "end")
        .unwrap();
    let log = PathBuf::from(end["log"].as_str().unwrap());
    let text = std::fs::read_to_string(&log).unwrap();
    let records: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .collect();
    // `lost` records count events that never arrived (in their `dropped_before`): not events.
    let stored = records.iter().filter(|r| r["action"] != "lost").count() as u64;
    let spilled = records.iter().filter(|r| r["delivery"] == "spill").count() as u64;
    assert_eq!(end["events"].as_u64().unwrap(), stored);
    Result {
        sent,
        max_us,
        stored,
        spilled,
        dropped: end["dropped"].as_u64().unwrap(),
        log,
    }
}

fn verify(sb: &Sandbox, log: &Path) {
    let out = guardctl(sb)
        .arg("log")
        .arg("verify")
        .arg(log)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn ten_thousand_events_per_second_for_sixty_seconds_from_four_processes_lose_nothing() {
    let (sb, bin, key) = setup("audit-load60");
    let start = Instant::now();
    let out = guardctl(&sb)
        .args(["run", "--agent", "load", "--"])
        .arg(&bin)
        .arg(&key)
        .args(["4", "2500", "60"])
        .output()
        .unwrap();
    let took = start.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = parse(&stdout, &sb);
    eprintln!(
        "load: sent {} stored {} dropped {} in {took:?}, slowest open {} us",
        r.sent, r.stored, r.dropped, r.max_us
    );
    assert_eq!(r.sent, 4 * (2500 * 60 + 1));
    assert_eq!(r.dropped, 0, "the broker kept up, nothing may be lost");
    assert_eq!(r.stored, r.sent);
    // The pacing held: 60 s of load, not much more (a slow run would not be 10k/s).
    assert!(took < Duration::from_secs(75), "{took:?}");
    verify(&sb, &r.log);
}

#[test]
fn a_throttled_writer_loses_events_but_counts_every_one() {
    let (sb, bin, key) = setup("audit-slow");
    let out = guardctl(&sb)
        .env("GUARD_TEST_WRITER_DELAY_US", "500")
        .args(["run", "--agent", "slow", "--"])
        .arg(&bin)
        .arg(&key)
        .args(["2", "0", "15000"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = parse(&String::from_utf8_lossy(&out.stdout), &sb);
    eprintln!(
        "slow: sent {} stored {} dropped {} slowest {} us",
        r.sent, r.stored, r.dropped, r.max_us
    );
    assert_eq!(r.sent, 2 * 15001);
    assert!(
        r.dropped > 0,
        "the throttled writer cannot keep up: {}",
        r.dropped
    );
    assert_eq!(
        r.stored + r.dropped,
        r.sent,
        "every event stored or counted"
    );
    verify(&sb, &r.log);
}

#[test]
fn a_stopped_broker_fills_the_socket_buffer_without_blocking_and_drops_are_counted() {
    let (sb, bin, key) = setup("audit-full");
    // In the workspace: the policy lets the agent write there without a question.
    let ws = sb.workspace();
    let (go, done, go2) = (ws.join("go"), ws.join("done"), ws.join("go2"));
    let child = guardctl(&sb)
        .args(["run", "--agent", "full", "--"])
        .arg(&bin)
        .arg(&key)
        .args(["2", "0", "2000"])
        .arg(&go)
        .arg(&done)
        .arg(&go2)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Stop the broker only once the load generator runs (guardctl first compiles the policy).
    let pid = child.id() as i32;
    let kids = format!("/proc/{pid}/task/{pid}/children");
    let t = Instant::now();
    while std::fs::read_to_string(&kids)
        .unwrap_or_default()
        .trim()
        .is_empty()
        && t.elapsed() < Duration::from_secs(30)
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(200));
    // SAFETY: plain signals to our own child.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
    std::fs::write(&go, b"").unwrap();
    let t = Instant::now();
    let done_all = || (0..2).all(|p| ws.join(format!("done.{p}")).exists());
    while !done_all() && t.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let stalled_for = t.elapsed();
    assert!(
        done_all(),
        "the guarded processes blocked on a stopped broker"
    );
    assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(&go2, b"").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let r = parse(&String::from_utf8_lossy(&out.stdout), &sb);
    eprintln!(
        "full: sent {} stored {} (spilled {}) dropped {} (phase 1 took {stalled_for:?}), slowest open {} us",
        r.sent, r.stored, r.spilled, r.dropped, r.max_us
    );
    assert_eq!(r.sent, 2 * 2001);
    // What the full socket did not take went to the spill files (or, past their cap, was
    // counted as dropped).
    assert!(
        r.stored > 0 && r.spilled + r.dropped > 0,
        "{} {} {}",
        r.stored,
        r.spilled,
        r.dropped
    );
    assert_eq!(
        r.stored + r.dropped,
        r.sent,
        "every event stored or counted"
    );
    // Never blocked: no open waited anywhere near the time the broker was stopped.
    assert!(r.max_us < 1_000_000, "an open took {} us", r.max_us);
    verify(&sb, &r.log);
}
