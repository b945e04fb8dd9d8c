//! `guardctl serve`: a long-lived approvals broker for every session of one user.
//!
//! It listens on `<socket dir>/broker.sock`. A `guardctl run` started while it runs points its
//! processes' asks at it (`GUARD_ASK_SOCKET`), so one console (`guardctl watch`, `pending`,
//! `approve`, `deny`) answers the asks of several sessions and survives them; audit events still
//! go to each session's own broker and log. Without a running `serve`, each `guardctl run`
//! answers its own asks. Killing `serve` makes every later ask of the attached sessions deny at
//! once (the broker is unreachable). Stops on SIGINT/SIGTERM. The systemd user unit is
//! `packaging/systemd/guard-broker.service`.

use crate::broker::Broker;
use crate::broker::event::{SessionInfo, hostname};
use crate::state::Dirs;
use clap::Args;
use std::fs::{self, OpenOptions};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Args)]
pub struct ServeArgs {}

/// The well-known socket of the shared broker.
pub fn socket(dirs: &Dirs) -> PathBuf {
    dirs.run.join("broker.sock")
}

/// The shared broker's socket when one is running.
pub fn running(dirs: &Dirs) -> Option<PathBuf> {
    let s = socket(dirs);
    UnixStream::connect(&s).ok().map(|_| s)
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("guardctl serve: {msg}");
    ExitCode::from(2)
}

pub fn run(_args: ServeArgs) -> ExitCode {
    let dirs = match Dirs::resolve() {
        Ok(d) => d,
        Err(e) => return fail(e),
    };
    if let Err(e) = dirs.ensure_state().and_then(|_| dirs.ensure_run()) {
        return fail(e);
    }
    let sock = socket(&dirs);
    if running(&dirs).is_some() {
        eprintln!("guardctl serve: already running on {}", sock.display());
        return ExitCode::from(1);
    }
    let _ = fs::remove_file(&sock);
    let listener = match UnixListener::bind(&sock) {
        Ok(l) => l,
        Err(e) => return fail(format_args!("cannot listen on {}: {e}", sock.display())),
    };
    let _ = fs::set_permissions(&sock, fs::Permissions::from_mode(0o600));
    // Block the stop signals before any thread exists, then wait for them.
    // SAFETY: plain signal-set manipulation on a local set.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    // Sessions send their events to their own brokers; anything sent here is kept too.
    let log_path = dirs.state.join("serve-events.jsonl");
    let log = match OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(&log_path)
    {
        Ok(f) => f,
        Err(e) => return fail(format_args!("{}: {e}", log_path.display())),
    };
    let info = SessionInfo {
        session: String::new(),
        agent: String::new(),
        model: String::new(),
        host: hostname(),
    };
    let broker = match Broker::start(listener, log, info) {
        Ok(b) => b,
        Err(e) => return fail(format_args!("cannot start the broker: {e}")),
    };
    eprintln!("guard: serve: answering asks on {}", sock.display());
    let mut sig = 0;
    // SAFETY: waits on the blocked set.
    unsafe { libc::sigwait(&set, &mut sig) };
    let _ = fs::remove_file(&sock);
    let _ = broker.finish(Duration::from_millis(50), Duration::from_millis(500));
    ExitCode::SUCCESS
}
