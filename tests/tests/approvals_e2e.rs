//! Asks end to end, as an agent meets them from bash, Python and Node: approved from outside
//! the tree the call proceeds; denied, timed out, or with the broker gone it fails with EACCES
//! (and one line on stderr saying why); many concurrent asks are each answered correctly.

mod approvals_support;

use approvals_support::{Session, finish, id_of, target_of};
use std::time::{Duration, Instant};

const PY_WRITE: &str = r#"
import sys, errno
try:
    with open(sys.argv[1], "w") as f:
        f.write("x")
    print("OK")
except OSError as e:
    print("ERR", errno.errorcode[e.errno])
"#;

const PY_EXEC: &str = r#"
import sys, subprocess
try:
    r = subprocess.run(["touch", sys.argv[1]])
    print("OK" if r.returncode == 0 else "ERR rc")
except PermissionError:
    print("ERR EACCES")
"#;

const NODE_WRITE: &str = r#"
const fs = require("fs");
try { fs.writeFileSync(process.argv[process.argv.length - 1], "x"); console.log("OK"); }
catch (e) { console.log("ERR", e.code); }
"#;

/// The same kind of action from each runtime: (label, argv, the file it creates).
/// bash asks twice over: as an exec (`touch`, rule ask-touch) and as a file write (`>`).
fn agents(s: &Session, stem: &str) -> Vec<(&'static str, Vec<String>, String)> {
    let d = s.drafts(stem);
    let e = s.ex(stem);
    vec![
        (
            "bash-exec",
            vec![
                "bash".into(),
                "-c".into(),
                format!("if touch {e}; then echo OK; else echo ERR EACCES; fi"),
            ],
            e.clone(),
        ),
        (
            "bash-write",
            vec![
                "bash".into(),
                "-c".into(),
                format!("if echo x > {d}; then echo OK; else echo ERR EACCES; fi"),
            ],
            d.clone(),
        ),
        (
            // subprocess execs from a vfork child: the ask runs there, on the stack.
            "python-exec",
            vec![
                "python3".into(),
                "-c".into(),
                PY_EXEC.into(),
                e.clone() + "-py",
            ],
            e.clone() + "-py",
        ),
        (
            "python",
            vec!["python3".into(), "-c".into(), PY_WRITE.into(), d.clone()],
            d.clone(),
        ),
        (
            "node",
            vec!["node".into(), "-e".into(), NODE_WRITE.into(), d.clone()],
            d,
        ),
    ]
    .into_iter()
    .filter(|(_, argv, _)| which(&argv[0]))
    .collect()
}

/// The `approval` objects of the last session's events, read once from the JSON Lines file and
/// once through the SQLite index (a filter sends `guardctl log` there); both must agree.
fn last_approvals(s: &Session) -> Vec<serde_json::Value> {
    let log = |extra: &[&str]| -> Vec<serde_json::Value> {
        let out = s
            .guardctl()
            .args(["log", "--last", "--json"])
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v.get("approval").cloned())
            .collect()
    };
    let from_file = log(&[]);
    let mut indexed = log(&["--rule", "ask-touch"]);
    indexed.extend(log(&["--rule", "ask-drafts"]));
    let mut a: Vec<String> = from_file.iter().map(|v| v.to_string()).collect();
    let mut b: Vec<String> = indexed.iter().map(|v| v.to_string()).collect();
    a.sort();
    b.sort();
    assert_eq!(a, b, "JSON Lines and SQLite disagree");
    from_file
}

