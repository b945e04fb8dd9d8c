//! Asks: hold one hooked call until a human approves or denies it through the broker.
//!
//! Each ask opens a dedicated connection to `GUARD_ASK_SOCKET` (a `guardctl serve` broker) or,
//! when unset, `GUARD_SOCKET` (`SOCK_CLOEXEC`, non-blocking, raw syscalls), sends an
//! `AskRequest`, and waits with `poll` for the `AskReply` up to the policy's `ask_timeout`. Only
//! the calling thread waits; other threads run on. Everything lives on the stack and nothing is
//! stored or locked, so an ask is safe in a vfork child (exec asks come from there) and after
//! fork. Sends use `MSG_NOSIGNAL`: a dead broker cannot SIGPIPE the program.
//!
//! Failure is always a deny: no broker (unset, gone, refusing) denies at once; a broker that
//! closes the connection or sends garbage denies at once; no answer within the timeout denies.
//! Each outcome other than an approval writes one line to the caller's stderr saying why, so the
//! agent (which reads tool output) learns it.
//!
//! Every ask that happened has a non-zero id in its audit event: a broker that holds the ask
//! for a human first sends a `pending` reply carrying its id (the one `guardctl pending` shows),
//! so a timeout still knows it; when no broker ever numbered the ask (unreachable, or gone
//! before it replied) the id is minted here from the pid and a per-process counter.

use crate::raw::{self, Buf};
use core::sync::atomic::{AtomicU32, Ordering};
use guard_proto::wire::{AskRequest, Message, decode_frame, encode_frame};

/// Why an ask ended the way it did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// A human (or a remembered approval) said yes.
    Approved,
    /// A human said no.
    Denied,
    /// Nobody answered within the timeout.
    Timeout,
    /// No broker to ask (unset, not listening, closed the connection, spoke garbage).
    Unreachable,
}

impl Answer {
    pub fn allows(self) -> bool {
        self == Answer::Approved
    }
    /// Text carried in the audit event's reason.
    pub fn as_str(self) -> &'static str {
        match self {
            Answer::Approved => "approved",
            Answer::Denied => "denied by a human",
            Answer::Timeout => "no answer before the ask timeout",
            Answer::Unreachable => "the broker is unreachable",
        }
    }
}

impl Answer {
    /// The word stored in the audit event's `approval.answer`.
    pub fn word(self) -> &'static str {
        match self {
            Answer::Approved => "approved",
            Answer::Denied => "denied",
            Answer::Timeout => "timeout",
            Answer::Unreachable => "unreachable",
        }
    }
}

/// Longest approver name carried into the audit event (longer ones are cut).
const WHO_MAX: usize = 96;

/// An ask's full result, kept on the stack (`Copy`, no allocation) until the event is sent.
#[derive(Clone, Copy, Debug)]
pub struct Asked {
    pub answer: Answer,
    /// The ask's id: the broker's when it numbered the ask (also on a timeout, from its early
    /// notice), else minted here (`mint_id`); never 0.
    pub id: u64,
    /// From sending the request to the reply (or to giving up), on the monotonic clock.
    pub latency_ms: u64,
    who: [u8; WHO_MAX],
    who_len: u8,
}

impl Asked {
    fn new(answer: Answer, id: u64, latency_ms: u64, who: &[u8]) -> Asked {
        let mut a = Asked {
            answer,
            id,
            latency_ms,
            who: [0; WHO_MAX],
            who_len: 0,
        };
        let who = raw::utf8_prefix(who.get(..WHO_MAX).unwrap_or(who)).as_bytes();
        if let Some(dst) = a.who.get_mut(..who.len()) {
            dst.copy_from_slice(who);
            a.who_len = who.len() as u8;
        }
        a
    }

    /// Who answered, as the broker said; `timeout` when this process gave up waiting; empty
    /// when nobody could be asked.
    pub fn who(&self) -> &str {
        raw::utf8_prefix(self.who.get(..self.who_len as usize).unwrap_or(&[]))
    }
}

/// `AskReply.decision` of the broker's early notice that an ask is pending (see `wait_reply`).
const PENDING: &str = "pending";

/// Per-process counter for ask ids minted here. Only ever incremented atomically, so a vfork
/// child sharing it with its parent cannot corrupt it (at worst the parent skips a value); a
/// fork child has another pid, which is part of the id.
static MINTED: AtomicU32 = AtomicU32::new(0);

/// Marks ids minted by libguard (broker ids stay below 2^42); keeps every id below 2^53, so
/// JSON consumers that read numbers as doubles see them exactly.
const MINTED_FLAG: u64 = 1 << 52;

