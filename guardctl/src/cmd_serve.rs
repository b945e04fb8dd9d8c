//! `guardctl serve`: a long-lived approvals broker for every session of one user.
//!
//! It listens on `<socket dir>/broker.sock`. A `guardctl run` started while it runs attaches:
//! its processes send their events (`GUARD_SOCKET`) and asks (`GUARD_ASK_SOCKET`) here, `serve`
//! stores each attached session's events in that session's own log and database rows (so
//! `guardctl log --session ID` works as for any session), and one console (`guardctl watch`,
//! `pending`, `approve`, `deny`) answers the asks of several sessions and survives them.
//! Without a running `serve`, each `guardctl run` is its own broker.
//!
//! Killing `serve` makes every later ask of the attached sessions deny at once (the broker is
//! unreachable); their events go to the processes' spill files, which a restarted `serve`
//! ingests (at start and every second), as does the launcher at session end when no `serve`
//! answers it. Stops on SIGINT/SIGTERM. The systemd user unit is
//! `packaging/systemd/guard-broker.service`.

use crate::broker::Broker;
use crate::state::Dirs;
use clap::Args;
use std::fs;
use std::os::unix::fs::PermissionsExt;
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
    let broker = match Broker::start_serve(listener, &dirs.state) {
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
