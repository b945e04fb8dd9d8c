//! Client side of the broker protocol: sends framed audit events to `GUARD_SOCKET` without ever
//! blocking a hooked call.
//!
//! - One persistent connection per process, made lazily with raw syscalls
//!   (`SOCK_STREAM|SOCK_CLOEXEC|SOCK_NONBLOCK`), moved to an fd ≥ 900 and re-verified with
//!   `fstat` (socket, same inode and device) before every use, because programs close all fds
//!   and reuse the numbers. The connection word carries its owner's pid: a fork child sees a
//!   foreign pid and connects anew; no background thread, no lock that fork could wedge.
//! - Sending is `MSG_NOSIGNAL|MSG_DONTWAIT`: a dead broker cannot SIGPIPE the program and a
//!   broker that does not read cannot stall it.
//! - An event that cannot be sent (broker dead, socket buffer full, listen backlog full) is
//!   appended to this process's spill file, `$GUARD_SPILL_DIR/<pid>.spill`, which the broker
//!   ingests (at start, every second, at session end) and removes. See [`spill`] for the
//!   format and the locking that makes removal race-free. Only when that fails too (file over
//!   [`SPILL_MAX`], disk error, no spill directory) is the event lost: the count is added to
//!   `$GUARD_SPILL_DIR/<pid>.lost` (read by the broker like the spill file), or, if even that
//!   fails, kept in memory and reported in the next event's `dropped_before`.
//! - The spill path keeps no state at all (open, lock, write, close, all on the stack, raw
//!   syscalls), so it is safe in vfork children and after fork; the file name carries the pid.
//! - Exclusive use of the persistent socket is a try-lock holding (pid, tid): if another thread
//!   is sending, or from exec hooks (which may run in a vfork child sharing our memory), the
//!   event goes over a short-lived connection of its own that is never stored anywhere.

use crate::raw::{self, Buf};
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

/// Sends `frame` to the broker (see [`send`], [`send_one_shot`]); when that fails, spills it.
/// True when the event is now either in the broker's socket or in the spill file.
pub fn deliver(frame: &[u8], one_shot: bool) -> bool {
    let sent = if one_shot {
        send_one_shot(frame)
    } else {
        send(frame)
    };
    sent || spill(frame)
}

/// Records `n` events that could be neither sent nor spilled: in the `.lost` tally file when
/// possible (so the count survives the process), else for the next event's `dropped_before`.
pub fn lost(n: u64) {
    if n > 0 && !add_to_tally(n) {
        add_dropped(n);
    }
}

/// Largest spill file per process (bytes); beyond it events are counted as lost.
pub const SPILL_MAX: u64 = 4 << 20;
/// Spill record: magic, realtime ms (u64 LE), FNV-1a 32 of the frame (u32 LE), then the frame
/// exactly as it would have gone over the socket (its own length prefix included). The checksum
/// lets the reader skip a record cut short by a full disk and resynchronise on the next magic.
pub const SPILL_MAGIC: [u8; 4] = *b"GSP1";
pub const SPILL_HEADER: usize = 16;

/// `GUARD_SPILL_DIR`, read from the launch-time copy of the guard variables (the program may
/// have changed its environment since).
fn spill_dir() -> &'static [u8] {
    const KEY: &[u8] = b"GUARD_SPILL_DIR=";
    let c = state::cfg();
    let all = c.inject.as_bytes();
    for k in 0..c.inject_count {
        let off = c.inject_off.get(k).copied().unwrap_or(usize::MAX);
        let Some(entry) = all.get(off..) else {
            continue;
        };
        if let Some(rest) = entry.strip_prefix(KEY) {
            let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
            return rest.get(..end).unwrap_or(&[]);
        }
    }
    &[]
}

fn sleep_ms(ms: u64) {
    let ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: (ms * 1_000_000) as libc::c_long,
    };
    // SAFETY: nanosleep with a valid timespec.
    unsafe {
        raw::sys(
            libc::SYS_nanosleep,
            &ts as *const libc::timespec as usize,
            0,
            0,
            0,
        )
    };
}

