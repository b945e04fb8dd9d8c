//! Node under libguard: fs sync / callback / promises (also with UV_USE_IO_URING=1, which the
//! guard defeats by failing io_uring_setup), child_process with and without env:{}, net.connect.

mod hooks_support;

use hooks_support::*;

fn node(env: &Env, extra_env: &[(&str, &str)], args: &[&str]) -> Option<(String, String)> {
    let Some(node) = which("node") else {
        eprintln!("SKIP: node is not installed");
        return None;
    };
    let mut c = env.cmd(node);
    for (k, v) in extra_env {
        c.env(k, v);
    }
    c.arg(program_src("node/probe.js")).args(args);
    let (o, e, _) = out(c);
    Some((o, e))
}

#[test]
fn node_fs_in_every_style() {
    let env = Env::new("node-fs");
    let secret = env.h("secret/key");
    for uring in ["0", "1"] {
        for op in ["read-sync", "read-cb", "read-promise"] {
            let Some((o, e)) = node(&env, &[("UV_USE_IO_URING", uring)], &[op, &secret]) else {
                return;
            };
            assert_eq!(
                o.trim(),
                "ERR EACCES",
                "{op} with UV_USE_IO_URING={uring}: {e}"
            );
        }
        let (o, _) = node(
            &env,
            &[("UV_USE_IO_URING", uring)],
            &["read-promise", &env.h("public/file")],
        )
        .unwrap();
        assert_eq!(o.trim(), "OK");
    }
    let (o, _) = node(&env, &[], &["write-sync", &env.h("protected/x")]).unwrap();
    assert_eq!(o.trim(), "ERR EACCES");
    let e = env.broker.wait_for("node read deny", |e| {
        e.rule == "secret-files" && e.runtime == "node"
    });
    assert_eq!(e.decision, "deny");
}

#[test]
fn node_child_process() {
    let env = Env::new("node-exec");
    let Some((o, e)) = node(&env, &[], &["spawn", "date"]) else {
        return;
    };
    assert_eq!(o.trim(), "ERR EACCES", "{e}");
    let (o, _) = node(&env, &[], &["spawn", "true"]).unwrap();
    assert_eq!(o.trim(), "OK 0");
    let (o, _) = node(&env, &[], &["exec-shell", "date"]).unwrap();
    assert!(o.starts_with("ERR status=126"), "{o}");
    assert!(
        o.contains("guard: exec of date denied by rule no-date"),
        "{o}"
    );
    let envbin = which("env").unwrap();
    let (o, _) = node(&env, &[], &["spawn-empty-env", &envbin.to_string_lossy()]).unwrap();
    assert!(
        o.contains(&format!("LD_PRELOAD={};", env.lib.display())),
        "{o}"
    );
    assert!(o.contains("UV_USE_IO_URING=0"), "{o}");
    env.broker.wait_for("node exec deny", |e| {
        e.action == "exec" && e.rule == "no-date" && e.runtime == "node"
    });
}

#[test]
fn node_net_connect() {
    let env = Env::new("node-net");
    let Some((o, _)) = node(&env, &[], &["connect", "127.0.0.1", "9"]) else {
        return;
    };
    assert_eq!(o.trim(), "ERR EACCES");
    let (o, _) = node(&env, &[], &["connect", "127.0.0.1", "10"]).unwrap();
    assert_eq!(o.trim(), "ERR ECONNREFUSED");
    env.broker.wait_for("node connect", |e| {
        e.action == "connect" && e.runtime == "node"
    });
    // dgram sends (libuv's sendmsg/sendmmsg with a destination) are judged like connects.
    let (o, _) = node(&env, &[], &["udp-send", "127.0.0.1", "9"]).unwrap();
    assert_eq!(o.trim(), "ERR EACCES");
    let (o, _) = node(&env, &[], &["udp-send", "127.0.0.1", "10"]).unwrap();
    assert_eq!(o.trim(), "OK");
}
