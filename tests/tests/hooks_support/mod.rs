//! Shared harness of the `hooks_*` end-to-end tests: a private sandbox with a compiled ruleset,
//! a fake broker (a `UnixListener` owned by the test that decodes every frame), test programs
//! built at test time, and a runner that starts a program under `libguard.so` with the
//! `GUARD_*` environment set directly (no launcher involved).
#![allow(dead_code)]

use guard_e2e::{Sandbox, libguard_path, repo_root, target_dir};
use guard_proto::wire::{FrameError, Message, decode_frame};
use std::io::Read;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// One audit event as received by the fake broker.
#[derive(Clone, Debug, Default)]
pub struct Ev {
    pub session: String,
    pub pid: u32,
    pub ppid: u32,
    pub exe: String,
    pub runtime: String,
    pub cwd: String,
    pub action: String,
    pub target: String,
    pub decision: String,
    pub enforce_decision: String,
    pub rule: String,
    pub reason: String,
    pub tags: String,
    pub dropped_before: u64,
}

/// The fake broker: accepts connections on a Unix socket and records every decoded event.
pub struct Broker {
    pub path: PathBuf,
    events: Arc<Mutex<Vec<Ev>>>,
}

impl Broker {
    pub fn start(path: &Path) -> Broker {
        let listener = UnixListener::bind(path).expect("bind broker socket");
        let events = Arc::new(Mutex::new(Vec::new()));
        let ev2 = events.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let ev3 = ev2.clone();
                std::thread::spawn(move || {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 8192];
                    loop {
                        let n = match conn.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        buf.extend_from_slice(&chunk[..n]);
                        loop {
                            match decode_frame(&buf) {
                                Ok((Message::Event(e), used)) => {
                                    let ev = Ev {
                                        session: e.session.into(),
                                        pid: e.pid,
                                        ppid: e.ppid,
                                        exe: e.exe.into(),
                                        runtime: e.runtime.into(),
                                        cwd: e.cwd.into(),
                                        action: e.action.into(),
                                        target: e.target.into(),
                                        decision: e.decision.into(),
                                        enforce_decision: e.enforce_decision.into(),
                                        rule: e.rule.into(),
                                        reason: e.reason.into(),
                                        tags: e.tags.into(),
                                        dropped_before: e.dropped_before,
                                    };
                                    ev3.lock().unwrap().push(ev);
                                    buf.drain(..used);
                                }
                                // This fake broker answers no asks: closing the connection
                                // makes libguard deny at once (broker unreachable).
                                Ok((Message::AskRequest(_), _)) => return,
                                // Nor does it supervise seccomp listeners (the kernel layer,
                                // kernel_layer.rs): libguard keeps its in-process layer only.
                                Ok((Message::Supervise(_), used)) => {
                                    buf.drain(..used);
                                    let mut out = [0u8; 256];
                                    let reply =
                                        Message::ControlReply(guard_proto::wire::ControlReply {
                                            ok: false,
                                            body: "fake broker",
                                        });
                                    if let Ok(n) = guard_proto::wire::encode_frame(&reply, &mut out)
                                    {
                                        let _ = std::io::Write::write_all(&mut conn, &out[..n]);
                                    }
                                }
                                Ok((other, _)) => {
                                    panic!("unexpected message from libguard: {other:?}")
                                }
                                Err(FrameError::Incomplete) => break,
                                Err(e) => panic!("bad frame from libguard: {e:?}"),
                            }
                        }
                    }
                });
            }
        });
        Broker {
            path: path.to_path_buf(),
            events,
        }
    }

    pub fn events(&self) -> Vec<Ev> {
        self.events.lock().unwrap().clone()
    }

    /// Waits (bounded) for an event matching `pred`.
    pub fn wait_for(&self, what: &str, pred: impl Fn(&Ev) -> bool) -> Ev {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(e) = self.events().into_iter().find(|e| pred(e)) {
                return e;
            }
            if Instant::now() > deadline {
                panic!("no event {what}; received: {:#?}", self.events());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Asserts that no event matches `pred` (after giving stragglers a moment).
    pub fn assert_none(&self, what: &str, pred: impl Fn(&Ev) -> bool) {
        std::thread::sleep(Duration::from_millis(150));
        let bad: Vec<Ev> = self.events().into_iter().filter(|e| pred(e)).collect();
        assert!(bad.is_empty(), "unexpected events {what}: {bad:#?}");
    }
}

/// The policy every hooks test runs under (placeholders are the sandbox's).
pub const POLICY: &str = r#"
[policy]
name = "hooks-test"
default = "allow"

[[rule]]
id = "secret-files"
on = "file"
paths = ["~/secret/**"]
decision = "deny"
reason = "test secrets are off limits"
tags = ["OWASP-LLM06"]
examples = { match = ["~/secret/key"], no_match = ["~/public/key"] }

[[rule]]
id = "protected-tree"
on = "file"
paths = ["~/protected/**"]
access = ["write", "delete"]
decision = "deny"
reason = "protected tree is read-only"
examples = { match = ["write ~/protected/a"], no_match = ["read ~/protected/a"] }

[[rule]]
id = "audited-notes"
on = "file"
paths = ["~/notes/**"]
decision = "audit"
reason = "notes are recorded"
examples = { match = ["~/notes/n.txt"] }

[[rule]]
id = "ask-drafts"
on = "file"
paths = ["~/drafts/**"]
access = ["write"]
decision = "ask"
reason = "drafts need approval"
examples = { match = ["write ~/drafts/d.txt"] }

[[rule]]
id = "ask-touch"
on = "exec"
command = "touch"
decision = "ask"
reason = "touching needs a human"
examples = { match = ["touch x"] }

[[rule]]
id = "no-date"
on = "exec"
command = "date"
decision = "deny"
reason = "date is forbidden in tests"
examples = { match = ["date"], no_match = ["echo date"] }

[[rule]]
id = "git-force-push"
on = "exec"
command = "git push"
any_arg = ["--force", "-f"]
decision = "deny"
reason = "force pushes rewrite history"
examples = { match = ["git push --force origin main"], no_match = ["git push origin main"] }

[[rule]]
id = "no-discard-port"
on = "connect"
ips = ["127.0.0.1", "::1"]
ports = [9]
decision = "deny"
reason = "port 9 is off limits"
examples = { match = ["127.0.0.1:9"], no_match = ["127.0.0.1:10"] }

[env]
strip = ["STRIPME_*"]
"#;

/// A sandbox with the test policy compiled for it and a fake broker listening.
pub struct Env {
    pub sb: Sandbox,
    pub broker: Broker,
    pub ruleset: PathBuf,
    pub lib: PathBuf,
}

impl Env {
    pub fn new(name: &str) -> Env {
        Env::with_policy(name, POLICY)
    }

    pub fn with_policy(name: &str, policy: &str) -> Env {
        let sb = Sandbox::new(name);
        for d in ["secret", "protected", "notes", "drafts", "public"] {
            std::fs::create_dir_all(sb.home().join(d)).unwrap();
        }
        std::fs::write(sb.home().join("secret/key"), "s3cret\n").unwrap();
        std::fs::write(sb.home().join("protected/file"), "keep\n").unwrap();
        std::fs::write(sb.home().join("public/file"), "hello\n").unwrap();
        std::fs::write(sb.home().join("notes/n.txt"), "note\n").unwrap();
        let ruleset = sb.state().join("ruleset.bin");
        let bytes = compile(&sb, policy);
        std::fs::write(&ruleset, bytes).unwrap();
        let broker = Broker::start(&sb.state().join("b.sock"));
        Env {
            sb,
            broker,
            ruleset,
            lib: libguard_path(),
        }
    }

    /// Same sandbox layout, but `GUARD_RULESET` holds `bytes` verbatim (corrupt rulesets).
    pub fn with_ruleset_bytes(name: &str, bytes: &[u8]) -> Env {
        let sb = Sandbox::new(name);
        std::fs::create_dir_all(sb.home().join("public")).unwrap();
        std::fs::write(sb.home().join("public/file"), "hello\n").unwrap();
        let ruleset = sb.state().join("ruleset.bin");
        std::fs::write(&ruleset, bytes).unwrap();
        let broker = Broker::start(&sb.state().join("b.sock"));
        Env {
            sb,
            broker,
            ruleset,
            lib: libguard_path(),
        }
    }

    pub fn home(&self) -> PathBuf {
        self.sb.home()
    }

    pub fn h(&self, rel: &str) -> String {
        self.sb.home().join(rel).to_string_lossy().into_owned()
    }

    /// A command under the guard: cleared environment plus PATH, HOME and the guard variables.
    pub fn cmd(&self, prog: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(prog);
        c.env_clear()
            .env(
                "PATH",
                std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()),
            )
            .env("HOME", self.sb.home())
            .env("LD_PRELOAD", &self.lib)
            .env("GUARD_SOCKET", &self.broker.path)
            .env("GUARD_RULESET", &self.ruleset)
            .env("GUARD_SESSION", "test-session")
            .env("GUARD_AGENT", "test-agent")
            .env("GUARD_MODEL", "test-model")
            .env("GUARD_WORKSPACE", self.sb.workspace())
            .current_dir(self.sb.workspace())
            .stdin(Stdio::null());
        c
    }
}

