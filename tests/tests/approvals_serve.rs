//! `guardctl serve`: a shared approvals broker. Sessions started while it runs send their asks
//! to it (one `pending`/`approve` answers every session); killing it makes the next ask of an
//! attached session deny at once with the "broker is unreachable" line.

mod approvals_support;

use approvals_support::{Session, finish, id_of, target_of};
use std::process::Stdio;
use std::time::{Duration, Instant};

#[test]
fn sessions_attach_to_serve_and_a_killed_serve_denies_at_once() {
    let s = Session::new("ap-serve", "60s");
    let mut serve = s
        .guardctl()
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let sock = s.sb.state().join("run/broker.sock");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::os::unix::net::UnixStream::connect(&sock).is_err() {
        assert!(Instant::now() < deadline, "serve never listened");
        std::thread::sleep(Duration::from_millis(20));
    }
    let go = s.sb.root.join("go");
    let (a, b) = (s.ex("one"), s.ex("two"));
    let script = format!(
        "touch {a} && echo first-ok; while [ ! -e {go} ]; do sleep 0.05; done; \
         t=$(date +%s); touch {b}; echo second-rc=$? secs=$(( $(date +%s) - t ))",
        go = go.display()
    );
    let child = s.spawn(&["bash", "-c", &script]);
    let p = s.wait_pending(1);
    assert!(target_of(&p[0]).ends_with("/ex/one"), "{p:?}");
    // The ask is held by serve (its ids embed serve's pid), not by the session's broker.
    assert_eq!(id_of(&p[0]) >> 20, u64::from(serve.id()), "{p:?}");
    assert!(s.answer("approve", id_of(&p[0])).status.success());
    // serve acknowledges the approver before the asking process has read its answer: wait for
    // the approved `touch` to have run, or the kill below could race the delivery.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::path::Path::new(&a).exists() {
        assert!(Instant::now() < deadline, "the approved touch never ran");
        std::thread::sleep(Duration::from_millis(10));
    }
    // SAFETY: kill on the serve process we spawned.
    unsafe { libc::kill(serve.id() as i32, libc::SIGKILL) };
    let _ = serve.wait();
    std::fs::write(&go, "").unwrap();
    let (o, e, _) = finish(child);
    assert!(o.contains("first-ok"), "{o}{e}");
    assert!(o.contains("second-rc=126"), "{o}{e}");
    let secs: u64 = o
        .split("secs=")
        .nth(1)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(99);
    assert!(secs <= 2, "the deny waited for the timeout: {o}");
    assert!(
        e.contains(&format!(
            "guard: exec touch {b} needs approval (rule ask-touch) but the broker is unreachable: denied"
        )),
        "{e}"
    );
}
