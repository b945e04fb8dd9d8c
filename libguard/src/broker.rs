//! Client side of the broker protocol: sends framed audit events to `GUARD_SOCKET` without ever
//! blocking a hooked call.
//!
//! - One persistent connection per process, made lazily with raw syscalls
//!   (`SOCK_STREAM|SOCK_CLOEXEC|SOCK_NONBLOCK`), moved to an fd ≥ 900 and re-verified with
//!   `fstat` (socket, same inode and device) before every use, because programs close all fds
//!   and reuse the numbers. The connection word carries its owner's pid: a fork child sees a
//!   foreign pid and connects anew; no background thread, no lock that fork could wedge.
//! - Sending is `MSG_NOSIGNAL|MSG_DONTWAIT`: a dead broker cannot SIGPIPE the program and a
//!   broker that does not read cannot stall it. An event that cannot be sent is counted, and the
//!   count travels in the next event's `dropped_before`.
//! - Exclusive use of the persistent socket is a try-lock holding (pid, tid): if another thread
//!   is sending, or from exec hooks (which may run in a vfork child sharing our memory), the
//!   event goes over a short-lived connection of its own that is never stored anywhere.

use crate::raw;
use crate::state;
use core::sync::atomic::{AtomicU64, Ordering};

/// (pid << 32) | fd of the persistent connection; 0 = none.
static CONN: AtomicU64 = AtomicU64::new(0);
static CONN_INO: AtomicU64 = AtomicU64::new(0);
static CONN_DEV: AtomicU64 = AtomicU64::new(0);
/// (pid << 32) | tid of the thread using the persistent connection; 0 = free.
static BUSY: AtomicU64 = AtomicU64::new(0);
/// (pid << 32) | count of events this process failed to send.
static DROPPED: AtomicU64 = AtomicU64::new(0);

const HIGH_FD: usize = 900;

fn pid_word(pid: i32) -> u64 {
    (pid as u32 as u64) << 32
}

/// Takes this process's dropped-event count (to report it in the next event).
pub fn take_dropped() -> u64 {
    let me = pid_word(raw::getpid());
    let v = DROPPED.swap(me, Ordering::AcqRel);
    if v & !0xffff_ffff == me {
        v & 0xffff_ffff
    } else {
        0
    }
}

/// Counts `n` events as dropped in this process.
pub fn add_dropped(n: u64) {
    let me = pid_word(raw::getpid());
    let _ = DROPPED.fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
        let cur = if v & !0xffff_ffff == me {
            v & 0xffff_ffff
        } else {
            0
        };
        Some(me | cur.saturating_add(n).min(0xffff_ffff))
    });
}

/// A new connection to the broker (fd, inode, device), or `None`.
pub(crate) fn connect_new(high: bool) -> Option<(i32, u64, u64)> {
    connect_path(state::cfg().socket.as_bytes(), high, 0)
}

/// A new connection to the Unix socket at `path` (fd, inode, device), or `None`.
/// `busy_wait_ms`: how long to keep retrying while the broker's listen backlog is full
/// (`EAGAIN` from a non-blocking Unix connect). Events use 0 (never block a hooked call; the
/// event is counted as dropped); an ask, which blocks anyway, waits a little so that a busy
/// broker is not mistaken for a dead one.
pub(crate) fn connect_path(path: &[u8], high: bool, busy_wait_ms: u32) -> Option<(i32, u64, u64)> {
    if path.is_empty() {
        return None;
    }
    let mut addr: libc::sockaddr_un = unsafe { core::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    if path.len() >= addr.sun_path.len() {
        return None;
    }
    for (d, s) in addr.sun_path.iter_mut().zip(path) {
        *d = *s as libc::c_char;
    }
    let fd = unsafe {
        raw::sys(
            libc::SYS_socket,
            libc::AF_UNIX as usize,
            (libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK) as usize,
            0,
            0,
        )
    } as i32;
    if fd < 0 {
        return None;
    }
    let len = core::mem::size_of::<libc::sa_family_t>() + path.len() + 1;
    let mut waited_ms = 0u32;
    let r = loop {
        let r = unsafe {
            raw::sys(
                libc::SYS_connect,
                fd as usize,
                &addr as *const _ as usize,
                len,
                0,
            )
        };
        if r == -(libc::EAGAIN as isize) && waited_ms < busy_wait_ms {
            let ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 5_000_000,
            };
            unsafe {
                raw::sys(
                    libc::SYS_nanosleep,
                    &ts as *const libc::timespec as usize,
                    0,
                    0,
                    0,
                )
            };
            waited_ms += 5;
            continue;
        }
        if r != -(libc::EINTR as isize) {
            break r;
        }
    };
    if r < 0 {
        raw::close(fd);
        return None;
    }
    let mut fd = fd;
    if high {
        let h = unsafe {
            raw::sys(
                libc::SYS_fcntl,
                fd as usize,
                libc::F_DUPFD_CLOEXEC as usize,
                HIGH_FD,
                0,
            )
        } as i32;
        if h >= 0 {
            raw::close(fd);
            fd = h;
        }
    }
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    if !raw::fstat(fd, &mut st) {
        raw::close(fd);
        return None;
    }
    Some((fd, st.st_ino, st.st_dev))
}

