//! Broker faults end to end, with `guardctl serve` as a separate process that sessions attach
//! to: killed mid-session and restarted (from bash, Python and Node agents), stopped while a
//! program floods it, and fed garbage by a hostile local client.
//!
//! What must hold: while the broker is dead every ask denies at once with one stderr line, the
//! program neither hangs nor dies, and its events go to its spill file; after the restart new
//! events are stored live and the spilled ones arrive marked `delivery: spill`; `guardctl log`
//! shows them all and `guardctl log verify` passes; with a stopped broker, stored + spilled +
//! counted-lost = sent, exactly.

use guard_e2e::{Sandbox, guardctl_path};
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const POLICY: &str = r#"
[policy]
name = "faults"
default = "allow"
ask_timeout = "60s"

[[rule]]
id = "audit-notes"
on = "file"
paths = ["~/notes/**"]
access = ["read"]
decision = "audit"
reason = "notes are audited"
examples = { match = ["read ~/notes/a"] }

[[rule]]
id = "ask-touch"
on = "exec"
command = "touch"
decision = "ask"
reason = "touching needs a human"
examples = { match = ["touch x"] }
"#;

struct Faults {
    sb: Sandbox,
    policy: PathBuf,
    notes: PathBuf,
    ctl: PathBuf,
    ex: PathBuf,
}

impl Faults {
    fn new(name: &str) -> Faults {
        let sb = Sandbox::new(name);
        let policy = sb.root.join("policy.toml");
        std::fs::write(&policy, POLICY).unwrap();
        let (notes, ctl, ex) = (
            sb.home().join("notes"),
            sb.root.join("ctl"),
            sb.home().join("ex"),
        );
        for d in [&notes, &ctl, &ex] {
            std::fs::create_dir_all(d).unwrap();
        }
        Faults {
            sb,
            policy,
            notes,
            ctl,
            ex,
        }
    }

    fn guardctl(&self) -> Command {
        let mut c = Command::new(guardctl_path());
        c.current_dir(self.sb.workspace())
            .env("HOME", self.sb.home())
            .env("GUARD_STATE_DIR", self.sb.state())
            .env_remove("LD_PRELOAD")
            .env_remove("GUARD_SESSION")
            .env_remove("XDG_STATE_HOME")
            .env_remove("XDG_RUNTIME_DIR")
            .stdin(Stdio::null());
        c
    }

    fn serve_socket(&self) -> PathBuf {
        self.sb.state().join("run/broker.sock")
    }

    /// Starts `guardctl serve` and waits until it listens.
    fn start_serve(&self) -> Child {
        let child = self
            .guardctl()
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for("serve to listen", Duration::from_secs(10), || {
            UnixStream::connect(self.serve_socket()).is_ok()
        });
        child
    }

    fn spawn(&self, argv: &[String]) -> Child {
        self.guardctl()
            .arg("run")
            .arg("--policy")
            .arg(&self.policy)
            .arg("--")
            .args(argv)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// The id of the (only) session, from its start record.
    fn session(&self) -> String {
        let index = self.sb.state().join("sessions/index.jsonl");
        let mut found = None;
        wait_for(
            "the session's start record",
            Duration::from_secs(10),
            || {
                found = std::fs::read_to_string(&index).ok().and_then(|t| {
                    t.lines()
                        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                        .find(|v| v["event"] == "start")
                });
                found.is_some()
            },
        );
        let v = found.unwrap();
        assert_eq!(v["broker"], "serve", "the session did not attach: {v}");
        v["session"].as_str().unwrap().to_string()
    }

    fn end_record(&self, session: &str) -> serde_json::Value {
        let index = std::fs::read_to_string(self.sb.state().join("sessions/index.jsonl")).unwrap();
        index
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v["event"] == "end" && v["session"] == session)
            .unwrap_or_else(|| panic!("no end record: {index}"))
    }

