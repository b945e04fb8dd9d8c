//! `guardctl watch`: printed stream when not on a terminal, and the interactive console driven
//! through a pseudo-terminal (select the ask, press `a`, the agent's call proceeds).

mod approvals_support;

use approvals_support::{Session, finish};
use std::process::Stdio;
use std::time::Duration;

#[test]
fn watch_prints_events_and_asks_without_a_terminal() {
    let s = Session::new("ap-watch-plain", "60s");
    // The state tree must exist before the console starts tailing it.
    std::fs::create_dir_all(s.sb.state().join("sessions")).unwrap();
    let watch = s
        .guardctl()
        .args(["watch", "--duration-ms", "6000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let f = s.ex("w");
    let child = s.spawn(&[
        "bash",
        "-c",
        &format!("cat /etc/hostname >/dev/null; touch {f}; echo rc=$?"),
    ]);
    let p = s.wait_pending(1);
    let id = approvals_support::id_of(&p[0]);
    std::thread::sleep(Duration::from_millis(600));
    assert!(s.answer("approve", id).status.success());
    let (o, e, _) = finish(child);
    assert!(o.contains("rc=0"), "{o}{e}");
    let out = watch.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines().any(|l| l.starts_with(&format!("ASK {id} "))
            && l.contains(&format!("touch {f}"))
            && l.contains("rule ask-touch")),
        "{text}"
    );
    assert!(text.contains(&format!("ANSWERED {id}")), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("EVENT ") && l.contains("exec cat /etc/hostname")),
        "{text}"
    );
}

/// Drives `guardctl watch` in a pty: waits until the ask is on screen, presses `a`.
const PTY_DRIVER: &str = r#"
import os, pty, sys, time, select
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], [sys.argv[1], "watch", "--duration-ms", "20000"])
screen = b""
deadline = time.time() + 20
sent = False
while time.time() < deadline:
    r, _, _ = select.select([fd], [], [], 0.2)
    if r:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        screen += chunk
    if not sent and sys.argv[2].encode() in screen and b"rule: ask-touch" in screen:
        os.write(fd, b"a")
        sent = True
    if sent and b"approved" in screen:
        os.write(fd, b"q")
        break
os.waitpid(pid, 0)
sys.stdout.write("SENT=%s\n" % sent)
sys.stdout.write(screen.decode(errors="replace"))
"#;

#[test]
fn watch_console_approves_with_a_key_in_a_terminal() {
    let s = Session::new("ap-watch-tty", "60s");
    std::fs::create_dir_all(s.sb.state().join("sessions")).unwrap();
    let f = s.ex("tty");
    let child = s.spawn(&["bash", "-c", &format!("touch {f}; echo rc=$?")]);
    s.wait_pending(1);
    let mut py = std::process::Command::new("python3");
    py.args(["-c", PTY_DRIVER])
        .arg(guard_e2e::guardctl_path())
        .arg(format!("touch {f}"))
        .current_dir(s.sb.workspace())
        .env("HOME", s.sb.home())
        .env("GUARD_STATE_DIR", s.sb.state())
        .env("TERM", "xterm")
        .env_remove("LD_PRELOAD")
        .env_remove("GUARD_SESSION");
    let out = py.output().unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(screen.starts_with("SENT=True"), "{screen}");
    assert!(screen.contains("agent: bash"), "{screen}");
    assert!(screen.contains("process: pid"), "{screen}");
    let (o, e, _) = finish(child);
    assert!(o.contains("rc=0"), "{o}{e}");
    assert!(std::path::Path::new(&f).exists());
}
