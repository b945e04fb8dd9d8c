//! The TLS gate beyond HTTP/1.1 request/response: HTTP/2 through the hooks (curl with the
//! dynamic libssl, node's `http2` through the patched static OpenSSL), TLS 1.3 early data
//! (`SSL_write_early_data`), `Expect: 100-continue`, response statuses in the audit, and
//! redaction of secrets in outbound bodies.

mod hooks_support;
mod tls_support;

use hooks_support::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tls_support::Server;

const DENY_DELETE: &str = r#"
[policy]
name = "tls-protocols"
default = "allow"

[[rule]]
id = "test-volume-delete"
on = "http"
hosts = ["localhost"]
graphql = ["volumeDelete"]
decision = "deny"
reason = "deleting volumes needs a human"
examples = { match = ['POST https://localhost/graphql {"query":"mutation { volumeDelete(volumeId: \"v\") }"}'] }
"#;

fn assert_store_intact(srv: &Server, what: &str) {
    let (vols, ops) = srv.state();
    assert!(
        !ops.iter().any(|o| o == "volumeDelete"),
        "{what}: the server saw the mutation: {ops:?}"
    );
    assert!(
        vols.contains(&"vol-prod-db".to_string()),
        "{what}: data intact"
    );
    assert!(
        !srv.log().iter().any(|l| l.contains("volumeDelete")),
        "{what}: the server log shows the mutation: {:?}",
        srv.log()
    );
}

/// The deny event; `prefix`: how its target starts (method, scheme, host from `Host` or
/// `:authority`).
fn deny_event(env: &Env, runtime: &str, prefix: &str) -> Ev {
    let e = env.broker.wait_for("http deny", |e| {
        e.action == "http" && e.rule == "test-volume-delete" && e.runtime == runtime
    });
    assert_eq!(e.decision, "deny");
    assert_eq!(e.session, "test-session");
    // Host (from :authority) and the GraphQL operation.
    assert!(e.target.starts_with(prefix), "{}", e.target);
    assert!(e.target.contains("volumeDelete"), "{}", e.target);
    e
}

#[test]
fn curl_http2_allowed_stream_passes_and_the_denied_stream_never_reaches_the_server() {
    let env = Env::with_policy("tls-h2-curl", DENY_DELETE);
    let srv = Server::h2(&env.sb.root.join("srv"));
    let mut c = env.cmd("sh");
    c.arg(program_src("tls/agent_h2.sh"))
        .arg(srv.url())
        .arg(srv.cert());
    let (o, e, _) = out(c);
    // The allowed query went over HTTP/2 and was answered.
    assert!(o.contains("vol-prod-db"), "{o} / {e}");
    assert!(o.contains("= 200 2 1"), "HTTP/2, first transfer: {o} / {e}");
    // The mutation failed in the client with a send error (55), not the --max-time timeout.
    assert!(!o.contains("volumeDelete\":true"), "{o}");
    assert!(o.contains("EXIT 55"), "curl must fail: {o}");
    assert_store_intact(&srv, "curl h2");
    let log = srv.log();
    assert_eq!(log.len(), 1, "only the allowed stream arrived: {log:?}");
    assert!(log[0].starts_with("1 1 POST localhost:"), "{log:?}");
    deny_event(&env, "native", "POST https://localhost:");
}

#[test]
fn node_http2_streams_on_one_session_are_judged_separately() {
    let Some(node) = which("node") else {
        panic!("node is required")
    };
    let env = Env::with_policy("tls-h2-node", DENY_DELETE);
    let srv = Server::h2(&env.sb.root.join("srv"));
    let mut c = env.cmd(node);
    c.arg(program_src("tls/agent_h2.mjs"))
        .arg(srv.url())
        .env("NODE_EXTRA_CA_CERTS", srv.cert());
    let (o, e, _) = out(c);
    let lines: Vec<&str> = o.lines().collect();
    assert!(
        lines
            .first()
            .is_some_and(|l| l.starts_with("LIST OK 200") && l.contains("vol-prod-db")),
        "{o} / {e}"
    );
    assert!(
        lines.get(1).is_some_and(|l| l.starts_with("LIST2 OK 200")),
        "{o} / {e}"
    );
    assert!(
        // An error from the connection ending, not the agent's own 5 s timeout.
        lines
            .get(2)
            .is_some_and(|l| l.starts_with("DELETE ERR") && !l.contains("timeout")),
        "{o} / {e}"
    );
    assert_store_intact(&srv, "node h2");
    // Streams 1 and 3 of one session arrived; stream 5 (the mutation) never did.
    let log = srv.log();
    let ids: Vec<(&str, &str)> = log
        .iter()
        .map(|l| {
            let mut f = l.split(' ');
            (f.next().unwrap_or(""), f.next().unwrap_or(""))
        })
        .collect();
    assert_eq!(ids, vec![("1", "1"), ("1", "3")], "{log:?}");
    deny_event(&env, "node", "POST https://localhost:");
}