    /// `guardctl log --session ID --json`.
    fn log(&self, session: &str) -> Vec<serde_json::Value> {
        let out = self
            .guardctl()
            .args(["log", "--session", session, "--json"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    fn pending(&self) -> Vec<serde_json::Value> {
        let out = self
            .guardctl()
            .args(["pending", "--json"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn mark(&self, name: &str) {
        std::fs::write(self.ctl.join(name), "").unwrap();
    }

    fn wait_mark(&self, name: &str, child: &mut Child) {
        let p = self.ctl.join(name);
        wait_for(name, Duration::from_secs(60), || {
            if let Ok(Some(st)) = child.try_wait() {
                panic!("the agent exited early ({st}) before {name}");
            }
            p.exists()
        });
    }
}

fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let t = Instant::now();
    while !ok() {
        assert!(t.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on a child we spawned and have not reaped.
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
}

/// The file reads of `evs` whose file name starts with `prefix`.
fn targets_with(evs: &[serde_json::Value], prefix: &str) -> Vec<serde_json::Value> {
    evs.iter()
        .filter(|e| {
            e["action"] == "read"
                && e["target"]
                    .as_str()
                    .and_then(|t| t.rsplit('/').next())
                    .is_some_and(|name| name.starts_with(prefix))
        })
        .cloned()
        .collect()
}

/// Events per phase.
const N: usize = 40;

const BASH: &str = r#"
n=$1 notes=$2 ctl=$3 ex=$4 touch=$5
for i in $(seq 1 $n); do : < "$notes/a-$i"; done
if "$touch" "$ex/approved"; then echo approved-ok; fi
: > "$ctl/a-done"
while [ ! -e "$ctl/go1" ]; do sleep 0.05; done
for i in $(seq 1 $n); do : < "$notes/b-$i"; done
t0=$(date +%s%N); "$touch" "$ex/denied"; rc=$?; t1=$(date +%s%N)
echo "dead-ask rc=$rc ms=$(( (t1 - t0) / 1000000 ))"
: > "$ctl/b-done"
while [ ! -e "$ctl/go2" ]; do sleep 0.05; done
for i in $(seq 1 $n); do : < "$notes/c-$i"; done
echo alive-to-the-end
"#;

const PYTHON: &str = r#"
import os, sys, time, subprocess
n, notes, ctl, ex, touch = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
def reads(p):
    for i in range(1, n + 1):
        with open(f"{notes}/{p}-{i}") as f:
            f.read()
def wait(name):
    while not os.path.exists(f"{ctl}/{name}"):
        time.sleep(0.05)
def mark(name):
    open(f"{ctl}/{name}", "w").close()
def run_touch(name):
    try:
        return subprocess.run([touch, f"{ex}/{name}"]).returncode
    except PermissionError:
        return 126
reads("a")
if run_touch("approved") == 0:
    print("approved-ok", flush=True)
mark("a-done"); wait("go1")
reads("b")
t = time.monotonic()
rc = run_touch("denied")
print(f"dead-ask rc={rc} ms={int((time.monotonic() - t) * 1000)}", flush=True)
mark("b-done"); wait("go2")
reads("c")
print("alive-to-the-end", flush=True)
"#;

const NODE: &str = r#"
const fs = require("fs"), cp = require("child_process");
const a = process.argv.slice(-5);
const n = +a[0], notes = a[1], ctl = a[2], ex = a[3], touch = a[4];
const nap = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
const reads = (p) => { for (let i = 1; i <= n; i++) fs.readFileSync(`${notes}/${p}-${i}`); };
const wait = (m) => { while (!fs.existsSync(`${ctl}/${m}`)) nap(50); };
const mark = (m) => fs.writeFileSync(`${ctl}/${m}`, "");
const runTouch = (name) => {
  const r = cp.spawnSync(touch, [`${ex}/${name}`], { stdio: "inherit" });
  return r.error ? 126 : r.status;
};
reads("a");
if (runTouch("approved") === 0) console.log("approved-ok");
mark("a-done"); wait("go1");
reads("b");
const t = Date.now();
const rc = runTouch("denied");
console.log(`dead-ask rc=${rc} ms=${Date.now() - t}`);
mark("b-done"); wait("go2");
reads("c");
console.log("alive-to-the-end");
"#;

fn touch_path() -> String {
    for p in ["/usr/bin/touch", "/bin/touch"] {
        if Path::new(p).exists() {
            return p.to_string();
        }
    }
    panic!("no touch binary");
}

/// One agent through the whole kill/restart cycle of `guardctl serve`.
fn serve_killed_and_restarted(label: &str, program: &[&str]) {
    let f = Faults::new(&format!("faults-{label}"));
    for p in ["a", "b", "c"] {
        for i in 1..=N {
            std::fs::write(f.notes.join(format!("{p}-{i}")), "note").unwrap();
        }
    }
    let mut argv: Vec<String> = program.iter().map(|s| s.to_string()).collect();
    argv.extend([
        N.to_string(),
        f.notes.to_string_lossy().into_owned(),
        f.ctl.to_string_lossy().into_owned(),
        f.ex.to_string_lossy().into_owned(),
        touch_path(),
    ]);
    let mut serve = f.start_serve();
    let mut child = f.spawn(&argv);
    let session = f.session();

    // Phase A, broker alive: an ask a human approves; events stored live.
    let mut asks = Vec::new();
    wait_for(
        &format!("{label}: the ask"),
        Duration::from_secs(30),
        || {
            asks = f.pending();
            !asks.is_empty()
        },
    );
    let ask_id = asks[0]["id"].as_u64().unwrap();
    let out = f
        .guardctl()
        .args(["approve", &ask_id.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{label}: {out:?}");
    f.wait_mark("a-done", &mut child);
    wait_for(
        &format!("{label}: phase A stored"),
        Duration::from_secs(20),
        || targets_with(&f.log(&session), "a-").len() == N,
    );

    // Phase B, broker killed: events spill, the ask denies at once.
    signal(&serve, libc::SIGKILL);
    let _ = serve.wait();
    f.mark("go1");
    f.wait_mark("b-done", &mut child);
    let spill = f.sb.state().join("spill").join(&session);
    let spilled_files: Vec<_> = std::fs::read_dir(&spill)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "spill"))
        .collect();
    assert!(
        !spilled_files.is_empty(),
        "{label}: no spill file in {}",
        spill.display()
    );
    assert!(
        targets_with(&f.log(&session), "b-").is_empty(),
        "{label}: phase B events stored while the broker was dead?"
    );

    // Restart: the spilled events arrive; then phase C is stored live.
    let mut serve = f.start_serve();
    wait_for(
        &format!("{label}: spilled events ingested"),
        Duration::from_secs(20),
        || targets_with(&f.log(&session), "b-").len() == N,
    );
    f.mark("go2");
    let out = child.wait_with_output().unwrap();
    let (o, e) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert_eq!(out.status.code(), Some(0), "{label}: {o}{e}");
    assert!(o.contains("approved-ok"), "{label}: {o}{e}");
    assert!(o.contains("alive-to-the-end"), "{label}: {o}{e}");
    let dead = o
        .lines()
        .find_map(|l| l.strip_prefix("dead-ask "))
        .unwrap_or_else(|| panic!("{label}: {o}"));
    assert!(
        !dead.starts_with("rc=0"),
        "{label}: the ask was allowed: {dead}"
    );
    let ms: u64 = dead
        .split("ms=")
        .nth(1)
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    assert!(ms < 2000, "{label}: the dead-broker ask took {ms} ms");
    let lines: Vec<&str> = e
        .lines()
        .filter(|l| l.contains("but the broker is unreachable: denied"))
        .collect();
    assert_eq!(lines.len(), 1, "{label}: {e}");
    assert!(
        lines[0].starts_with("guard: exec ") && lines[0].contains("(rule ask-touch)"),
        "{label}: {e}"
    );

    let evs = f.log(&session);
    let (a, b, c) = (
        targets_with(&evs, "a-"),
        targets_with(&evs, "b-"),
        targets_with(&evs, "c-"),
    );
    assert_eq!((a.len(), b.len(), c.len()), (N, N, N), "{label}");
    assert!(
        a.iter().chain(&c).all(|e| e.get("delivery").is_none()),
        "{label}"
    );
    assert!(b.iter().all(|e| e["delivery"] == "spill"), "{label}: {b:?}");
    assert!(
        evs.iter().all(|e| e["session"] == session.as_str()),
        "{label}"
    );
    // The spilled events keep the time they happened (before the restart's live events).
    let last_b = b.iter().filter_map(|e| e["ts"].as_str()).max().unwrap();
    let first_c = c.iter().filter_map(|e| e["ts"].as_str()).min().unwrap();
    assert!(last_b <= first_c, "{label}: {last_b} > {first_c}");

    // The approval names the human by uid and user; the unreachable ask still has an id.
    let approvals: Vec<&serde_json::Value> = evs.iter().filter_map(|e| e.get("approval")).collect();
    let approved = approvals
        .iter()
        .find(|a| a["answer"] == "approved")
        .unwrap_or_else(|| panic!("{label}: {approvals:?}"));
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    assert_eq!(approved["id"].as_u64(), Some(ask_id), "{label}: {approved}");
    assert_eq!(
        approved["uid"].as_u64(),
        Some(u64::from(uid)),
        "{label}: {approved}"
    );
    let user = approved["user"].as_str().unwrap_or_default();
    assert!(!user.is_empty(), "{label}: {approved}");
    assert_eq!(approved["who"], format!("{user} (uid {uid})"), "{label}");
    let unreachable = approvals
        .iter()
        .find(|a| a["answer"] == "unreachable")
        .unwrap_or_else(|| panic!("{label}: {approvals:?}"));
    let id = unreachable["id"].as_u64().unwrap_or(0);
    assert!(
        id != 0 && id != ask_id && id < 1 << 53,
        "{label}: {unreachable}"
    );
    assert!(unreachable.get("uid").is_none(), "{label}: {unreachable}");

    // The SQLite index (used with filters) agrees on delivery and on the approver.
    let query = |action: &str| -> Vec<serde_json::Value> {
        let out = f
            .guardctl()
            .args(["log", "--session", &session, "--action", action, "--json"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    let indexed = query("read");
    assert_eq!(indexed.len(), 3 * N, "{label}: {indexed:?}");
    assert!(
        targets_with(&indexed, "b-")
            .iter()
            .all(|e| e["delivery"] == "spill"),
        "{label}"
    );
    let execs = query("exec");
    assert!(
        execs
            .iter()
            .any(|e| e["approval"]["uid"].as_u64() == Some(u64::from(uid))),
        "{label}: {execs:?}"
    );

    let verify = f
        .guardctl()
        .args(["log", "verify", "--session", &session])
        .output()
        .unwrap();
    assert!(verify.status.success(), "{label}: {verify:?}");
    let end = f.end_record(&session);
    assert_eq!(
        end["events"].as_u64(),
        Some(evs.len() as u64),
        "{label}: {end}"
    );
    assert_eq!(end["dropped"].as_u64(), Some(0), "{label}: {end}");
    assert!(
        !spill.exists() || std::fs::read_dir(&spill).unwrap().next().is_none(),
        "{label}: spill files left behind"
    );
    signal(&serve, libc::SIGTERM);
    let _ = serve.wait();
}

#[test]
fn serve_killed_and_restarted_bash() {
    serve_killed_and_restarted("bash", &["bash", "-c", BASH, "agent"]);
}

#[test]
fn serve_killed_and_restarted_python() {
    serve_killed_and_restarted("python", &["python3", "-c", PYTHON]);
}

#[test]
fn serve_killed_and_restarted_node() {
    serve_killed_and_restarted("node", &["node", "-e", NODE, "--"]);
}

const FLOOD: &str = r#"
import os, sys, time
n, notes, ctl = int(sys.argv[1]), sys.argv[2], sys.argv[3]
while not os.path.exists(f"{ctl}/go"):
    time.sleep(0.02)
t = time.monotonic()
for i in range(n):
    try:
        os.close(os.open(f"{notes}/n-{i}", os.O_RDONLY))
    except OSError:
        pass
print(f"flood secs={time.monotonic() - t:.2f}", flush=True)
open(f"{ctl}/flooded", "w").close()
while not os.path.exists(f"{ctl}/go2"):
    time.sleep(0.02)
print("alive-to-the-end", flush=True)
"#;

/// `serve` stopped (SIGSTOP) while a program opens thousands of audited files with long paths:
/// the program never blocks; the socket buffer fills, the spill file takes what it can up to
/// its cap, the rest is counted in the `.lost` tally; after SIGCONT every event is accounted
/// for exactly: stored live + stored from spill + counted lost = sent.
#[test]
fn stopped_serve_full_socket_and_spill_cap_account_for_every_event() {
    let f = Faults::new("faults-stop");
    // Targets near libguard's 2 KiB cap, so 3000 events overflow the 4 MiB spill file.
    let mut deep = f.notes.clone();
    for k in 0..7 {
        deep.push(format!("{k}{}", "d".repeat(240)));
    }
    std::fs::create_dir_all(&deep).unwrap();
    const SENT: usize = 3000;
    for i in 0..SENT {
        std::fs::write(deep.join(format!("n-{i}")), "").unwrap();
    }
    let argv: Vec<String> = [
        "python3",
        "-c",
        FLOOD,
        &SENT.to_string(),
        &deep.to_string_lossy(),
        &f.ctl.to_string_lossy(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut serve = f.start_serve();
    let mut child = f.spawn(&argv);
    let session = f.session();
    // Let the program start (and connect) before the broker stops.
    std::thread::sleep(Duration::from_millis(300));
    signal(&serve, libc::SIGSTOP);
    f.mark("go");
    f.wait_mark("flooded", &mut child);
    std::thread::sleep(Duration::from_millis(200));
    signal(&serve, libc::SIGCONT);
    f.mark("go2");
    let out = child.wait_with_output().unwrap();
    let o = String::from_utf8_lossy(&out.stdout).into_owned();
    let e = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{o}{e}");
    assert!(o.contains("alive-to-the-end"), "{o}{e}");
    let secs: f64 = o
        .split("flood secs=")
        .nth(1)
        .and_then(|v| v.lines().next())
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    assert!(
        secs < 30.0,
        "the program blocked: {secs} s for {SENT} events"
    );

    let evs = f.log(&session);
    let sent = targets_with(&evs, "n-");
    let live = sent.iter().filter(|e| e.get("delivery").is_none()).count();
    let spilled = sent.iter().filter(|e| e["delivery"] == "spill").count();
    let mut names: Vec<&str> = sent.iter().filter_map(|e| e["target"].as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), sent.len(), "an event was stored twice");
    let lost: u64 = evs
        .iter()
        .filter(|e| e["action"] == "lost")
        .map(|e| e["dropped_before"].as_u64().unwrap_or(0))
        .sum();
    let counted: u64 = evs
        .iter()
        .map(|e| e["dropped_before"].as_u64().unwrap_or(0))
        .sum();
    eprintln!("live {live}, spilled {spilled}, lost {lost}, counted {counted}");
    assert!(live > 0, "nothing went through the socket");
    assert!(spilled > 0, "nothing was spilled");
    assert!(lost > 0, "the spill cap was never reached");
    assert_eq!(
        live as u64 + spilled as u64 + counted,
        SENT as u64,
        "live {live} + spilled {spilled} + counted {counted} != sent"
    );
    let end = f.end_record(&session);
    assert_eq!(end["dropped"].as_u64(), Some(counted), "{end}");
    let lost_records = evs.iter().filter(|e| e["action"] == "lost").count();
    assert_eq!(
        end["events"].as_u64(),
        Some((evs.len() - lost_records) as u64),
        "{end}"
    );
    let verify = f
        .guardctl()
        .args(["log", "verify", "--session", &session])
        .output()
        .unwrap();
    assert!(verify.status.success(), "{verify:?}");
    signal(&serve, libc::SIGTERM);
    let _ = serve.wait();
}

/// Garbage, oversized and wrong-version frames, and events naming a session nobody attached,
/// sent to a live `serve`: it keeps answering control clients and storing attached sessions.
#[test]
fn a_live_serve_survives_hostile_clients() {
    use guard_proto::wire::{self, Message};
    let f = Faults::new("faults-hostile");
    std::fs::write(f.notes.join("a-1"), "x").unwrap();
    let mut serve = f.start_serve();
    let sock = f.serve_socket();
    let mut frame = vec![0u8; 4096];
    let ev = wire::Event {
        session: "forged-session",
        pid: 1,
        ppid: 0,
        exe: "/bin/x",
        runtime: "native",
        cwd: "/",
        action: "read",
        target: "/forged",
        decision: "allow",
        enforce_decision: "allow",
        rule: "",
        reason: "",
        tags: "",
        dropped_before: 0,
        approval_id: 0,
        approval_answer: "",
        approval_who: "",
        approval_latency_ms: 0,
    };
    let n = wire::encode_frame(&Message::Event(ev), &mut frame).unwrap();
    frame.truncate(n);
    let mut wrong_version = frame.clone();
    wrong_version[4] = wire::WIRE_VERSION.wrapping_add(7);
    let mut oversized = Vec::from((wire::MAX_FRAME as u32 + 1).to_le_bytes());
    oversized.extend(std::iter::repeat_n(0xabu8, 70_000));
    let mut seed = 0x1234_5678_9abc_def1u64;
    let noise: Vec<u8> = (0..5000)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect();
    for bytes in [
        &frame[..],
        &wrong_version[..],
        &oversized[..],
        &noise[..],
        &frame[..n / 2],
        &[0xff, 0xff, 0xff, 0xff][..],
    ] {
        for _ in 0..20 {
            let mut c = UnixStream::connect(&sock).expect("serve stopped accepting");
            let _ = c.write_all(bytes);
        }
    }
    assert!(f.pending().is_empty());
    assert!(
        !f.sb.state().join("sessions/forged-session.jsonl").exists(),
        "an event of an unattached session was stored"
    );
    // An attached session still works end to end.
    let argv: Vec<String> = ["bash", "-c", "cat ~/notes/a-1 >/dev/null && echo ok"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let out = f.spawn(&argv).wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let session = f.session();
    let evs = f.log(&session);
    assert_eq!(targets_with(&evs, "a-1").len(), 1, "{evs:?}");
    assert!(serve.try_wait().unwrap().is_none(), "serve died");
    signal(&serve, libc::SIGTERM);
    let _ = serve.wait();
}

/// `serve` killed and never restarted: at the end the launcher finds no broker to hand the
/// session to, and stores the spilled events itself (same file, same chain).
#[test]
fn a_session_outliving_serve_stores_its_spilled_events_itself() {
    let f = Faults::new("faults-orphan");
    for p in ["a", "b"] {
        for i in 1..=N {
            std::fs::write(f.notes.join(format!("{p}-{i}")), "note").unwrap();
        }
    }
    let script = format!(
        "for i in $(seq 1 {N}); do : < {notes}/a-$i; done; : > {ctl}/a-done; \
         while [ ! -e {ctl}/go1 ]; do sleep 0.05; done; \
         for i in $(seq 1 {N}); do : < {notes}/b-$i; done; echo finished",
        notes = f.notes.display(),
        ctl = f.ctl.display()
    );
    let mut serve = f.start_serve();
    let mut child = f.spawn(&["bash".into(), "-c".into(), script]);
    let session = f.session();
    f.wait_mark("a-done", &mut child);
    wait_for("phase A stored", Duration::from_secs(20), || {
        targets_with(&f.log(&session), "a-").len() == N
    });
    signal(&serve, libc::SIGKILL);
    let _ = serve.wait();
    f.mark("go1");
    let out = child.wait_with_output().unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{out:?}");
    assert!(e.contains("storing this session's spilled events"), "{e}");
    let evs = f.log(&session);
    let (a, b) = (targets_with(&evs, "a-"), targets_with(&evs, "b-"));
    assert_eq!((a.len(), b.len()), (N, N));
    assert!(b.iter().all(|e| e["delivery"] == "spill"), "{b:?}");
    let end = f.end_record(&session);
    assert_eq!(end["events"].as_u64(), Some(evs.len() as u64), "{end}");
    let spilled = evs.iter().filter(|e| e["delivery"] == "spill").count();
    assert!(spilled >= N, "{end}");
    assert_eq!(end["spilled"].as_u64(), Some(spilled as u64), "{end}");
    let verify = f
        .guardctl()
        .args(["log", "verify", "--session", &session])
        .output()
        .unwrap();
    assert!(verify.status.success(), "{verify:?}");
}
