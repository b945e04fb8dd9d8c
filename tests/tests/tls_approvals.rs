//! The incident scenario with a human in the loop: `guardctl run` (real broker) runs the agent
//! (Python urllib, curl, Node fetch); the policy asks before a `volumeDelete` to `localhost`.
//! Denied from outside the tree: the server never receives the mutation. Approved: it goes
//! through. `guardctl log --json` shows session, agent, process, host, operation and the human's
//! answer (its latency is not in events yet: see the assertion's comment).

mod approvals_support;
mod hooks_support;
mod tls_support;

use approvals_support::{Session, finish, id_of, target_of};
use guard_e2e::repo_root;
use std::time::{Duration, Instant};
use tls_support::Server;

const POLICY: &str = r#"
[policy]
name = "tls-approvals"
default = "allow"
ask_timeout = "60s"

[[rule]]
id = "ask-volume-delete"
on = "http"
hosts = ["localhost"]
graphql = ["volumeDelete"]
decision = "ask"
reason = "deleting volumes needs a human"
examples = { match = ['POST https://localhost/graphql {"query":"mutation { volumeDelete(volumeId: \"v\") }"}'] }
"#;

fn agent_argv(kind: &str, srv: &Server) -> Vec<String> {
    let url = format!("https://localhost:{}/graphql", srv.port);
    let cert = srv.dir.join("cert.pem").to_string_lossy().into_owned();
    let prog = |p: &str| {
        repo_root()
            .join("tests/programs/tls")
            .join(p)
            .to_string_lossy()
            .into_owned()
    };
    match kind {
        "python" => vec![
            hooks_support::python()
                .unwrap()
                .to_string_lossy()
                .into_owned(),
            prog("agent.py"),
            url,
            cert,
        ],
        "curl" => vec!["sh".into(), prog("agent.sh"), url, cert],
        _ => vec![
            "env".into(),
            format!("NODE_EXTRA_CA_CERTS={cert}"),
            "node".into(),
            prog("agent.mjs"),
            url,
        ],
    }
}

fn log_events(s: &Session) -> Vec<serde_json::Value> {
    let out = s
        .guardctl()
        .args(["log", "--json", "--action", "http"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn a_human_denies_then_approves_the_volume_delete() {
    for kind in ["python", "curl", "node"] {
        for verb in ["deny", "approve"] {
            let s = Session::new(&format!("tls-ap-{kind}-{verb}"), "60s");
            std::fs::write(&s.policy, POLICY).unwrap();
            let srv = Server::h1(&s.sb.root.join("srv"));
            let argv = agent_argv(kind, &srv);
            let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
            let child = s.spawn(&argv);
            let p = s.wait_pending(1);
            let ask = &p[0];
            assert_eq!(ask["action"], "http", "{ask}");
            assert!(target_of(ask).contains("volumeDelete"), "{ask}");
            assert!(
                target_of(ask).starts_with("POST https://localhost:"),
                "{ask}"
            );
            // While the human thinks, the server has not seen a byte of the mutation.
            assert_eq!(srv.state().1, vec!["volumes"], "{kind}");
            std::thread::sleep(Duration::from_millis(100));
            let out = s.answer(verb, id_of(ask));
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let (o, e, _) = finish(child);
            let ops = srv.state().1;
            if verb == "approve" {
                assert!(o.contains("DELETE OK"), "{kind}: {o} / {e}");
                assert_eq!(ops, vec!["volumes", "volumeDelete", "volumes"], "{kind}");
            } else {
                assert!(o.contains("DELETE ERR"), "{kind}: {o} / {e}");
                assert_eq!(ops, vec!["volumes", "volumes"], "{kind}: never received");
            }
            // The audit trail: who, which process, which host, which operation, the answer.
            let deadline = Instant::now() + Duration::from_secs(10);
            let ev = loop {
                if let Some(ev) = log_events(&s)
                    .into_iter()
                    .find(|e| e["rule"] == "ask-volume-delete")
                {
                    break ev;
                }
                assert!(
                    Instant::now() < deadline,
                    "{kind}: no http event in the log"
                );
                std::thread::sleep(Duration::from_millis(100));
            };
            let t = ev["target"].as_str().unwrap_or_default();
            assert!(
                t.contains("localhost") && t.contains("volumeDelete"),
                "{ev}"
            );
            assert!(!ev["session"].is_null() && !ev["agent"].is_null(), "{ev}");
            assert!(
                ev["pid"].as_u64().unwrap_or(0) > 0 && !ev["exe"].is_null(),
                "{ev}"
            );
            // The answer is in the reason. The who/latency of the reply are not carried into
            // events yet (the approvals branch keeps them in the AskReply only).
            let reason = ev["reason"].as_str().unwrap_or_default();
            let want = if verb == "approve" {
                "approval: approved"
            } else {
                "approval: denied by a human"
            };
            assert!(reason.starts_with(want), "{kind}: {ev}");
            assert_eq!(
                ev["decision"],
                if verb == "approve" { "allow" } else { "deny" },
                "{ev}"
            );
        }
    }
}
