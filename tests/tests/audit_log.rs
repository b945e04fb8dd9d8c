//! The audit trail end to end: real libguard events through `guardctl run`, the hash chain
//! checked by `guardctl log verify` against every kind of tampering, `guardctl log` filters
//! from the SQLite index and from the JSON Lines files, and monitor mode.

use guard_e2e::{Sandbox, guardctl_path};
use serde_json::Value;
use std::process::Command;

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

fn with_key(name: &str) -> Sandbox {
    let sb = Sandbox::new(name);
    let ssh = sb.home().join(".ssh");
    std::fs::create_dir_all(&ssh).unwrap();
    std::fs::write(
        ssh.join("id_ed25519"),
        "-----BEGIN OPENSSH PRIVATE KEY-----\n",
    )
    .unwrap();
    sb
}

fn run(sb: &Sandbox, args: &[&str]) -> std::process::Output {
    guardctl(sb).args(args).output().unwrap()
}

fn session_log(sb: &Sandbox) -> std::path::PathBuf {
    let mut logs: Vec<_> = std::fs::read_dir(sb.state().join("sessions"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl") && !p.ends_with("index.jsonl"))
        .collect();
    logs.sort();
    logs.pop().unwrap()
}

fn verify(sb: &Sandbox, file: &std::path::Path) -> (i32, String) {
    let out = run(sb, &["log", "verify", file.to_str().unwrap()]);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn verify_detects_edit_removal_insertion_reordering_and_truncation() {
    let sb = with_key("audit-verify");
    let out = run(
        &sb,
        &[
            "run",
            "--",
            "bash",
            "-c",
            "for i in 1 2 3 4 5 6; do cat ~/.ssh/id_ed25519; done; true",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = session_log(&sb);
    let (rc, msg) = verify(&sb, &log);
    assert_eq!(rc, 0, "{msg}");
    assert!(msg.contains("chain intact"), "{msg}");
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 6, "{text}");
    let v: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(v["seq"], 1);
    assert!(v["hash"].as_str().is_some_and(|h| h.len() == 64));

    // Each tampered copy keeps the session's file name, so the chain starts from its genesis.
    let dir = sb.root.join("tampered");
    std::fs::create_dir_all(&dir).unwrap();
    let copy = dir.join(log.file_name().unwrap());
    let check = |content: String, want_line: Option<usize>, what: &str| {
        std::fs::write(&copy, content).unwrap();
        let (rc, msg) = verify(&sb, &copy);
        assert_eq!(rc, 1, "{what} not detected: {msg}");
        if let Some(l) = want_line {
            assert!(msg.contains(&format!("line {l}:")), "{what}: {msg}");
        }
    };
    let join = |v: &[&str]| v.join("\n") + "\n";

    let mut edited = lines.clone();
    let e = edited[2].replacen("\"pid\":", "\"pid\":1", 1);
    assert_ne!(e, edited[2]);
    edited[2] = &e;
    check(join(&edited), Some(3), "an edited pid");

    let mut removed = lines.clone();
    removed.remove(1);
    check(join(&removed), Some(2), "a removed record");

    let mut inserted = lines.clone();
    inserted.insert(3, lines[1]);
    check(join(&inserted), Some(4), "an inserted (replayed) record");

    let mut swapped = lines.clone();
    swapped.swap(2, 3);
    check(join(&swapped), Some(3), "reordered records");

    let mut cut = join(&lines);
    cut.truncate(cut.len() - 40);
    check(cut, Some(lines.len()), "a record cut short");

    // Dropping whole records from the end leaves a valid chain; the database's head shows it.
    check(
        join(&lines[..lines.len() - 2]),
        None,
        "records removed from the end",
    );

    // Untouched copy: intact.
    std::fs::write(&copy, join(&lines)).unwrap();
    assert_eq!(verify(&sb, &copy).0, 0);
    // By session id and --last too.
    let id = log.file_stem().unwrap().to_str().unwrap();
    assert!(
        run(&sb, &["log", "verify", "--session", id])
            .status
            .success()
    );
    assert!(run(&sb, &["log", "verify", "--last"]).status.success());
}

fn json_lines(out: &std::process::Output) -> Vec<Value> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The (session, seq) pairs of a `log --json` answer.
fn keys(v: &[Value]) -> Vec<(String, u64)> {
    v.iter()
        .map(|e| {
            (
                e["session"].as_str().unwrap().to_string(),
                e["seq"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn filters_agree_between_sqlite_and_json_lines_and_monitor_records_enforce_decision() {
    let sb = with_key("audit-filter");
    let out = run(
        &sb,
        &[
            "run",
            "--agent",
            "alpha",
            "--",
            "bash",
            "-c",
            "cat ~/.ssh/id_ed25519; true",
        ],
    );
    assert!(out.status.success());
    std::thread::sleep(std::time::Duration::from_millis(20));
    let mid = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    // Monitor: nothing is blocked, the event says what enforce mode would have done.
    let out = run(
        &sb,
        &[
            "run",
            "--mode",
            "monitor",
            "--agent",
            "beta",
            "--",
            "bash",
            "-c",
            "cat ~/.ssh/id_ed25519",
        ],
    );
    assert!(out.status.success(), "monitor mode blocked the read");
    assert!(String::from_utf8_lossy(&out.stdout).contains("OPENSSH"));

    let all = json_lines(&run(&sb, &["log", "--json"]));
    assert!(all.len() >= 3, "{all:?}");
    let monitored: Vec<&Value> = all
        .iter()
        .filter(|e| e["agent"] == "beta" && e["rule"] == "ssh-private-keys")
        .collect();
    assert_eq!(monitored.len(), 1, "{all:?}");
    assert_eq!(monitored[0]["decision"], "allow");
    assert_eq!(monitored[0]["enforce_decision"], "deny");
    let text = run(&sb, &["log", "--agent", "beta"]);
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("allow (enforce: deny)"),
        "{}",
        String::from_utf8_lossy(&text.stdout)
    );

    // A time between the two sessions (the date from an event; the tests do not span midnight).
    let since = {
        let secs = mid + 1;
        let (h, m, s) = (secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
        let date = &all[0]["ts"].as_str().unwrap()[..10];
        format!("{date}T{h:02}:{m:02}:{s:02}.000Z")
    };
    let cases: Vec<Vec<&str>> = vec![
        vec!["--decision", "deny"],
        vec!["--agent", "alpha"],
        vec!["--agent", "beta", "--action", "read"],
        vec!["--rule", "ssh-private-keys"],
        vec!["--action", "exec"],
        vec!["--since", &since],
        vec!["--until", &since],
    ];
    for case in cases {
        let mut db = vec!["log", "--json"];
        db.extend(&case);
        let from_db = keys(&json_lines(&run(&sb, &db)));
        let mut files = db.clone();
        files.push("--no-db");
        let from_files = keys(&json_lines(&run(&sb, &files)));
        assert_eq!(from_db, from_files, "{case:?}");
        // And each agrees with filtering the full list by hand.
        let want: Vec<(String, u64)> = keys(
            &all.iter()
                .filter(|e| {
                    let (k, v) = (case[0], case[1]);
                    let f = |key: &str| e[key] == v;
                    let base = match k {
                        "--decision" => f("decision"),
                        "--agent" => f("agent"),
                        "--rule" => f("rule"),
                        "--action" => f("action"),
                        "--since" => e["ts"].as_str().unwrap() >= v,
                        "--until" => e["ts"].as_str().unwrap() < v,
                        _ => unreachable!(),
                    };
                    base && (case.len() < 4 || e["action"] == case[3])
                })
                .cloned()
                .collect::<Vec<_>>(),
        );
        assert_eq!(from_db, want, "{case:?}");
    }
    // The deny of the first session and nothing of monitor mode.
    let denies = json_lines(&run(&sb, &["log", "--json", "--decision", "deny"]));
    assert!(!denies.is_empty() && denies.iter().all(|e| e["agent"] == "alpha"));
}
