//! The kernel layer, process side: a seccomp user-notification filter that sends `execve`,
//! `execveat`, `connect`, `sendto` with a destination, and destructive file operations
//! (write-class `open`/`openat` — the flags are checked in BPF, read-only opens never leave the
//! kernel — `openat2`, unlink, rmdir, rename, truncate, mkdir, link, symlink) to the session
//! broker (`guardctl/src/broker/seccomp.rs`) for the
//! processes this library cannot see into: Go programs (they exec and connect with raw
//! syscalls, even with cgo) and statically linked binaries (they never load the preload).
//! The filter is inherited by every descendant and cannot be removed. See
//! `docs/kernel-layer.md`.
//!
//! Installed in exactly two places, never in an ordinary dynamic process:
//! - the exec hook, just before the real exec of a statically linked binary
//!   ([`install`] with `Why::StaticExec`; it may run in a vfork child: stack only, raw
//!   syscalls, no lock);
//! - the constructor of a Go process ([`at_start`], with `TSYNC`).
//!
//! Order: ask the broker whether it can supervise (`probe`) *before* any filter exists, then
//! `PR_SET_NO_NEW_PRIVS` + `seccomp(SET_MODE_FILTER, NEW_LISTENER)`, then hand the listener fd
//! over with `SCM_RIGHTS` and wait for the broker's acknowledgement. A broker that cannot
//! (`guardctl serve`, an old broker, none) leaves the process with the in-process layer only.
//! Once the filter exists there is no way back: if the hand-over then fails, or the broker dies
//! later, every trapped call fails with `ENOSYS` (fail closed).
//!
//! The library's own already-judged calls skip the round trip: it issues them as raw syscalls
//! with a per-session value ([`magic`]) in the sixth argument register, which `execve`,
//! `execveat`, `connect`, `openat` and `openat2` ignore, and the BPF program lets exactly those
//! through ([`bypass`]: `raw::openat` and the open fast path). What it hands to the real libc
//! function instead (its slow-path opens, unlink, rename...) is judged a second time by the
//! broker. Anything
//! that knows the session id and this scheme can forge it: a deliberately malicious binary is
//! outside what this layer claims to stop (DESIGN.md, threat model).

use crate::raw::{self, Buf};
use crate::state;
use guard_proto::wire::{self, Message, Supervise};

const SECCOMP_SET_MODE_FILTER: usize = 1;
const FLAG_TSYNC: usize = 1;
const FLAG_NEW_LISTENER: usize = 1 << 3;
/// With `TSYNC`, report a failed thread sync as `ESRCH` (the return value is the fd).
const FLAG_TSYNC_ESRCH: usize = 1 << 4;
const RET_ALLOW: u32 = 0x7fff_0000;
const RET_USER_NOTIF: u32 = 0x7fc0_0000;
const RET_ERRNO: u32 = 0x0005_0000;

const LD_W_ABS: u16 = 0x20;
const JEQ_K: u16 = 0x15;
const JSET_K: u16 = 0x45;
const AND_K: u16 = 0x54;
const RET_K: u16 = 0x06;

/// Open flags that make an open write-class (as `hooks::file::access_of_flags` judges them;
/// `O_TMPFILE` needs `O_WRONLY` or `O_RDWR`, so it is covered). Read-only opens are not trapped:
/// Go tools open thousands of files for reading.
const WRITE_FLAGS: u32 =
    (libc::O_WRONLY | libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC | libc::O_APPEND) as u32;

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xc000_003e;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xc000_00b7;
/// i386 system calls a 64-bit x86 process can still make (`int 0x80`), and i386 binaries.
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
#[cfg(target_arch = "x86_64")]
const X32: u32 = 0x4000_0000;

/// `seccomp_data` offsets: nr, arch, then args[i] at 16 + 8i (little-endian halves).
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_A5_LO: u32 = 16 + 5 * 8;
const OFF_A5_HI: u32 = OFF_A5_LO + 4;
const OFF_A4_LO: u32 = 16 + 4 * 8;
const OFF_A4_HI: u32 = OFF_A4_LO + 4;
/// The flags of `openat` (an `int`: the low half is all of it).
const OFF_A2_LO: u32 = 16 + 2 * 8;
#[cfg(target_arch = "x86_64")]
const OFF_A1_LO: u32 = 16 + 8;