/// Opens `<spill dir>/<pid><suffix>` and takes a non-blocking `flock` (`lock`) on it.
///
/// The broker ingests a file under `LOCK_EX` and unlinks it before unlocking, so a writer that
/// gets its lock on a file with no links has raced with an ingest and must reopen (a fresh file
/// is then created). `LOCK_NB` everywhere: the program never waits for the broker; after a few
/// tries (the broker holds its lock for the few ms an ingest takes) the caller gives up.
fn open_locked(suffix: &[u8], flags: i32, lock: i32) -> Option<i32> {
    let dir = spill_dir();
    if dir.is_empty() {
        return None;
    }
    let mut path = Buf::<4200>::new();
    if !(path.push(dir) && path.push(b"/")) {
        return None;
    }
    raw::push_num(&mut path, raw::getpid() as u32 as u64);
    if !path.push(suffix) {
        return None;
    }
    for attempt in 0..4 {
        if attempt > 0 {
            sleep_ms(1);
        }
        let fd = raw::openat(
            libc::AT_FDCWD,
            path.c_ptr(),
            flags | libc::O_CREAT | libc::O_CLOEXEC | libc::O_NOFOLLOW | libc::O_NONBLOCK,
            0o600,
        );
        if fd < 0 {
            return None;
        }
        // SAFETY: flock on our own fd.
        let r = unsafe {
            raw::sys(
                libc::SYS_flock,
                fd as usize,
                (lock | libc::LOCK_NB) as usize,
                0,
                0,
            )
        };
        let mut st: libc::stat = unsafe { core::mem::zeroed() };
        if r == 0 && raw::fstat(fd, &mut st) && st.st_nlink > 0 {
            return Some(fd);
        }
        raw::close(fd);
    }
    None
}

fn realtime_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec.
    unsafe {
        raw::sys(
            libc::SYS_clock_gettime,
            libc::CLOCK_REALTIME as usize,
            &mut ts as *mut _ as usize,
            0,
            0,
        )
    };
    (ts.tv_sec as u64)
        .saturating_mul(1000)
        .saturating_add(ts.tv_nsec as u64 / 1_000_000)
}

/// FNV-1a, 32 bits: the spill record's checksum.
pub fn fnv32(b: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for &x in b {
        h = (h ^ x as u32).wrapping_mul(0x0100_0193);
    }
    h
}

/// Appends one frame to this process's spill file with a single `writev` (`O_APPEND`: records
/// of concurrent threads never interleave). False when it is not (entirely) in the file.
pub fn spill(frame: &[u8]) -> bool {
    let Some(fd) = open_locked(b".spill", libc::O_WRONLY | libc::O_APPEND, libc::LOCK_SH) else {
        return false;
    };
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    let total = SPILL_HEADER + frame.len();
    if !raw::fstat(fd, &mut st) || (st.st_size as u64).saturating_add(total as u64) > SPILL_MAX {
        raw::close(fd);
        return false;
    }
    let mut head = [0u8; SPILL_HEADER];
    head[..4].copy_from_slice(&SPILL_MAGIC);
    head[4..12].copy_from_slice(&realtime_ms().to_le_bytes());
    head[12..16].copy_from_slice(&fnv32(frame).to_le_bytes());
    let iov = [
        libc::iovec {
            iov_base: head.as_ptr() as *mut libc::c_void,
            iov_len: head.len(),
        },
        libc::iovec {
            iov_base: frame.as_ptr() as *mut libc::c_void,
            iov_len: frame.len(),
        },
    ];
    let r = loop {
        // SAFETY: two valid iovecs over buffers we own.
        let r = unsafe { raw::sys(libc::SYS_writev, fd as usize, iov.as_ptr() as usize, 2, 0) };
        if r != -(libc::EINTR as isize) {
            break r;
        }
    };
    raw::close(fd);
    r == total as isize
}

/// Adds `n` to the u64 (LE) in `<pid>.lost`, under an exclusive lock. False on any failure.
fn add_to_tally(n: u64) -> bool {
    let Some(fd) = open_locked(b".lost", libc::O_RDWR, libc::LOCK_EX) else {
        return false;
    };
    let mut cur = [0u8; 8];
    // SAFETY: pread/pwrite of 8 bytes at offset 0 on our own fd and buffer.
    let got = unsafe {
        raw::sys(
            libc::SYS_pread64,
            fd as usize,
            cur.as_mut_ptr() as usize,
            8,
            0,
        )
    };
    let before = if got == 8 { u64::from_le_bytes(cur) } else { 0 };
    let next = before.saturating_add(n).to_le_bytes();
    let put = unsafe {
        raw::sys(
            libc::SYS_pwrite64,
            fd as usize,
            next.as_ptr() as usize,
            8,
            0,
        )
    };
    raw::close(fd);
    put == 8
}
