//! The TLS gate end to end: a local TLS GraphQL server (self-signed certificate made at test
//! time) and an agent written three times (Python urllib, Node fetch, curl) that lists volumes
//! (allowed) and then sends a `volumeDelete` mutation to `localhost`, which the policy denies.
//! The server must never receive the mutation, its data must be intact, the agent must get an
//! error, and the audit must name the session, agent, process, host and operation.
//!
//! Python and curl exercise the interposed libssl hooks (CPython loads libssl `RTLD_LOCAL`);
//! node exercises the inline patch of its statically linked OpenSSL.

mod hooks_support;
mod tls_support;

use hooks_support::*;
use std::time::Duration;
use tls_support::Server;

const TLS_POLICY: &str = r#"
[policy]
name = "tls-test"
default = "allow"

[[rule]]
id = "test-volume-delete"
on = "http"
hosts = ["localhost"]
graphql = ["volumeDelete"]
decision = "deny"
reason = "deleting volumes needs a human"
tags = ["OWASP-LLM06"]
examples = { match = ['POST https://localhost/graphql {"query":"mutation { volumeDelete(volumeId: \"v\") }"}'], no_match = ['POST https://localhost/graphql {"query":"query { volumes { id } }"}'] }
"#;

fn check_denied(env: &Env, srv: &Server, out: &str, err: &str, runtime: &str) {
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines
            .first()
            .is_some_and(|l| l.starts_with("LIST OK") && l.contains("vol-prod-db")),
        "{runtime}: the allowed list must work: {out} / {err}"
    );
    assert!(
        lines.get(1).is_some_and(|l| l.starts_with("DELETE ERR")),
        "{runtime}: the delete must fail: {out} / {err}"
    );
    // A refused request kills only its own connection: the agent's next one works.
    assert!(
        lines.get(2).is_some_and(|l| l.starts_with("LIST2 OK")),
        "{runtime}: a later request must work: {out} / {err}"
    );
    let (vols, ops) = srv.state();
    assert_eq!(
        ops,
        vec!["volumes", "volumes"],
        "{runtime}: the server never saw the mutation"
    );
    assert!(vols.contains(&"vol-prod-db".to_string()), "data intact");
    let e = env.broker.wait_for("http deny", |e| {
        e.action == "http" && e.rule == "test-volume-delete" && e.runtime == runtime
    });
    assert_eq!(e.decision, "deny");
    assert_eq!(e.session, "test-session");
    assert!(
        e.target.starts_with("POST https://localhost:"),
        "{}",
        e.target
    );
    assert!(e.target.contains("volumeDelete"), "{}", e.target);
    assert!(e.pid > 0 && !e.exe.is_empty());
}

#[test]
fn python_urllib_delete_is_denied_before_the_server_sees_it() {
    let env = Env::with_policy("tls-py", TLS_POLICY);
    let srv = Server::h1(&env.sb.root.join("srv"));
    let mut c = env.cmd(python().unwrap());
    c.arg(program_src("tls/agent.py"))
        .arg(srv.url())
        .arg(srv.cert());
    let (o, e, _) = out(c);
    check_denied(&env, &srv, &o, &e, "python");
    // SSL_write_ex can only say 0: the queued system error makes CPython raise SSLError [SYS].
    assert!(o.contains("DELETE ERR SSLError"), "{o}");
}

#[test]
fn curl_delete_is_denied_before_the_server_sees_it() {
    if which("curl").is_none() {
        panic!("curl is required");
    }
    let env = Env::with_policy("tls-curl", TLS_POLICY);
    let srv = Server::h1(&env.sb.root.join("srv"));
    let mut c = env.cmd("sh");
    c.arg(program_src("tls/agent.sh"))
        .arg(srv.url())
        .arg(srv.cert());
    let (o, e, _) = out(c);
    check_denied(&env, &srv, &o, &e, "native");
    assert!(
        o.contains("Permission denied") || o.contains("errno 13"),
        "{o}"
    );
}

#[test]
fn node_fetch_delete_is_denied_before_the_server_sees_it() {
    let Some(node) = which("node") else {
        panic!("node is required")
    };
    let env = Env::with_policy("tls-node", TLS_POLICY);
    let srv = Server::h1(&env.sb.root.join("srv"));
    let mut c = env.cmd(node);
    c.arg(program_src("tls/agent.mjs"))
        .arg(srv.url())
        .env("NODE_EXTRA_CA_CERTS", srv.cert());
    let (o, e, _) = out(c);
    check_denied(&env, &srv, &o, &e, "node");
}