/// Errno the filter returns to a probe (see [`filtered`]).
const PROBE_ERRNO: u32 = libc::EDOM as u32;

/// Why a filter is installed (for the audit event the broker writes).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Why {
    GoStart,
    StaticExec,
}

impl Why {
    fn as_str(self) -> &'static str {
        match self {
            Why::GoStart => "go-start",
            Why::StaticExec => "static-exec",
        }
    }
}

fn fnv64(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for c in p.iter().chain(&[0u8]) {
            h = (h ^ *c as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// The value in the sixth argument register that lets a call through without a round trip:
/// derived from the session id, so every process of the session (which all know it) agrees,
/// and a filter from another session does not honour it. 0 without a session.
pub fn magic() -> u64 {
    let s = state::cfg().session.as_bytes();
    if s.is_empty() {
        return 0;
    }
    fnv64(&[b"libguard-seccomp-v1", s]) | 1
}

fn probe_magic(m: u64) -> u64 {
    m ^ 0x5a5a_0000_0000_5a5a
}

/// Whether this process already runs under this session's filter: an `execve(NULL)` carrying
/// the probe value gets `EDOM` from our filter and `EFAULT` (without doing anything) otherwise.
/// One cheap syscall; called only on exec paths and before installing, never on file or
/// connect allow paths. Not cached: a vfork child shares the parent's memory.
pub fn filtered() -> bool {
    let m = magic();
    if m == 0 {
        return false;
    }
    let r = unsafe { raw::sys6(libc::SYS_execve, [0, 0, 0, 0, 0, probe_magic(m) as usize]) };
    r == -(PROBE_ERRNO as isize)
}

/// This process's [`filtered`] answer, taken once at start-up (`at_start`): a process runs
/// under the filter from its exec on (inherited) or from its own `at_start`. The exec hook
/// that installs a filter for a static binary does not update it (it may be a vfork child
/// sharing this memory; if that exec fails, later calls take the broker round trip, which is
/// slower but still correct).
static FILTERED: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Whether this process runs under this session's filter (one relaxed load).
#[inline]
pub fn is_filtered() -> bool {
    FILTERED.load(core::sync::atomic::Ordering::Relaxed)
}

/// Raw `connect` that the filter lets through (`-errno` on failure).
pub fn connect(fd: i32, addr: *const libc::sockaddr, len: libc::socklen_t) -> isize {
    unsafe {
        raw::sys6(
            libc::SYS_connect,
            [
                fd as usize,
                addr as usize,
                len as usize,
                0,
                0,
                magic() as usize,
            ],
        )
    }
}

/// Whether a broker could be asked at all (a guarded session with a socket).
pub fn possible() -> bool {
    let c = state::cfg();
    !c.session.is_empty() && !c.socket.is_empty() && magic() != 0
}

/// Raw `execve` that the filter lets through. Returns only on failure (`-errno`).
pub fn execve(
    path: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
) -> isize {
    unsafe {
        raw::sys6(
            libc::SYS_execve,
            [
                path as usize,
                argv as usize,
                envp as usize,
                0,
                0,
                magic() as usize,
            ],
        )
    }
}

/// Raw `execveat` that the filter lets through. Returns only on failure (`-errno`).
pub fn execveat(
    dirfd: i32,
    path: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    flags: i32,
) -> isize {
    unsafe {
        raw::sys6(
            libc::SYS_execveat,
            [
                dirfd as isize as usize,
                path as usize,
                argv as usize,
                envp as usize,
                flags as usize,
                magic() as usize,
            ],
        )
    }
}

/// Raw `openat2` that the filter lets through when this process is filtered (libguard's open
/// fast path: the open was judged in-process). `openat2` takes four arguments, so the sixth
/// register is free for the session value; without a filter it is 0 (no hashing on the hot
/// path).
pub fn openat2(dirfd: i32, path: *const libc::c_char, how: usize, size: usize) -> isize {
    unsafe {
        raw::sys6(
            libc::SYS_openat2,
            [
                dirfd as isize as usize,
                path as usize,
                how,
                size,
                0,
                bypass(),
            ],
        )
    }
}

/// The sixth-register value for this library's own file calls of at most five arguments
/// (`raw::openat`, [`openat2`]): the session value when this process is filtered, else 0
/// (one relaxed load: no hashing on the unfiltered hot path).
#[inline]
pub fn bypass() -> usize {
    BYPASS.load(core::sync::atomic::Ordering::Relaxed)
}

/// [`magic`] once [`FILTERED`] is set (taken with it in `at_start`), else 0.
static BYPASS: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

fn set_filtered(on: bool) {
    use core::sync::atomic::Ordering;
    BYPASS.store(if on { magic() as usize } else { 0 }, Ordering::Relaxed);
    FILTERED.store(on, Ordering::Relaxed);
}

/// A BPF program in a fixed array (vfork-safe), with forward jumps patched by label.
struct Prog {
    ins: [libc::sock_filter; 96],
    n: usize,
    /// (instruction, label, true-branch?) of unresolved jumps.
    fix: [(usize, u8, bool); 96],
    nfix: usize,
    labels: [usize; 16],
}

const L_CHECK: u8 = 0;
const L_NOTIF: u8 = 1;
const L_ALLOW: u8 = 2;
const L_PROBE: u8 = 3;
const L_PROBE_HI: u8 = 4;
const L_PROBE_RET: u8 = 5;
const L_OTHER: u8 = 6;
#[cfg(target_arch = "x86_64")]
const L_ALLOW2: u8 = 7;
#[cfg(target_arch = "x86_64")]
const L_NOTIF2: u8 = 8;
const L_SENDTO: u8 = 9;
const L_OPENAT: u8 = 10;
#[cfg(target_arch = "x86_64")]
const L_OPEN: u8 = 11;
/// Not a label: fall through to the next instruction.
const L_NEXT: u8 = 255;

impl Prog {
    fn new() -> Prog {
        Prog {
            ins: [libc::sock_filter {
                code: 0,
                jt: 0,
                jf: 0,
                k: 0,
            }; 96],
            n: 0,
            fix: [(0, 0, false); 96],
            nfix: 0,
            labels: [usize::MAX; 16],
        }
    }
    fn op(&mut self, code: u16, k: u32) {
        if let Some(s) = self.ins.get_mut(self.n) {
            *s = libc::sock_filter {
                code,
                jt: 0,
                jf: 0,
                k,
            };
        }
        self.n += 1;
    }
    fn ld(&mut self, off: u32) {
        self.op(LD_W_ABS, off);
    }
    fn ret(&mut self, k: u32) {
        self.op(RET_K, k);
    }
    /// `if A == k goto jt else goto jf` (labels; `L_NEXT` = the next instruction).
    fn jeq(&mut self, k: u32, jt: u8, jf: u8) {
        self.jump(JEQ_K, k, jt, jf);
    }
    /// `if A & k != 0 goto jt else goto jf`.
    fn jset(&mut self, k: u32, jt: u8, jf: u8) {
        self.jump(JSET_K, k, jt, jf);
    }
    fn jump(&mut self, code: u16, k: u32, jt: u8, jf: u8) {
        let at = self.n;
        self.op(code, k);
        for (l, t) in [(jt, true), (jf, false)] {
            if l != L_NEXT
                && let Some(f) = self.fix.get_mut(self.nfix)
            {
                *f = (at, l, t);
                self.nfix += 1;
            }
        }
    }
    fn label(&mut self, l: u8) {
        if let Some(s) = self.labels.get_mut(l as usize) {
            *s = self.n;
        }
    }
    /// Resolves the jumps; false if a target is missing, backwards or too far.
    fn link(&mut self) -> bool {
        if self.n > self.ins.len() || self.nfix > self.fix.len() {
            return false;
        }
        for i in 0..self.nfix {
            let (at, l, t) = self.fix[i];
            let target = self.labels.get(l as usize).copied().unwrap_or(usize::MAX);
            if target == usize::MAX || target <= at || target - at - 1 > 255 {
                return false;
            }
            let d = (target - at - 1) as u8;
            if t {
                self.ins[at].jt = d;
            } else {
                self.ins[at].jf = d;
            }
        }
        true
    }
}

fn build(p: &mut Prog, m: u64) -> bool {
    let pm = probe_magic(m);
    p.ld(OFF_ARCH);
    p.jeq(AUDIT_ARCH, L_NEXT, L_OTHER);
    p.ld(OFF_NR);
    p.jeq(libc::SYS_execve as u32, L_CHECK, L_NEXT);
    p.jeq(libc::SYS_execveat as u32, L_CHECK, L_NEXT);
    p.jeq(libc::SYS_connect as u32, L_CHECK, L_NEXT);
    p.jeq(libc::SYS_sendto as u32, L_SENDTO, L_NEXT);
    #[cfg(target_arch = "x86_64")]
    {
        // The x32 ABI shares the architecture value; its numbers carry bit 30.
        p.jeq(X32 | 520, L_CHECK, L_NEXT);
        p.jeq(X32 | 545, L_CHECK, L_NEXT);
        p.jeq(X32 | libc::SYS_connect as u32, L_CHECK, L_NEXT);
        p.jeq(X32 | libc::SYS_sendto as u32, L_SENDTO, L_NEXT);
        // x32 numbers the file calls below like x86_64 (plus bit 30): drop the bit so both
        // are trapped (the broker strips it too). Native numbers do not have it.
        p.op(AND_K, !X32);
    }
    // Destructive file operations. Write-class opens only (flags in a register); `openat2`
    // keeps its flags in memory the filter cannot read, so it always goes to the broker,
    // which continues read-only ones (libguard's own `openat2` carries the session value).
    p.jeq(libc::SYS_openat as u32, L_OPENAT, L_NEXT);
    #[cfg(target_arch = "x86_64")]
    {
        p.jeq(libc::SYS_open as u32, L_OPEN, L_NEXT);
        for nr in [
            libc::SYS_creat,
            libc::SYS_unlink,
            libc::SYS_rmdir,
            libc::SYS_rename,
            libc::SYS_renameat,
            libc::SYS_mkdir,
            libc::SYS_link,
            libc::SYS_symlink,
        ] {
            p.jeq(nr as u32, L_CHECK, L_NEXT);
        }
    }
    for nr in [
        libc::SYS_openat2,
        libc::SYS_unlinkat,
        libc::SYS_renameat2,
        libc::SYS_truncate,
        libc::SYS_mkdirat,
        libc::SYS_linkat,
        libc::SYS_symlinkat,
    ] {
        p.jeq(nr as u32, L_CHECK, L_NEXT);
    }
    p.ret(RET_ALLOW);
    p.label(L_OPENAT);
    p.ld(OFF_A2_LO);
    p.jset(WRITE_FLAGS, L_CHECK, L_ALLOW);
    #[cfg(target_arch = "x86_64")]
    {
        p.label(L_OPEN);
        p.ld(OFF_A1_LO);
        p.jset(WRITE_FLAGS, L_CHECK, L_ALLOW);
    }
    p.label(L_CHECK);
    p.ld(OFF_A5_LO);
    p.jeq(m as u32, L_NEXT, L_PROBE);
    p.ld(OFF_A5_HI);
    p.jeq((m >> 32) as u32, L_ALLOW, L_NOTIF);
    p.label(L_PROBE);
    p.jeq(pm as u32, L_PROBE_HI, L_NOTIF);
    p.label(L_PROBE_HI);
    p.ld(OFF_A5_HI);
    p.jeq((pm >> 32) as u32, L_PROBE_RET, L_NOTIF);
    // sendto without a destination (a connected socket, including this library's own broker
    // connection) passes; one with a destination is judged like a connect. All six registers
    // are arguments of sendto, so there is no room for the magic value here.
    p.label(L_SENDTO);
    p.ld(OFF_A4_LO);
    p.jeq(0, L_NEXT, L_NOTIF);
    p.ld(OFF_A4_HI);
    p.jeq(0, L_ALLOW, L_NOTIF);
    p.label(L_NOTIF);
    p.ret(RET_USER_NOTIF);
    p.label(L_ALLOW);
    p.ret(RET_ALLOW);
    p.label(L_PROBE_RET);
    p.ret(RET_ERRNO | PROBE_ERRNO);
    p.label(L_OTHER);
    #[cfg(target_arch = "x86_64")]
    {
        // i386 calls: execve 11, execveat 358, socketcall 102, connect 362 go to the broker,
        // which refuses them (it reads only native arguments); the rest is allowed.
        p.ld(OFF_ARCH);
        p.jeq(AUDIT_ARCH_I386, L_NEXT, L_ALLOW2);
        p.ld(OFF_NR);
        for nr in [11u32, 358, 102, 362] {
            p.jeq(nr, L_NOTIF2, L_NEXT);
        }
        p.label(L_ALLOW2);
        p.ret(RET_ALLOW);
        p.label(L_NOTIF2);
        p.ret(RET_USER_NOTIF);
    }
    #[cfg(not(target_arch = "x86_64"))]
    p.ret(RET_ALLOW);
    p.link()
}

/// Installs the filter (after a successful probe) and hands the listener to the broker.
/// `Err` carries a short reason for the diagnostic line; `filter_left` is set when a filter
/// was installed although the hand-over failed (trapped calls will fail with ENOSYS).
/// `target`: what will run under the filter (for the broker's record).
pub fn install(why: Why, target: &[u8], filter_left: &mut bool) -> Result<(), &'static str> {
    *filter_left = false;
    if !possible() {
        return Err("no session broker");
    }
    let m = magic();
    let Some((conn, _, _)) = crate::broker::connect_new(false) else {
        return Err("broker unreachable");
    };
    let r = install_on(conn, why, target, m, filter_left);
    raw::close(conn);
    r
}

fn install_on(
    conn: i32,
    why: Why,
    target: &[u8],
    m: u64,
    filter_left: &mut bool,
) -> Result<(), &'static str> {
    let mut frame = [0u8; 2048];
    let n = encode(&mut frame, "probe", why, target).ok_or("cannot encode")?;
    if !send_frame(conn, frame.get(..n).unwrap_or(&[]), -1) {
        return Err("broker unreachable");
    }
    match reply(conn) {
        Some(true) => {}
        Some(false) => return Err("broker cannot supervise (guardctl serve or too old)"),
        None => return Err("no answer from the broker"),
    }
    let mut p = Prog::new();
    if !build(&mut p, m) {
        return Err("filter did not assemble");
    }
    let fprog = libc::sock_fprog {
        len: p.n as u16,
        filter: p.ins.as_mut_ptr(),
    };
    let r = unsafe { raw::sys(libc::SYS_prctl, libc::PR_SET_NO_NEW_PRIVS as usize, 1, 0, 0) };
    if r < 0 {
        return Err("PR_SET_NO_NEW_PRIVS refused");
    }
    let flags = match why {
        Why::GoStart => FLAG_NEW_LISTENER | FLAG_TSYNC | FLAG_TSYNC_ESRCH,
        Why::StaticExec => FLAG_NEW_LISTENER,
    };
    let lfd = unsafe {
        raw::sys(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            flags,
            &fprog as *const libc::sock_fprog as usize,
            0,
        )
    } as i32;
    if lfd < 0 {
        return Err("seccomp user notification unavailable");
    }
    *filter_left = true;
    let n = encode(&mut frame, "listener", why, target).ok_or("cannot encode")?;
    let sent = send_frame(conn, frame.get(..n).unwrap_or(&[]), lfd);
    // The process must not keep the listener: only the broker answers for it, and when the
    // broker is gone the kernel fails trapped calls instead of leaving them waiting.
    raw::close(lfd);
    if !sent {
        return Err("listener hand-over failed");
    }
    match reply(conn) {
        Some(true) => Ok(()),
        _ => Err("broker did not take the listener"),
    }
}

fn encode(buf: &mut [u8], stage: &str, why: Why, target: &[u8]) -> Option<usize> {
    let c = state::cfg();
    let msg = Message::Supervise(Supervise {
        stage,
        session: raw::utf8_prefix(c.session.as_bytes()),
        pid: raw::getpid() as u32,
        exe: raw::utf8_prefix(c.exe.as_bytes()),
        runtime: c.runtime,
        why: why.as_str(),
        target: raw::utf8_prefix(target.get(..target.len().min(1024)).unwrap_or(&[])),
    });
    wire::encode_frame(&msg, buf).ok()
}

/// Sends one frame, with `fd` (if >= 0) as SCM_RIGHTS on it. Waits while the socket is full.
fn send_frame(conn: i32, frame: &[u8], fd: i32) -> bool {
    #[repr(C)]
    union Cmsg {
        hdr: libc::cmsghdr,
        buf: [u8; 64],
    }
    let mut cbuf = Cmsg { buf: [0u8; 64] };
    let mut iov = libc::iovec {
        iov_base: frame.as_ptr() as *mut libc::c_void,
        iov_len: frame.len(),
    };
    let mut msg: libc::msghdr = unsafe { core::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if fd >= 0 {
        let space = unsafe { libc::CMSG_SPACE(core::mem::size_of::<i32>() as u32) } as usize;
        msg.msg_control = (&raw mut cbuf).cast();
        msg.msg_controllen = space;
        unsafe {
            let h = libc::CMSG_FIRSTHDR(&msg);
            if h.is_null() {
                return false;
            }
            (*h).cmsg_level = libc::SOL_SOCKET;
            (*h).cmsg_type = libc::SCM_RIGHTS;
            (*h).cmsg_len = libc::CMSG_LEN(core::mem::size_of::<i32>() as u32) as usize;
            core::ptr::write_unaligned(libc::CMSG_DATA(h).cast::<i32>(), fd);
        }
    }
    for _ in 0..200 {
        let r = unsafe {
            raw::sys(
                libc::SYS_sendmsg,
                conn as usize,
                &msg as *const libc::msghdr as usize,
                libc::MSG_NOSIGNAL as usize,
                0,
            )
        };
        if r == frame.len() as isize {
            return true;
        }
        if r == -(libc::EINTR as isize) {
            continue;
        }
        if r == -(libc::EAGAIN as isize) && wait(conn, libc::POLLOUT, 10) {
            continue;
        }
        return false;
    }
    false
}

fn wait(fd: i32, events: i16, ms: i32) -> bool {
    let mut p = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    let ts = libc::timespec {
        tv_sec: (ms / 1000) as libc::time_t,
        tv_nsec: ((ms % 1000) as libc::c_long) * 1_000_000,
    };
    let r = unsafe {
        raw::sys6(
            libc::SYS_ppoll,
            [
                &mut p as *mut libc::pollfd as usize,
                1,
                &ts as *const libc::timespec as usize,
                0,
                0,
                0,
            ],
        )
    };
    r > 0 && p.revents & events != 0
}

/// The broker's `ControlReply.ok`, waiting at most 3 s (it answers at once; a stuck broker
/// must not hang the exec).
fn reply(conn: i32) -> Option<bool> {
    let mut buf = [0u8; 1024];
    let mut got = 0usize;
    for _ in 0..30 {
        if !wait(conn, libc::POLLIN, 100) {
            continue;
        }
        let rest = buf.get_mut(got..)?;
        if rest.is_empty() {
            return None;
        }
        let r = unsafe {
            raw::sys6(
                libc::SYS_recvfrom,
                [
                    conn as usize,
                    rest.as_mut_ptr() as usize,
                    rest.len(),
                    0,
                    0,
                    0,
                ],
            )
        };
        if r == -(libc::EINTR as isize) || r == -(libc::EAGAIN as isize) {
            continue;
        }
        if r <= 0 {
            return None;
        }
        got += r as usize;
        match wire::decode_frame(buf.get(..got)?) {
            Ok((Message::ControlReply(c), _)) => return Some(c.ok),
            Err(wire::FrameError::Incomplete) => continue,
            _ => return None,
        }
    }
    None
}

/// One line on stderr when the kernel layer could not be set up (the in-process layer still
/// runs).
pub fn diagnose(what: &[u8], err: &str, filter_left: bool) {
    let mut b = Buf::<512>::new();
    b.push_trunc(b"guard: kernel layer (seccomp) unavailable for ");
    b.push_trunc(what);
    b.push_trunc(b": ");
    b.push_trunc(err.as_bytes());
    if filter_left {
        b.push_trunc(b" (a filter is in place without a supervisor: exec and connect fail)");
    }
    b.push_trunc(b"\n");
    raw::write_all(2, b.as_bytes());
}

/// Constructor hook: a Go process (cgo: the only kind that loads this library) execs and
/// connects with raw syscalls, so it runs under the filter from the start, all threads.
/// Also takes the [`is_filtered`] snapshot (one syscall per process start, and only in a
/// guarded session).
pub fn at_start() {
    let c = state::cfg();
    if !possible() {
        return;
    }
    if filtered() {
        set_filtered(true);
        return;
    }
    if c.runtime != "go" {
        return;
    }
    let mut left = false;
    match install(Why::GoStart, c.exe.as_bytes(), &mut left) {
        Ok(()) => set_filtered(true),
        Err(e) => {
            // A filter without supervisor still honours our own magic calls.
            set_filtered(left);
            diagnose(c.exe.as_bytes(), e, left);
            unavailable_event(c.exe.as_bytes(), e);
        }
    }
}

/// The audit event for a process the kernel layer could not cover.
pub fn unavailable_event(target: &[u8], err: &str) {
    let mut why = Buf::<256>::new();
    why.push_trunc(b"kernel layer (seccomp) unavailable: ");
    why.push_trunc(err.as_bytes());
    let o = crate::eval::Outcome::from_verdict(guard_proto::Decision::Audit, None, false, false);
    crate::eval::emit(
        "kernel-layer",
        target,
        &o,
        true,
        raw::utf8_prefix(why.as_bytes()),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_assembles_with_forward_jumps_only() {
        let mut p = Prog::new();
        assert!(build(&mut p, 0x1234_5678_9abc_def1));
        assert!(p.n > 10 && p.n <= p.ins.len());
        // Every conditional jump lands inside the program.
        for (i, ins) in p.ins[..p.n].iter().enumerate() {
            if ins.code == JEQ_K {
                assert!(i + 1 + (ins.jt as usize) < p.n);
                assert!(i + 1 + (ins.jf as usize) < p.n);
            }
        }
        // The last instruction of each path is a return.
        assert_eq!(p.ins[p.n - 1].code, RET_K);
    }

    /// The program in a real (forked) process: installed without a listener, a trapped call
    /// fails with ENOSYS (what a process gets when its supervisor is gone), a call with the
    /// session value reaches the kernel, the probe gets EDOM, other calls are untouched.
    #[test]
    fn the_filter_traps_what_it_should_in_a_real_process() {
        const M: u64 = 0x1234_5678_9abc_def1;
        let sys = |n: libc::c_long, a: [usize; 6]| unsafe { raw::sys6(n, a) };
        // SAFETY: the child only makes raw syscalls and exits.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let mut p = Prog::new();
            let ok = build(&mut p, M);
            let fprog = libc::sock_fprog {
                len: p.n as u16,
                filter: p.ins.as_mut_ptr(),
            };
            let mut fails = 0usize;
            let mut check = |bit: usize, got: isize, want: i32| {
                // want 0: any success.
                if if want == 0 {
                    got < 0
                } else {
                    got != -(want as isize)
                } {
                    fails |= 1 << bit;
                }
            };
            if !ok
                || sys(
                    libc::SYS_prctl,
                    [libc::PR_SET_NO_NEW_PRIVS as usize, 1, 0, 0, 0, 0],
                ) != 0
                || sys(
                    libc::SYS_seccomp,
                    [
                        SECCOMP_SET_MODE_FILTER,
                        0,
                        &fprog as *const _ as usize,
                        0,
                        0,
                        0,
                    ],
                ) != 0
            {
                unsafe { libc::_exit(100) };
            }
            let bad = usize::MAX >> 1; // not an fd
            let sa = [0u8; 16];
            let sap = sa.as_ptr() as usize;
            check(0, sys(libc::SYS_execve, [0, 0, 0, 0, 0, 0]), libc::ENOSYS);
            check(
                1,
                sys(libc::SYS_execve, [0, 0, 0, 0, 0, M as usize]),
                libc::EFAULT,
            );
            check(
                2,
                sys(libc::SYS_execve, [0, 0, 0, 0, 0, probe_magic(M) as usize]),
                libc::EDOM,
            );
            check(
                3,
                sys(libc::SYS_connect, [bad, sap, 16, 0, 0, 0]),
                libc::ENOSYS,
            );
            check(
                4,
                sys(libc::SYS_connect, [bad, sap, 16, 0, 0, M as usize]),
                libc::EBADF,
            );
            check(
                5,
                sys(libc::SYS_sendto, [bad, sap, 1, 0, 0, 0]),
                libc::EBADF,
            );
            check(
                6,
                sys(libc::SYS_sendto, [bad, sap, 1, 0, sap, 16]),
                libc::ENOSYS,
            );
            check(
                7,
                sys(libc::SYS_execveat, [bad, 0, 0, 0, 0, 0]),
                libc::ENOSYS,
            );
            // Only the low half matching is not enough.
            check(
                8,
                sys(libc::SYS_execve, [0, 0, 0, 0, 0, M as u32 as usize]),
                libc::ENOSYS,
            );
            check(9, sys(libc::SYS_close, [bad, 0, 0, 0, 0, 0]), libc::EBADF);
            // File calls: a read-only openat passes, a write-class one is trapped, openat2
            // always (unless it carries the session value), deletes always.
            let nul = c"".as_ptr() as usize;
            let fdcwd = libc::AT_FDCWD as isize as usize;
            let ro = libc::O_RDONLY as usize;
            let wr = (libc::O_WRONLY | libc::O_CREAT) as usize;
            check(
                10,
                sys(libc::SYS_openat, [fdcwd, nul, ro, 0, 0, 0]),
                libc::ENOENT,
            );
            check(
                11,
                sys(libc::SYS_openat, [fdcwd, nul, wr, 0, 0, 0]),
                libc::ENOSYS,
            );
            check(
                12,
                sys(
                    libc::SYS_openat,
                    [fdcwd, nul, libc::O_APPEND as usize, 0, 0, 0],
                ),
                libc::ENOSYS,
            );
            check(
                13,
                sys(libc::SYS_openat2, [fdcwd, nul, 0, 24, 0, 0]),
                libc::ENOSYS,
            );
            check(
                14,
                sys(libc::SYS_openat2, [fdcwd, nul, 0, 24, 0, M as usize]),
                libc::EFAULT,
            );
            check(
                15,
                sys(libc::SYS_unlinkat, [fdcwd, nul, 0, 0, 0, 0]),
                libc::ENOSYS,
            );
            check(
                16,
                sys(libc::SYS_renameat2, [fdcwd, nul, fdcwd, nul, 0, 0]),
                libc::ENOSYS,
            );
            check(
                17,
                sys(libc::SYS_mkdirat, [fdcwd, nul, 0o700, 0, 0, 0]),
                libc::ENOSYS,
            );
            check(
                18,
                sys(libc::SYS_truncate, [nul, 0, 0, 0, 0, 0]),
                libc::ENOSYS,
            );
            #[cfg(target_arch = "x86_64")]
            {
                check(19, sys(libc::SYS_open, [nul, ro, 0, 0, 0, 0]), libc::ENOENT);
                check(20, sys(libc::SYS_open, [nul, wr, 0, 0, 0, 0]), libc::ENOSYS);
                check(
                    21,
                    sys(libc::SYS_unlink, [nul, 0, 0, 0, 0, 0]),
                    libc::ENOSYS,
                );
                check(
                    22,
                    sys(libc::SYS_creat, [nul, 0o600, 0, 0, 0, 0]),
                    libc::ENOSYS,
                );
            }
            check(23, sys(libc::SYS_getpid, [0; 6]), 0);
            let first = if fails == 0 {
                0
            } else {
                fails.trailing_zeros() as i32 + 1
            };
            unsafe { libc::_exit(first) };
        }
        let mut st = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(pid, &mut st, 0) };
        assert!(libc::WIFEXITED(st), "child died: {st:#x}");
        let code = libc::WEXITSTATUS(st);
        assert_ne!(code, 100, "could not install the filter");
        assert_eq!(code, 0, "check {} failed", code - 1);
    }
}