/// An id for an ask no broker numbered (unreachable, or gone before it replied): flag, pid,
/// and a per-process counter that starts from the clock, so that a later process reusing the
/// pid does not repeat the first ids of an earlier one.
fn mint_id() -> u64 {
    let _ = MINTED.compare_exchange(
        0,
        (now_ms() as u32).wrapping_mul(2654435761) | 1,
        Ordering::AcqRel,
        Ordering::Acquire,
    );
    let n = MINTED.fetch_add(1, Ordering::AcqRel) as u64 & 0x3fff_ffff;
    let pid = raw::getpid() as u32 as u64 & 0x3f_ffff;
    MINTED_FLAG | pid << 30 | n.max(1)
}

/// Used when the ruleset carries no timeout (0): a hung call must still end.
const DEFAULT_TIMEOUT_MS: u32 = 120_000;

fn now_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec.
    unsafe {
        raw::sys(
            libc::SYS_clock_gettime,
            libc::CLOCK_MONOTONIC as usize,
            &mut ts as *mut _ as usize,
            0,
            0,
        )
    };
    (ts.tv_sec as u64)
        .saturating_mul(1000)
        .saturating_add(ts.tv_nsec as u64 / 1_000_000)
}

/// Waits up to `ms` for `events` on `fd`; the revents, 0 on timeout, negative on error.
fn poll_fd(fd: i32, events: i16, ms: u64) -> isize {
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    let ts = libc::timespec {
        tv_sec: (ms / 1000) as libc::time_t,
        tv_nsec: ((ms % 1000) * 1_000_000) as libc::c_long,
    };
    // ppoll: the plain poll syscall does not exist on aarch64.
    // SAFETY: one valid pollfd and a valid timespec; no signal mask change.
    let r = unsafe {
        raw::sys6(
            libc::SYS_ppoll,
            [
                &mut pfd as *mut _ as usize,
                1,
                &ts as *const _ as usize,
                0,
                8,
                0,
            ],
        )
    };
    if r > 0 { pfd.revents as isize } else { r }
}

/// Sends `frame` whole on the non-blocking `fd` before `deadline`.
fn send_all(fd: i32, mut frame: &[u8], deadline: u64) -> bool {
    while !frame.is_empty() {
        // SAFETY: sendto on a buffer we own.
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
        if r > 0 {
            frame = frame.get(r as usize..).unwrap_or(&[]);
        } else if r == -(libc::EINTR as isize) {
            continue;
        } else if r == -(libc::EAGAIN as isize) {
            let left = deadline.saturating_sub(now_ms());
            if left == 0 || poll_fd(fd, libc::POLLOUT, left) <= 0 {
                return false;
            }
        } else {
            return false;
        }
    }
    true
}

/// What the wait for the reply produced.
enum Wait {
    /// (allowed, broker's id, `who` copied out of the frame).
    Reply(bool, u64, [u8; WHO_MAX], usize),
    Timeout,
    Broken,
}

fn wait_reply(fd: i32, deadline: u64, seen_id: &mut u64) -> Wait {
    let mut buf = [0u8; 1024];
    let mut have = 0usize;
    loop {
        if let Some(got) = buf.get(..have) {
            match decode_frame(got) {
                // The broker's early notice: the ask is pending under this id (the one
                // `guardctl pending` shows); the answer follows on the same connection.
                Ok((Message::AskReply(r), used)) if r.decision == PENDING => {
                    if r.id != 0 {
                        *seen_id = r.id;
                    }
                    buf.copy_within(used..have, 0);
                    have -= used;
                    continue;
                }
                Ok((Message::AskReply(r), _)) => {
                    // The reply borrows `buf`; copy `who` out before it goes.
                    let mut who = [0u8; WHO_MAX];
                    let src = r.who.as_bytes();
                    let n = src.len().min(WHO_MAX);
                    if let (Some(d), Some(s)) = (who.get_mut(..n), src.get(..n)) {
                        d.copy_from_slice(s);
                    }
                    return Wait::Reply(r.decision == "allow", r.id, who, n);
                }
                Ok(_) => return Wait::Broken,
                Err(guard_proto::wire::FrameError::Incomplete) if have < buf.len() => {}
                Err(_) => return Wait::Broken,
            }
        }
        let left = deadline.saturating_sub(now_ms());
        if left == 0 {
            return Wait::Timeout;
        }
        let r = poll_fd(fd, libc::POLLIN, left);
        if r == -(libc::EINTR as isize) {
            continue;
        }
        if r == 0 {
            return Wait::Timeout;
        }
        if r < 0 {
            return Wait::Broken;
        }
        let Some(room) = buf.get_mut(have..) else {
            return Wait::Broken;
        };
        // SAFETY: recvfrom into the unused tail of our buffer.
        let n = unsafe {
            raw::sys6(
                libc::SYS_recvfrom,
                [
                    fd as usize,
                    room.as_mut_ptr() as usize,
                    room.len(),
                    libc::MSG_DONTWAIT as usize,
                    0,
                    0,
                ],
            )
        };
        if n == -(libc::EINTR as isize) || n == -(libc::EAGAIN as isize) {
            continue;
        }
        if n <= 0 {
            // EOF or error: the broker went away without answering.
            return Wait::Broken;
        }
        have += n as usize;
    }
}

