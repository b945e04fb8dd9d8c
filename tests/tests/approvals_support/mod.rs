//! Shared helpers for the approvals and self-protection tests: a sandbox with an ask policy,
//! `guardctl run` in the background, and `guardctl pending/approve/deny` from outside the tree.

#![allow(dead_code)]

use guard_e2e::{Sandbox, guardctl_path};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn policy(timeout: &str) -> String {
    format!(
        r#"
[policy]
name = "approvals-test"
default = "allow"
ask_timeout = "{timeout}"

[[rule]]
id = "ask-drafts"
on = "file"
paths = ["~/drafts/**"]
access = ["write"]
decision = "ask"
reason = "drafts need approval"
examples = {{ match = ["write ~/drafts/d.txt"] }}

[[rule]]
id = "ask-touch"
on = "exec"
command = "touch"
decision = "ask"
reason = "touching needs a human"
examples = {{ match = ["touch x"] }}
"#
    )
}

pub struct Session {
    pub sb: Sandbox,
    pub policy: PathBuf,
}

impl Session {
    pub fn new(name: &str, timeout: &str) -> Session {
        let sb = Sandbox::new(name);
        std::fs::create_dir_all(sb.home().join("drafts")).unwrap();
        std::fs::create_dir_all(sb.home().join("ex")).unwrap();
        let policy = sb.root.join("policy.toml");
        std::fs::write(&policy, policy_text(timeout)).unwrap();
        Session { sb, policy }
    }

    pub fn drafts(&self, name: &str) -> String {
        self.sb
            .home()
            .join("drafts")
            .join(name)
            .to_string_lossy()
            .into_owned()
    }

    /// A path outside the drafts (for exec asks: `touch` itself must not ask again).
    pub fn ex(&self, name: &str) -> String {
        self.sb
            .home()
            .join("ex")
            .join(name)
            .to_string_lossy()
            .into_owned()
    }

    /// `guardctl` with this sandbox's HOME and state, outside any guarded tree.
    pub fn guardctl(&self) -> Command {
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

    /// Starts `guardctl run --policy P -- argv...` in the background.
    pub fn spawn(&self, argv: &[&str]) -> Child {
        let mut c = self.guardctl();
        c.arg("run")
            .arg("--policy")
            .arg(&self.policy)
            .arg("--")
            .args(argv)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c.spawn().expect("spawn guardctl run")
    }

    /// The pending asks (one JSON object each), as seen from outside.
    pub fn pending(&self) -> Vec<serde_json::Value> {
        let out = self
            .guardctl()
            .args(["pending", "--json"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pending failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    /// Waits until `n` asks are pending (bounded).
    pub fn wait_pending(&self, n: usize) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let p = self.pending();
            if p.len() >= n {
                return p;
            }
            assert!(
                Instant::now() < deadline,
                "only {} asks pending: {p:?}",
                p.len()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn answer(&self, verb: &str, id: u64) -> Output {
        self.guardctl()
            .args([verb, &id.to_string()])
            .output()
            .unwrap()
    }
}

fn policy_text(timeout: &str) -> String {
    policy(timeout)
}

pub fn finish(child: Child) -> (String, String, Option<i32>) {
    let out = child.wait_with_output().unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code(),
    )
}

pub fn id_of(v: &serde_json::Value) -> u64 {
    v["id"].as_u64().expect("id")
}

pub fn target_of(v: &serde_json::Value) -> String {
    v["target"].as_str().unwrap_or_default().to_string()
}