#[test]
fn early_data_is_gated_like_ssl_write() {
    // openssl s_server accepts 0-RTT and prints what it receives. The allowed GET goes out as
    // early data through the hook; the mutation written as early data is refused in the hook.
    let Some(openssl) = which("openssl") else {
        panic!("openssl is required")
    };
    let env = Env::with_policy("tls-early", DENY_DELETE);
    let dir = env.sb.root.join("srv");
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let st = Command::new(&openssl)
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let log = dir.join("server.out");
    let srv = Command::new(&openssl)
        .args([
            "s_server",
            "-quiet",
            "-early_data",
            "-tls1_3",
            "-naccept",
            "4",
        ])
        .arg("-accept")
        .arg(format!("127.0.0.1:{port}"))
        .arg("-cert")
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Killed on drop, also when an assertion fails first.
    let mut srv = Server {
        child: srv,
        dir: dir.clone(),
        port,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "s_server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    // That probe was the first of the three accepted connections.
    let prog = cc(
        "tls/early_data.c",
        "early_data",
        &["-Wl,--no-as-needed", "-lssl", "-lcrypto"],
    );
    let mut c = env.cmd(prog);
    c.arg(port.to_string());
    let (o, e, code) = out(c);
    let _ = srv.child.kill();
    let _ = srv.child.wait();
    let seen = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(o.contains("EARLY OK"), "{o} / {e} / {code:?}");
    assert!(o.contains("status=accepted"), "sent as 0-RTT: {o}");
    assert!(
        seen.contains("GET /early"),
        "the allowed early data arrived: {seen}"
    );
    assert!(
        o.contains("EARLYDENY ERR ret=0 errno=13"),
        "the mutation in early data is refused with EACCES: {o} / {e}"
    );
    assert!(!seen.contains("volumeDelete"), "{seen}");
    deny_event(&env, "native", "POST https://localhost/graphql ");
}

const AUDIT_LIST: &str = r#"
[policy]
name = "tls-status"
default = "allow"

[[rule]]
id = "test-volume-list"
on = "http"
hosts = ["localhost"]
graphql = ["volumes"]
graphql_operation = ["query"]
decision = "audit"
reason = "listing volumes is recorded"
examples = { match = ['POST https://localhost/graphql {"query":"query { volumes { id } }"}'] }

[[rule]]
id = "test-volume-delete"
on = "http"
hosts = ["localhost"]
graphql = ["volumeDelete"]
decision = "deny"
examples = { match = ['POST https://localhost/graphql {"query":"mutation { volumeDelete(volumeId: \"v\") }"}'] }
"#;

/// Every audited request got a follow-up `http-response` event with its target and status.
fn assert_statuses(env: &Env, runtime: &str, audited: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let evs = env.broker.events();
        let reqs: Vec<&Ev> = evs
            .iter()
            .filter(|e| e.action == "http" && e.rule == "test-volume-list" && e.runtime == runtime)
            .collect();
        let resps: Vec<&Ev> = evs
            .iter()
            .filter(|e| e.action == "http-response" && e.runtime == runtime)
            .collect();
        if reqs.len() >= audited && resps.len() >= audited {
            for (q, r) in reqs.iter().zip(&resps) {
                assert_eq!(q.target, r.target, "the follow-up names its request");
                assert_eq!(r.reason, "status 200", "{r:?}");
                assert_eq!(r.decision, "audit");
                assert_eq!(q.pid, r.pid);
            }
            // The refused mutation never got a response, so it has no follow-up.
            assert!(resps.iter().all(|r| !r.target.contains("volumeDelete")));
            assert_eq!(resps.len(), audited, "{resps:?}");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{runtime}: {} audited requests, {} statuses: {evs:?}",
            reqs.len(),
            resps.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn response_status_of_audited_http1_requests_is_recorded() {
    let env = Env::with_policy("tls-status-h1", AUDIT_LIST);
    let srv = Server::h1(&env.sb.root.join("srv"));
    let mut c = env.cmd(python().unwrap());
    c.arg(program_src("tls/agent.py"))
        .arg(srv.url())
        .arg(srv.cert());
    let (o, e, _) = out(c);
    assert!(o.contains("LIST2 OK"), "{o} / {e}");
    // LIST and LIST2 are audited (one connection each: urllib closes after a response).
    assert_statuses(&env, "python", 2);
}

#[test]
fn response_status_of_audited_http2_streams_is_recorded() {
    let Some(node) = which("node") else {
        panic!("node is required")
    };
    let env = Env::with_policy("tls-status-h2", AUDIT_LIST);
    let srv = Server::h2(&env.sb.root.join("srv"));
    let mut c = env.cmd(node);
    c.arg(program_src("tls/agent_h2.mjs"))
        .arg(srv.url())
        .env("NODE_EXTRA_CA_CERTS", srv.cert());
    let (o, e, _) = out(c);
    assert!(o.contains("LIST2 OK 200"), "{o} / {e}");
    // Streams 1 and 3 of one session, paired by stream id.
    assert_statuses(&env, "node", 2);
}

#[test]
fn expect_100_continue_is_judged_on_the_whole_request() {
    // The head (with `Expect: 100-continue`) is held: the server never sees it, so it sends no
    // `100 Continue`; curl sends the body after its 1 s expect timeout, which completes the
    // request, and the decision is taken on head and body. The refusal depends on the body
    // (the GraphQL operation), so a decision on the head alone could not have refused it.
    let env = Env::with_policy("tls-expect", DENY_DELETE);
    let srv = Server::h1(&env.sb.root.join("srv"));
    let mut c = env.cmd("sh");
    c.arg(program_src("tls/agent_expect.sh"))
        .arg(srv.url())
        .arg(srv.cert());
    let (o, e, _) = out(c);
    assert!(
        o.lines()
            .next()
            .is_some_and(|l| l.starts_with("LIST OK") && l.contains("vol-prod-db")),
        "{o} / {e}"
    );
    assert!(
        o.lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("DELETE ERR")),
        "{o} / {e}"
    );
    let (vols, ops) = srv.state();
    assert_eq!(ops, vec!["volumes"], "the server never saw the mutation");
    assert!(vols.contains(&"vol-prod-db".to_string()));
    let ev = deny_event(&env, "native", "POST https://localhost:");
    assert!(
        ev.target.contains("volumeDelete"),
        "decided on the body: {}",
        ev.target
    );
}

const HEAD_ONLY: &str = r#"
[policy]
name = "tls-head-only"
default = "allow"

[[rule]]
id = "test-graphql-posts"
on = "http"
hosts = ["localhost"]
methods = ["POST"]
paths = ["/graphql"]
decision = "audit"
examples = { match = ['POST https://localhost/graphql {}'] }

[[rule]]
id = "test-admin"
on = "http"
hosts = ["localhost"]
paths = ["/admin*"]
decision = "deny"
examples = { match = ['POST https://localhost/admin/x {}'] }
"#;

#[test]
fn expect_100_continue_head_is_released_when_no_rule_needs_the_body() {
    // No rule for the host reads bodies, so the head is judged alone and released: the server
    // answers `100 Continue` and curl, told to wait up to 20 s for it, sends the body at once.
    // A head that a rule refuses never reaches the server.
    let env = Env::with_policy("tls-expect-head", HEAD_ONLY);
    let srv = Server::h1(&env.sb.root.join("srv"));
    let curl = |path: &str| {
        let mut c = env.cmd("curl");
        c.args(["-sS", "--http1.1", "--fail", "--max-time", "15"])
            .args(["--expect100-timeout", "20", "--cacert"])
            .arg(srv.cert())
            .args(["-H", "content-type: application/json"])
            .args(["-H", "Expect: 100-continue"])
            .args(["-w", " t=%{time_total}"])
            .args(["--data", "{\"query\":\"query { volumes { id } }\"}"])
            .arg(format!("https://localhost:{}{path}", srv.port));
        out(c)
    };
    let (o, e, code) = curl("/graphql");
    assert_eq!(code, Some(0), "{o} / {e}");
    assert!(o.contains("vol-prod-db"), "{o}");
    let t: f64 = o
        .rsplit("t=")
        .next()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(99.0);
    assert!(
        t < 5.0,
        "the body followed the server's 100 Continue: {t} s: {o}"
    );
    let ev = env.broker.wait_for("audit", |e| {
        e.action == "http" && e.rule == "test-graphql-posts"
    });
    assert_eq!(ev.decision, "audit");
    // Judged on the head: the target quotes no body.
    assert_eq!(
        ev.target,
        format!("POST https://localhost:{}/graphql", srv.port)
    );
    let (o, e, code) = curl("/admin/x");
    assert_ne!(code, Some(0), "{o} / {e}");
    let ev = env
        .broker
        .wait_for("deny", |e| e.action == "http" && e.rule == "test-admin");
    assert_eq!(ev.decision, "deny");
    let (_, ops) = srv.state();
    assert_eq!(ops, vec!["volumes"], "the refused request never arrived");
}

const REDACT_ECHO: &str = r#"
[policy]
name = "tls-redact"
default = "allow"

[[rule]]
id = "redact-outbound"
on = "http"
hosts = ["localhost"]
paths = ["/echo"]
decision = "redact"
reason = "no secrets leave for this host"
examples = { match = ['POST https://localhost/echo {"k":"v"}'] }
"#;

/// A GitHub token shape the built-in detectors find (not a real token).
const TOKEN: &str = "ghp_R8x2Lq9ZtV4mN7pK3sW6yB1cD5fG0hJ2aQ8e";

fn echo_log(srv: &Server) -> Vec<serde_json::Value> {
    std::fs::read_to_string(srv.dir.join("echo.log"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn curl_echo(env: &Env, srv: &Server, extra: &[&str], body: &str) -> (String, String) {
    let mut c = env.cmd("curl");
    c.args(["-sS", "--max-time", "10", "--cacert"])
        .arg(srv.cert())
        .args(["-H", "content-type: application/json"])
        .args(extra)
        .args(["--data", body])
        .arg(format!("https://localhost:{}/echo", srv.port));
    let (o, e, _) = out(c);
    (o, e)
}

/// What the guard puts in place of `TOKEN` (40 bytes): the placeholder padded with `*` to the
/// secret's length, so the body keeps its length.
fn scrubbed(body: &str) -> String {
    body.replace(TOKEN, "REDACTED_BY_POLICY**********************")
}

#[test]
fn redact_rules_scrub_secrets_from_outbound_http1_bodies() {
    assert_eq!(TOKEN.len(), 4 + 36);
    let env = Env::with_policy("tls-redact", REDACT_ECHO);
    let srv = Server::h1(&env.sb.root.join("srv"));
    let body = format!("{{\"note\":\"deploy\",\"token\":\"{TOKEN}\",\"n\":1}}");
    let expected = scrubbed(&body);
    assert_eq!(expected.len(), body.len());
    // Content-Length body, then a chunked one, then a body without a secret (sent as written).
    let (o1, e1) = curl_echo(&env, &srv, &["--http1.1"], &body);
    let (o2, e2) = curl_echo(
        &env,
        &srv,
        &["--http1.1", "-H", "Transfer-Encoding: chunked"],
        &body,
    );
    let (o3, e3) = curl_echo(&env, &srv, &["--http1.1"], "{\"clean\":true}");
    let log = echo_log(&srv);
    assert_eq!(log.len(), 3, "{o1} {e1} / {o2} {e2} / {o3} {e3} / {log:?}");
    for l in &log[..2] {
        assert_eq!(l["body"], expected.as_str(), "{l}");
    }
    // The framing is the client's own: same length, chunked stays chunked.
    assert_eq!(log[0]["cl"], body.len().to_string().as_str(), "{}", log[0]);
    assert!(log[1]["cl"].is_null(), "{}", log[1]);
    assert_eq!(log[1]["te"], "chunked", "{}", log[1]);
    assert_eq!(log[2]["body"], "{\"clean\":true}");
    assert!(o1.contains(&format!("\"len\": {}", body.len())), "{o1}");
    // Events arrive asynchronously: wait for all three.
    let deadline = Instant::now() + Duration::from_secs(10);
    let evs = loop {
        let evs = env.broker.events();
        let n = evs
            .iter()
            .filter(|e| e.action == "http" && e.rule == "redact-outbound")
            .count();
        if n >= 3 || Instant::now() > deadline {
            break evs;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let red: Vec<&Ev> = evs
        .iter()
        .filter(|e| e.action == "http" && e.rule == "redact-outbound")
        .collect();
    assert_eq!(red.len(), 3, "{evs:?}");
    for e in &red {
        assert_eq!(e.decision, "redact");
        assert!(
            !e.target.contains(TOKEN),
            "the audit never holds the secret: {}",
            e.target
        );
    }
    assert!(red[0].reason.contains("github-pat x1"), "{}", red[0].reason);
    assert!(
        red[0].target.contains("REDACTED_BY_POLICY"),
        "{}",
        red[0].target
    );
    assert!(
        red[2].reason.contains("no secret found"),
        "{}",
        red[2].reason
    );
}

/// Requests of the HTTP/2 server's log: (session, stream, path, body).
fn h2_requests(srv: &Server) -> Vec<(String, String, String, String)> {
    srv.log()
        .iter()
        .map(|l| {
            let mut f = l.splitn(6, ' ');
            let mut next = || f.next().unwrap_or("").to_string();
            let (sess, stream, _method, _auth, path, body) =
                (next(), next(), next(), next(), next(), next());
            (sess, stream, path, body)
        })
        .collect()
}

fn assert_h2_scrubbed(env: &Env, srv: &Server, runtime: &str, secret_body: &str, what: &str) {
    let reqs = h2_requests(srv);
    assert_eq!(reqs.len(), 3, "{what}: {reqs:?}");
    // One connection, three streams: the redacted request did not break it.
    assert!(
        reqs.iter().all(|r| r.0 == reqs[0].0),
        "{what}: one session: {reqs:?}"
    );
    let streams: Vec<&str> = reqs.iter().map(|r| r.1.as_str()).collect();
    assert_eq!(streams, ["1", "3", "5"], "{what}");
    assert_eq!(reqs[0].3, "{\"clean\":1}", "{what}");
    assert_eq!(reqs[1].3, scrubbed(secret_body), "{what}");
    assert_eq!(reqs[2].3, "{\"clean\":2}", "{what}");
    let raw = std::fs::read(srv.dir.join("requests.log")).unwrap();
    assert!(
        !raw.windows(10).any(|w| w == &TOKEN.as_bytes()[4..14]),
        "{what}: no byte run of the secret reached the server"
    );
    let e = env.broker.wait_for("h2 redaction", |e| {
        e.action == "http" && e.rule == "redact-outbound" && e.reason.starts_with("redacted")
    });
    assert_eq!(e.decision, "redact");
    assert_eq!(e.runtime, runtime);
    assert!(e.reason.contains("github-pat x1"), "{}", e.reason);
    assert!(!e.target.contains(TOKEN), "{}", e.target);
}

#[test]
fn redact_over_http2_scrubs_data_frames_in_place_with_curl() {
    // curl --http2, three transfers on one connection (`--next`): clean, with a secret, clean.
    let env = Env::with_policy("tls-redact-h2", REDACT_ECHO);
    let srv = Server::h2(&env.sb.root.join("srv"));
    let body = format!("{{\"token\":\"{TOKEN}\",\"n\":1}}");
    let url = format!("https://localhost:{}/echo", srv.port);
    let mut c = env.cmd("curl");
    for (i, b) in ["{\"clean\":1}", body.as_str(), "{\"clean\":2}"]
        .iter()
        .enumerate()
    {
        if i > 0 {
            c.arg("--next");
        }
        c.args(["-sS", "--http2", "--max-time", "10", "--cacert"])
            .arg(srv.cert())
            .args(["-H", "content-type: application/json", "--data", b])
            .args(["-w", "\n= %{http_code} %{http_version} %{num_connects}\n"])
            .arg(&url);
    }
    let (o, e, code) = out(c);
    assert_eq!(code, Some(0), "{o} / {e}");
    let codes: Vec<&str> = o.lines().filter(|l| l.starts_with("= ")).collect();
    assert_eq!(codes, ["= 200 2 1", "= 200 2 0", "= 200 2 0"], "{o} / {e}");
    assert_h2_scrubbed(&env, &srv, "native", &body, "curl");
}

#[test]
fn redact_over_http2_scrubs_data_frames_in_place_with_node() {
    let Some(node) = which("node") else {
        panic!("node is required")
    };
    let env = Env::with_policy("tls-redact-h2-node", REDACT_ECHO);
    let srv = Server::h2(&env.sb.root.join("srv"));
    let body = format!("{{\"token\":\"{TOKEN}\",\"n\":1}}");
    let mut c = env.cmd(node);
    c.arg(program_src("tls/agent_h2_echo.mjs"))
        .arg(format!("https://localhost:{}/echo", srv.port))
        .args(["{\"clean\":1}", body.as_str(), "{\"clean\":2}"])
        .env("NODE_EXTRA_CA_CERTS", srv.cert());
    let (o, e, code) = out(c);
    assert_eq!(code, Some(0), "{o} / {e}");
    let lines: Vec<&str> = o.lines().collect();
    assert_eq!(lines.len(), 3, "{o} / {e}");
    assert!(lines.iter().all(|l| l.starts_with("OK 200")), "{o} / {e}");
    assert_h2_scrubbed(&env, &srv, "node", &body, "node");
}

/// An HTTP/2 body held for inspection can only grow to the flow-control window the server
/// granted: the client then waits for a WINDOW_UPDATE the server never sends for bytes it never
/// received. The gate must decide then, not hang the program: a 300 kB upload under a rule that
/// reads bodies is refused promptly and no part of it reaches the server, while the same upload
/// to a path no body rule covers streams through whole.
#[test]
fn http2_body_larger_than_the_flow_control_window_is_refused_not_stalled() {
    let env = Env::with_policy("tls-h2-window", REDACT_ECHO);
    let srv = Server::h2(&env.sb.root.join("srv"));
    let big = env.sb.root.join("big.json");
    let payload = format!("{{\"blob\":\"{}\"}}", "a".repeat(300_000));
    std::fs::write(&big, &payload).unwrap();
    let post = |path: &str| {
        let mut c = env.cmd("curl");
        c.args(["-sS", "--http2", "--max-time", "30", "--cacert"])
            .arg(srv.cert())
            .args(["-H", "content-type: application/json", "--data-binary"])
            .arg(format!("@{}", big.display()))
            .args(["-o", "/dev/null", "-w", "%{http_code}"])
            .arg(format!("https://localhost:{}{path}", srv.port));
        let t = Instant::now();
        let r = out(c);
        (r, t.elapsed())
    };

    let ((o, e, code), took) = post("/echo");
    assert_ne!(code, Some(0), "the held upload must fail: {o} / {e}");
    assert!(
        took < Duration::from_secs(15),
        "refused promptly, not after the client's timeout: {took:?} ({o} / {e})"
    );
    assert!(
        !h2_requests(&srv).iter().any(|r| r.2 == "/echo"),
        "no request reached the server: {:?}",
        h2_requests(&srv)
    );
    let ev = env.broker.wait_for("flow-control refusal", |e| {
        e.action == "tls" && e.reason.contains("flow-control window")
    });
    assert_eq!(ev.decision, "deny");

    let ((o, e, code), _) = post("/other");
    assert_eq!((code, o.as_str()), (Some(0), "200"), "{e}");
    let reqs = h2_requests(&srv);
    let other = reqs
        .iter()
        .find(|r| r.2 == "/other")
        .expect("the upload arrived");
    assert_eq!(other.3.len(), payload.len(), "whole body");

    // node's http2 (the patched static OpenSSL): the same refusal, before the script's own
    // 5-second request timeout (100 kB: one argument may not exceed 128 KiB).
    let payload = format!("{{\"blob\":\"{}\"}}", "a".repeat(100_000));
    let node = which("node").expect("node is required");
    let mut c = env.cmd(node);
    c.arg(program_src("tls/agent_h2_echo.mjs"))
        .arg(format!("https://localhost:{}/echo", srv.port))
        .arg(&payload)
        .env("NODE_EXTRA_CA_CERTS", srv.cert());
    let t = Instant::now();
    let (o, e, code) = out(c);
    let took = t.elapsed();
    assert_eq!(code, Some(1), "{o} / {e}");
    assert!(o.starts_with("ERR") && !o.contains("timeout"), "{o} / {e}");
    assert!(took < Duration::from_secs(4), "{took:?}: {o} / {e}");
    assert!(
        !h2_requests(&srv).iter().any(|r| r.2 == "/echo"),
        "no request reached the server: {:?}",
        h2_requests(&srv)
    );
    env.broker.wait_for("node flow-control refusal", |e| {
        e.action == "tls" && e.runtime == "node" && e.reason.contains("flow-control window")
    });
}
