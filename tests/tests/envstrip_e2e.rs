//! Environment de-escalation under `guardctl run`: variables the default policy's `[env] strip`
//! names never reach the agent's children (`env`, Python `os.environ`, Node `process.env`),
//! `[env] keep` and ordinary variables do; and `/proc/<pid>/environ` reads come back redacted.

use guard_e2e::{Sandbox, guardctl_path};
use std::process::{Command, Output};

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

fn unique(tag: &str) -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{tag}{t:x}{:x}q", std::process::id())
}

/// Random alphanumerics (xorshift seeded by the clock and pid): a token shape no placeholder
/// allowlist knows.
fn random_alnum(n: usize) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut x = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(9)
        ^ ((std::process::id() as u64) << 40)
        | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            A[(x % A.len() as u64) as usize] as char
        })
        .collect()
}

fn out(o: &Output) -> String {
    format!(
        "{}\n--stderr--\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn envstrip_default_policy_in_env_python_and_node() {
    let sb = Sandbox::new("envstrip");
    let aws = unique("awsSecret");
    let gh = unique("ghTok");
    let api = unique("apiKey");
    let keep = unique("kept");
    let plain = unique("plain");
    let script = "env; echo ---; python3 -c 'import os; print(\"\\n\".join(k+\"=\"+v for k,v in os.environ.items()))'; \
                  echo ---; node -e 'for (const [k,v] of Object.entries(process.env)) console.log(k+\"=\"+v)'";
    let o = guardctl(&sb)
        .args(["run", "--", "sh", "-c", script])
        .env("AWS_SECRET_ACCESS_KEY", &aws)
        .env("GITHUB_TOKEN", &gh)
        .env("SOME_API_KEY", &api)
        .env("ANTHROPIC_API_KEY", &keep)
        .env("PLAIN_SETTING", &plain)
        .output()
        .expect("spawn guardctl");
    let text = out(&o);
    assert!(o.status.success(), "{text}");
    let stdout = String::from_utf8_lossy(&o.stdout);
    let parts: Vec<&str> = stdout.split("---\n").collect();
    assert_eq!(parts.len(), 3, "{text}");
    for (who, part) in ["env", "python", "node"].iter().zip(&parts) {
        for (k, v) in [
            ("AWS_SECRET_ACCESS_KEY", &aws),
            ("GITHUB_TOKEN", &gh),
            ("SOME_API_KEY", &api),
        ] {
            assert!(!part.contains(k), "{who}: {k} not stripped: {part}");
            assert!(!part.contains(v.as_str()), "{who}: value of {k} visible");
        }
        assert!(
            part.contains(&format!("ANTHROPIC_API_KEY={keep}")),
            "{who}: [env] keep lost: {part}"
        );
        assert!(
            part.contains(&format!("PLAIN_SETTING={plain}")),
            "{who}: ordinary variable lost"
        );
        assert!(
            part.contains("GUARD_SESSION="),
            "{who}: the guard's own variables stay"
        );
    }
    // The default policy refuses /proc/<pid>/environ reads outright.
    let o = guardctl(&sb)
        .args([
            "run",
            "--",
            "sh",
            "-c",
            "cat /proc/self/environ; echo rc=$?",
        ])
        .output()
        .expect("spawn guardctl");
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("rc=1"),
        "{}",
        out(&o)
    );
}

/// With a policy that allows `/proc/<pid>/environ`, reads of it are redacted: values of
/// secret-named variables and detector findings in other values.
#[test]
fn envstrip_proc_environ_is_redacted() {
    let sb = Sandbox::new("envstrip-proc");
    let pol = sb.root.join("p.toml");
    std::fs::write(
        &pol,
        "[policy]\nname = \"t\"\ndefault = \"allow\"\nmode = \"enforce\"\n\n[env]\nstrip = [\"STRIPPED_*\"]\n",
    )
    .expect("policy");
    let tok = unique("Tok");
    let ghp = format!("ghp_{}", random_alnum(36));
    let plain = unique("plain");
    let o = guardctl(&sb)
        .args(["run", "--policy"])
        .arg(&pol)
        .args([
            "--",
            "sh",
            "-c",
            "tr '\\0' '\\n' < /proc/self/environ; echo ---; tr '\\0' '\\n' < /proc/$$/environ",
        ])
        .env("DEPLOY_TOKEN", &tok)
        .env("NOTE", format!("use {ghp} here"))
        .env("PLAIN_SETTING", &plain)
        .output()
        .expect("spawn guardctl");
    let text = out(&o);
    let stdout = String::from_utf8_lossy(&o.stdout);
    let parts: Vec<&str> = stdout.split("---\n").collect();
    assert_eq!(parts.len(), 2, "{text}");
    for p in parts {
        assert!(p.contains("DEPLOY_TOKEN=REDACTED_BY_POLICY"), "{text}");
        assert!(p.contains("NOTE=use REDACTED_BY_POLICY here"), "{text}");
        assert!(p.contains(&format!("PLAIN_SETTING={plain}")), "{text}");
        assert!(!p.contains(&tok) && !p.contains(&ghp), "{text}");
    }
}