fn which(prog: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {prog} >/dev/null")])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

#[test]
fn approve_from_outside_lets_the_call_proceed_and_deny_fails_it() {
    let s = Session::new("ap-approve", "60s");
    for verb in ["approve", "deny"] {
        for (name, argv, file) in agents(&s, &format!("{verb}-file")) {
            let _ = std::fs::remove_file(&file);
            let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
            let child = s.spawn(&argv);
            let p = s.wait_pending(1);
            assert_eq!(p.len(), 1, "{p:?}");
            let ask = &p[0];
            assert!(target_of(ask).contains(&format!("{verb}-file")), "{ask}");
            for k in [
                "id", "session", "action", "target", "rule", "agent", "pid", "exe", "age_ms",
            ] {
                assert!(!ask[k].is_null(), "{name}: pending lacks {k}: {ask}");
            }
            // The recorded latency must cover at least this wait.
            std::thread::sleep(Duration::from_millis(200));
            let out = s.answer(verb, id_of(ask));
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let answered = Instant::now();
            let (o, e, _) = finish(child);
            // One answer is enough: a retry of the same exec over the next PATH entry
            // (execvp, subprocess) must not wait for a second answer or the 60 s timeout.
            assert!(answered.elapsed() < Duration::from_secs(20), "{name}: {e}");
            if verb == "approve" {
                assert_eq!(o.trim(), "OK", "{name}: {e}");
                assert!(std::path::Path::new(&file).exists(), "{name}");
            } else {
                assert_eq!(o.trim(), "ERR EACCES", "{name}: {e}");
                assert!(e.contains("denied by a human"), "{name}: {e}");
                assert!(!std::path::Path::new(&file).exists(), "{name}");
            }
            let want = if verb == "approve" {
                "approved"
            } else {
                "denied"
            };
            let approvals = last_approvals(&s);
            let a = approvals
                .iter()
                .find(|a| a["id"].as_u64() == Some(id_of(ask)))
                .unwrap_or_else(|| panic!("{name}: no event for ask {}: {approvals:?}", ask["id"]));
            assert_eq!(a["answer"], want, "{name}: {a}");
            assert!(
                a["who"].as_str().is_some_and(|w| !w.is_empty()),
                "{name}: {a}"
            );
            assert!(
                a["latency_ms"].as_u64().is_some_and(|l| l >= 200),
                "{name}: {a}"
            );
        }
    }
}

#[test]
fn an_unanswered_ask_is_denied_after_the_policy_timeout() {
    let s = Session::new("ap-timeout", "400ms");
    for (name, argv, file) in agents(&s, "late") {
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let t = Instant::now();
        let (o, e, _) = finish(s.spawn(&argv));
        assert_eq!(o.trim(), "ERR EACCES", "{name}: {e}");
        assert!(e.contains("no answer within 400 ms, denied"), "{name}: {e}");
        assert!(t.elapsed() < Duration::from_secs(20), "{name}");
        assert!(!std::path::Path::new(&file).exists(), "{name}");
        let approvals = last_approvals(&s);
        assert!(!approvals.is_empty(), "{name}: no approval recorded");
        for a in &approvals {
            assert_eq!(a["answer"], "timeout", "{name}: {a}");
            assert_eq!(a["who"], "timeout", "{name}: {a}");
            // The wait starts before the connect; the latency after it, so allow the connect.
            assert!(
                a["latency_ms"].as_u64().is_some_and(|l| l >= 300),
                "{name}: {a}"
            );
        }
    }
    assert!(s.pending().is_empty());
}

#[test]
fn remember_session_approves_identical_later_asks() {
    let s = Session::new("ap-remember", "60s");
    let f = s.ex("r");
    let script =
        format!("touch {f} && echo one; touch {f} && echo two; touch {f}.other; echo rc=$?");
    let child = s.spawn(&["bash", "-c", &script]);
    let p = s.wait_pending(1);
    let out = s
        .guardctl()
        .args([
            "approve",
            &id_of(&p[0]).to_string(),
            "--remember",
            "session",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    // The second identical touch needs no answer; the different target asks again.
    let p = s.wait_pending(1);
    assert!(target_of(&p[0]).ends_with("r.other"), "{p:?}");
    assert!(s.answer("deny", id_of(&p[0])).status.success());
    let (o, e, _) = finish(child);
    assert_eq!(
        o.lines().collect::<Vec<_>>(),
        ["one", "two", "rc=126"],
        "{e}"
    );
}

#[test]
fn a_killed_broker_makes_later_asks_deny_at_once() {
    let s = Session::new("ap-killed", "60s");
    let out_file = s.sb.root.join("agent.out");
    let ready = s.sb.root.join("ready");
    let go = s.sb.root.join("go");
    // The agent outlives its launcher (and broker), then asks from bash, Python and Node.
    let script = format!(
        "exec > {out} 2>&1; : > {ready}; while [ ! -e {go} ]; do sleep 0.05; done; \
         start=$(date +%s%N); \
         if touch {f1}; then echo bash OK; else echo bash ERR; fi; \
         python3 -c '{py}' {f2}; \
         if command -v node >/dev/null; then node -e '{js}' {f3}; else echo ERR EACCES; fi; \
         echo ms=$(( ($(date +%s%N) - start) / 1000000 )); : > {go}.done",
        out = out_file.display(),
        ready = ready.display(),
        go = go.display(),
        f1 = s.ex("k1"),
        f2 = s.drafts("k2"),
        f3 = s.drafts("k3"),
        py = approvals_support_py(),
        js = NODE_WRITE.replace('\n', " "),
    );
    let mut child = s.spawn(&["setsid", "bash", "-c", &script]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready.exists() {
        assert!(Instant::now() < deadline, "agent never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: kill on the launcher we spawned.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let _ = child.wait();
    std::fs::write(&go, "").unwrap();
    let done = s.sb.root.join("go.done");
    while !done.exists() {
        assert!(
            Instant::now() < deadline + Duration::from_secs(20),
            "agent never finished"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = std::fs::read_to_string(&out_file).unwrap();
    assert!(out.contains("bash ERR"), "{out}");
    assert_eq!(out.matches("ERR EACCES").count(), 2, "{out}");
    assert!(
        out.contains(&format!(
            "guard: exec touch {} needs approval (rule ask-touch) but the broker is unreachable: denied",
            s.ex("k1")
        )),
        "{out}"
    );
    assert!(
        out.contains("needs approval (rule ask-drafts) but the broker is unreachable: denied"),
        "{out}"
    );
    let ms: u64 = out
        .lines()
        .find_map(|l| l.strip_prefix("ms="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(u64::MAX);
    // Three runtimes start in that time; the 60 s ask timeout never comes into play.
    assert!(ms < 20_000, "{out}");
}

fn approvals_support_py() -> String {
    // Single-quoted inside bash: no single quotes in the program.
    PY_WRITE.replace('\'', "\"")
}

#[test]
fn concurrent_asks_from_threads_and_processes_are_each_answered() {
    let s = Session::new("ap-conc", "60s");
    let py = r#"
import sys, threading, errno
res = {}
def w(i):
    try:
        with open(sys.argv[1] + "/t%d" % i, "w") as f: f.write("x")
        res[i] = "OK"
    except OSError as e:
        res[i] = errno.errorcode[e.errno]
ts = [threading.Thread(target=w, args=(i,)) for i in range(8)]
[t.start() for t in ts]; [t.join() for t in ts]
for i in range(8): print("t%d" % i, res[i])
"#;
    let script = format!(
        "for i in 0 1 2 3; do (if touch {e}/p$i; then echo p$i OK; else echo p$i EACCES; fi) & done; \
         python3 -c '{py}' {d}; wait",
        e = s.ex("").trim_end_matches('/'),
        d = s.drafts("").trim_end_matches('/'),
        py = py
    );
    let child = s.spawn(&["bash", "-c", &script]);
    let p = s.wait_pending(12);
    assert_eq!(p.len(), 12, "{p:?}");
    // Approve even-numbered targets, deny odd ones.
    let mut want = std::collections::BTreeMap::new();
    for ask in &p {
        let t = target_of(ask);
        let name = t.rsplit('/').next().unwrap_or_default().to_string();
        let n: u32 = name[1..].parse().unwrap();
        let verb = if n.is_multiple_of(2) {
            "approve"
        } else {
            "deny"
        };
        assert!(s.answer(verb, id_of(ask)).status.success());
        want.insert(name, if n.is_multiple_of(2) { "OK" } else { "EACCES" });
    }
    let (o, e, _) = finish(child);
    let got: std::collections::BTreeMap<String, &str> = o
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(a, b)| (a.to_string(), b))
        .collect();
    assert_eq!(got, want, "{e}");
}