pub fn compile(sb: &Sandbox, policy: &str) -> Vec<u8> {
    let file = sb.root.join("policy.toml");
    std::fs::write(&file, policy).unwrap();
    let pol = guard_policy::Policy::load(&[file]).unwrap_or_else(|e| panic!("policy: {e}"));
    let ctx = guard_policy::CompileContext {
        home: sb.home().to_string_lossy().into_owned(),
        workspace: sb.workspace().to_string_lossy().into_owned(),
        state_dir: sb.state().to_string_lossy().into_owned(),
        policy_dir: sb.root.to_string_lossy().into_owned(),
        guard_lib: libguard_path().to_string_lossy().into_owned(),
        guard_exe: String::new(),
    };
    pol.compile(&ctx).unwrap_or_else(|e| panic!("compile: {e}"))
}

/// Runs with a time limit; panics (with output) if the program hangs.
pub fn run(mut c: Command, limit: Duration) -> Output {
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn");
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "program hung (> {limit:?}); stdout: {} stderr: {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn out(c: Command) -> (String, String, Option<i32>) {
    let o = run(c, Duration::from_secs(30));
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
        o.status.code(),
    )
}

/// Directory for programs built by the tests (shared by all test binaries of one profile).
pub fn build_dir() -> PathBuf {
    let d = target_dir().join("hooks-programs");
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn program_src(rel: &str) -> PathBuf {
    repo_root().join("tests/programs").join(rel)
}

/// Compiles a C program (once per process and flag set) and returns the binary path.
pub fn cc(src: &str, name: &str, flags: &[&str]) -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let _g = LOCK.lock().unwrap();
    let outp = build_dir().join(format!("{name}-{}", std::process::id()));
    if !outp.exists() {
        let st = Command::new("cc")
            .args(flags)
            .arg("-o")
            .arg(&outp)
            .arg(program_src(src))
            .status()
            .expect("cc");
        assert!(st.success(), "cc {src} failed");
    }
    outp
}

/// The real Python interpreter (pyenv installs a shell shim first in PATH; its own HOME-based
/// lookup would break under the sandbox's HOME).
pub fn python() -> Option<PathBuf> {
    static P: OnceLock<Option<PathBuf>> = OnceLock::new();
    P.get_or_init(|| {
        let o = Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .ok()?;
        let s = String::from_utf8(o.stdout).ok()?;
        let p = PathBuf::from(s.trim());
        p.exists().then_some(p)
    })
    .clone()
}

pub fn which(prog: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").ok()?;
    path.split(':')
        .map(|d| Path::new(d).join(prog))
        .find(|p| p.is_file())
}
