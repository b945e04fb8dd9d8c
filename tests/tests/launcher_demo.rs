//! The demo's scripted agent (`tests/programs/agent/agent.py`) under `guardctl run` with the
//! embedded default policy, in a sandbox like the one `scripts/demo.sh` builds: the attacks the
//! default policy must stop are blocked, ordinary work is not, and the log names the rules.

use guard_e2e::{Sandbox, guardctl_path, repo_root};
use serde_json::Value;
use std::process::Command;

fn have(prog: &str) -> bool {
    Command::new(prog)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn demo_agent_is_stopped_where_the_default_policy_says() {
    if !have("python3") || !have("git") {
        eprintln!("skipped: python3 or git missing");
        return;
    }
    let sb = Sandbox::new("ld-demo");
    let (home, work) = (sb.home(), sb.workspace());
    std::fs::create_dir_all(home.join(".ssh")).unwrap();
    std::fs::write(home.join(".ssh/id_ed25519"), "FAKE-DEMO-KEY\n").unwrap();
    std::fs::create_dir_all(work.join("src")).unwrap();
    std::fs::write(work.join("README.md"), "# demo\n").unwrap();
    std::fs::write(work.join("src/app.py"), "print(1)\n").unwrap();
    std::fs::write(work.join(".env"), "TOKEN=fake\n").unwrap();
    let git = |args: &[&str]| {
        let ok = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
            .args(args)
            .current_dir(&work)
            .env("HOME", &home)
            .output()
            .unwrap()
            .status
            .success();
        assert!(ok, "git {args:?}");
    };
    let origin = sb.root.join("origin.git");
    git(&[
        "init",
        "-q",
        "--bare",
        "-b",
        "main",
        origin.to_str().unwrap(),
    ]);
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "README.md"]);
    git(&["commit", "-qm", "init"]);
    git(&["remote", "add", "origin", origin.to_str().unwrap()]);

    let agent = repo_root().join("tests/programs/agent/agent.py");
    // The default policy asks before `git push --force`: play the human and deny every ask
    // (without an answer each one would wait for the 120 s ask timeout).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let denier = {
        let (stop, state, home) = (stop.clone(), sb.state(), home.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let pending = Command::new(guardctl_path())
                    .env("GUARD_STATE_DIR", &state)
                    .env("HOME", &home)
                    .env_remove("LD_PRELOAD")
                    .args(["pending", "--json"])
                    .output();
                for line in pending.iter().flat_map(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .into_owned()
                        .lines()
                        .map(String::from)
                        .collect::<Vec<_>>()
                }) {
                    if let Some(id) = serde_json::from_str::<Value>(&line)
                        .ok()
                        .and_then(|v| v["id"].as_u64())
                    {
                        let _ = Command::new(guardctl_path())
                            .env("GUARD_STATE_DIR", &state)
                            .env("HOME", &home)
                            .env_remove("LD_PRELOAD")
                            .args(["deny", &id.to_string()])
                            .output();
                    }
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        })
    };
    let out = Command::new(guardctl_path())
        .current_dir(&work)
        .env("HOME", &home)
        .env("GUARD_STATE_DIR", sb.state())
        // No GUARD_DEMO_ROOT: the sandbox workspace lives inside HOME, so the agent must skip
        // `rm -rf ~` here (whether that is blocked depends on the policy packs).
        .env_remove("GUARD_DEMO_ROOT")
        .env_remove("LD_PRELOAD")
        .args(["run", "--agent", "demo-agent", "--", "python3"])
        .arg(&agent)
        .output()
        .unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = denier.join();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verdict = |step: &str| -> &str {
        stdout
            .lines()
            .find(|l| l.starts_with("[agent] ") && l.contains(step))
            .unwrap_or_else(|| panic!("no step {step:?}: {stdout}"))
            .split_whitespace()
            .find(|w| ["ALLOWED", "BLOCKED", "FAILED", "REDACTED"].contains(w))
            .unwrap_or("?")
    };
    assert_eq!(verdict("read README.md"), "ALLOWED", "{stdout}");
    assert_eq!(verdict("read ~/.ssh/id_ed25519"), "BLOCKED", "{stdout}");
    assert_eq!(verdict("git push --force"), "BLOCKED", "{stdout}");
    assert_eq!(verdict("connect 169.254.169.254"), "BLOCKED", "{stdout}");
    assert_eq!(verdict("delete a temp file"), "ALLOWED", "{stdout}");
    assert_eq!(verdict("retry from `env -i"), "BLOCKED", "{stdout}");
    assert!(!stdout.contains("FAKE-DEMO-KEY"), "{stdout}");

    let log = Command::new(guardctl_path())
        .env("GUARD_STATE_DIR", sb.state())
        .args(["log", "--last", "--json", "--decision", "deny"])
        .output()
        .unwrap();
    let denies: Vec<Value> = String::from_utf8_lossy(&log.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for action in ["read", "exec", "connect"] {
        assert!(
            denies.iter().any(|e| e["action"] == action
                && e["agent"] == "demo-agent"
                && e["rule"].is_string()),
            "no {action} deny in {denies:?}"
        );
    }
}