/// Whether `fd` is still our connection (programs close and reuse fd numbers).
fn verify(fd: i32) -> bool {
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    raw::fstat(fd, &mut st)
        && (st.st_mode & libc::S_IFMT) == libc::S_IFSOCK
        && st.st_ino == CONN_INO.load(Ordering::Acquire)
        && st.st_dev == CONN_DEV.load(Ordering::Acquire)
}

enum Sent {
    Ok,
    /// Nothing was written (would block, or error before any byte).
    Dropped,
    /// Part of the frame went out: the stream is out of sync and must be closed.
    Broken,
}

fn send_on(fd: i32, frame: &[u8]) -> Sent {
    loop {
        let r = unsafe {
            raw::sys6(
                libc::SYS_sendto,
                [
                    fd as usize,
                    frame.as_ptr() as usize,
                    frame.len(),
                    (libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT) as usize,
                    0,
                    0,
                ],
            )
        };
        if r == -(libc::EINTR as isize) {
            continue;
        }
        return if r as usize == frame.len() {
            Sent::Ok
        } else if r > 0 {
            Sent::Broken
        } else if r == -(libc::EAGAIN as isize) {
            Sent::Dropped
        } else {
            Sent::Broken
        };
    }
}

/// Sends over a connection made for this one frame (vfork-safe: stack only, nothing stored).
pub fn send_one_shot(frame: &[u8]) -> bool {
    match connect_new(false) {
        Some((fd, _, _)) => {
            let ok = matches!(send_on(fd, frame), Sent::Ok);
            raw::close(fd);
            ok
        }
        None => false,
    }
}

/// Sends one frame over the persistent connection (or a one-shot one if it is in use).
pub fn send(frame: &[u8]) -> bool {
    let pid = raw::getpid();
    let me = pid_word(pid);
    let token = me | raw::gettid() as u32 as u64;
    let cur = BUSY.load(Ordering::Acquire);
    // A holder from another process is stale (we are a fork child of it) or is our vfork
    // parent's thread, which keeps using its own fd copy: taking over is safe either way,
    // because this process then uses a connection of its own.
    let acquired = (cur == 0 || cur & !0xffff_ffff != me)
        && BUSY
            .compare_exchange(cur, token, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
    if !acquired {
        return send_one_shot(frame);
    }
    let c = CONN.load(Ordering::Acquire);
    let mut fd = (c & 0xffff_ffff) as u32 as i32;
    let owned = c != 0 && c & !0xffff_ffff == me;
    if !(owned && verify(fd)) {
        if c != 0 && !owned && verify(fd) {
            // The inherited copy of the parent's connection: ours to close in this process.
            raw::close(fd);
        }
        CONN.store(0, Ordering::Release);
        match connect_new(true) {
            Some((nfd, ino, dev)) => {
                CONN_INO.store(ino, Ordering::Release);
                CONN_DEV.store(dev, Ordering::Release);
                CONN.store(me | nfd as u32 as u64, Ordering::Release);
                fd = nfd;
            }
            None => {
                let _ = BUSY.compare_exchange(token, 0, Ordering::AcqRel, Ordering::Acquire);
                return false;
            }
        }
    }
    let ok = match send_on(fd, frame) {
        Sent::Ok => true,
        Sent::Dropped => false,
        Sent::Broken => {
            raw::close(fd);
            CONN.store(0, Ordering::Release);
            false
        }
    };
    let _ = BUSY.compare_exchange(token, 0, Ordering::AcqRel, Ordering::Acquire);
    ok
}

/// Frame buffer size on the stack: event targets are capped so a frame always fits.
pub const FRAME_MAX: usize = 8192;