#[test]
fn allowed_mutation_goes_through_without_a_rule() {
    // Same agent, a policy without the rule: the delete reaches the server (the gate does not
    // break allowed traffic, and the test server really deletes).
    let env = Env::with_policy("tls-allow", "[policy]\nname = \"t\"\ndefault = \"allow\"\n");
    let srv = Server::h1(&env.sb.root.join("srv"));
    let mut c = env.cmd(python().unwrap());
    c.arg(program_src("tls/agent.py"))
        .arg(srv.url())
        .arg(srv.cert());
    let (o, e, _) = out(c);
    assert!(o.contains("DELETE OK"), "{o} / {e}");
    let (vols, ops) = srv.state();
    assert_eq!(ops, vec!["volumes", "volumeDelete", "volumes"]);
    assert!(!vols.contains(&"vol-prod-db".to_string()));
}

#[test]
fn requests_split_across_writes_are_held_then_judged_whole() {
    let env = Env::with_policy("tls-split", TLS_POLICY);
    let srv = Server::h1(&env.sb.root.join("srv"));
    let mut c = env.cmd(python().unwrap());
    c.arg(program_src("tls/agent_split.py"))
        .arg(srv.port.to_string())
        .arg(srv.cert());
    let (o, e, _) = out(c);
    // The allowed request was held piece by piece and then released in order, whole.
    assert!(
        o.lines()
            .next()
            .is_some_and(|l| l.starts_with("LIST OK") && l.contains("vol-prod-db")),
        "{o} / {e}"
    );
    // The head and the first two body pieces were reported written (held); the last piece
    // completed the request, which was refused: nothing of it reached the server.
    assert!(o.contains("DELETE ERR SSLError pieces=3"), "{o} / {e}");
    let (vols, ops) = srv.state();
    assert_eq!(ops, vec!["volumes"]);
    assert!(vols.contains(&"vol-prod-db".to_string()));
    env.broker.wait_for("split deny", |e| {
        e.action == "http" && e.rule == "test-volume-delete" && e.target.contains("volumeDelete")
    });
}

#[test]
fn connect_to_443_without_visible_tls_is_recorded() {
    // bash has no TLS stack at all: its first connect to port 443 says TLS is not visible.
    let Some(bash) = which("bash") else {
        panic!("bash is required")
    };
    let env = Env::with_policy("tls-unseen", TLS_POLICY);
    let mut c = env.cmd(bash);
    c.args([
        "-c",
        "exec 3<>/dev/tcp/127.0.0.1/443; exec 3<>/dev/tcp/127.0.0.1/443; true",
    ]);
    let _ = out(c);
    let e = env.broker.wait_for("tls-unseen", |e| {
        e.action == "tls" && e.reason.starts_with("tls-unseen")
    });
    assert_eq!(e.decision, "audit");
    std::thread::sleep(Duration::from_millis(200));
    let n = env
        .broker
        .events()
        .iter()
        .filter(|e| e.action == "tls")
        .count();
    assert_eq!(n, 1, "once per process");
}

#[test]
fn node_allowed_requests_pass_through_the_trampoline() {
    // Allowed requests (a policy without the rule) go through the patched SSL_write and its
    // trampoline to node's own OpenSSL, on one keep-alive connection; no TLS note is recorded.
    let Some(node) = which("node") else {
        panic!("node is required")
    };
    let env = Env::with_policy(
        "tls-node-ok",
        "[policy]\nname = \"t\"\ndefault = \"allow\"\n",
    );
    let srv = Server::h1(&env.sb.root.join("srv"));
    let mut c = env.cmd(node);
    c.arg(program_src("tls/agent.mjs"))
        .arg(srv.url())
        .env("NODE_EXTRA_CA_CERTS", srv.cert());
    let (o, e, _) = out(c);
    assert!(o.contains("DELETE OK"), "{o} / {e}");
    assert_eq!(srv.state().1, vec!["volumes", "volumeDelete", "volumes"]);
    env.broker.assert_none("tls notes", |e| e.action == "tls");
}