/// How long an ask keeps retrying a broker whose listen backlog is full.
const ASK_BUSY_WAIT_MS: u32 = 2000;

/// A connection to the broker that answers asks: `GUARD_ASK_SOCKET` (a `guardctl serve`
/// broker) when set, else the session's own broker.
fn ask_connect() -> Option<(i32, u64, u64)> {
    let c = crate::state::cfg();
    let path = if c.ask_socket.is_empty() {
        &c.socket
    } else {
        &c.ask_socket
    };
    crate::broker::connect_path(path.as_bytes(), false, ASK_BUSY_WAIT_MS)
}

/// Asks the broker about one action and waits for the answer (see the module doc).
#[allow(clippy::too_many_arguments)]
pub fn ask(
    session: &str,
    action: &str,
    target: &str,
    rule: &str,
    reason: &str,
    exe: &str,
    runtime: &str,
    cwd: &str,
    timeout_ms: u32,
) -> Asked {
    let timeout_ms = if timeout_ms == 0 {
        DEFAULT_TIMEOUT_MS
    } else {
        timeout_ms
    };
    let start = now_ms();
    let deadline = start.saturating_add(timeout_ms as u64);
    let req = AskRequest {
        id: 0,
        session,
        agent: raw::utf8_prefix(crate::state::cfg().agent.as_bytes()),
        action,
        target,
        rule,
        reason,
        pid: raw::getpid() as u32,
        ppid: raw::getppid() as u32,
        exe,
        runtime,
        cwd,
        timeout_ms,
    };
    let mut frame = [0u8; crate::broker::FRAME_MAX];
    // The broker's id when it numbered the ask (its early notice or its reply), else one
    // minted here: every ask that happened has a non-zero id in the audit event.
    let mut id = 0u64;
    let asked = match encode_frame(&Message::AskRequest(req), &mut frame) {
        Err(_) => Asked::new(Answer::Unreachable, 0, 0, b""),
        Ok(n) => match ask_connect() {
            None => Asked::new(Answer::Unreachable, 0, now_ms().saturating_sub(start), b""),
            Some((fd, _, _)) => {
                // Latency counts from the request going out, not from the connect's retries.
                let sent_at = now_ms();
                let a = if !send_all(fd, frame.get(..n).unwrap_or(&[]), deadline) {
                    Asked::new(
                        Answer::Unreachable,
                        0,
                        now_ms().saturating_sub(sent_at),
                        b"",
                    )
                } else {
                    let w = wait_reply(fd, deadline, &mut id);
                    let took = now_ms().saturating_sub(sent_at);
                    match w {
                        Wait::Reply(ok, rid, who, len) => Asked::new(
                            if ok { Answer::Approved } else { Answer::Denied },
                            if rid != 0 { rid } else { id },
                            took,
                            who.get(..len).unwrap_or(&[]),
                        ),
                        Wait::Timeout => Asked::new(Answer::Timeout, id, took, b"timeout"),
                        Wait::Broken => Asked::new(Answer::Unreachable, id, took, b""),
                    }
                };
                raw::close(fd);
                a
            }
        },
    };
    let asked = if asked.id == 0 {
        Asked {
            id: mint_id(),
            ..asked
        }
    } else {
        asked
    };
    if !asked.answer.allows() {
        explain(action, target, rule, asked.answer, timeout_ms);
    }
    asked
}

/// `guard: exec git push -f needs approval (rule git-force-push) but the broker is unreachable: denied`
fn explain(action: &str, target: &str, rule: &str, a: Answer, timeout_ms: u32) {
    let mut m = Buf::<2048>::new();
    m.push_trunc(b"guard: ");
    m.push_trunc(action.as_bytes());
    m.push_trunc(b" ");
    m.push_trunc(target.as_bytes().get(..1024).unwrap_or(target.as_bytes()));
    m.push_trunc(b" needs approval (rule ");
    m.push_trunc(if rule.is_empty() {
        b"(policy default)"
    } else {
        rule.as_bytes()
    });
    match a {
        Answer::Unreachable => m.push_trunc(b") but the broker is unreachable: denied"),
        Answer::Denied => m.push_trunc(b"): denied by a human"),
        Answer::Timeout => {
            m.push_trunc(b"): no answer within ");
            raw::push_num(&mut m, timeout_ms as u64);
            m.push_trunc(b" ms, denied");
        }
        Answer::Approved => {}
    }
    m.truncate(2046);
    m.push(b"\n");
    raw::write_all(2, m.as_bytes());
}
