//! Approvals in the broker: asks waiting for a human, and the control commands that answer
//! them (`guardctl pending/approve/deny/watch`).
//!
//! An ask arrives on a connection of its own; that connection's thread parks here until the ask
//! is answered, the client's timeout (plus a grace) passes, or the client goes away, and then
//! writes the `AskReply` (after an early `pending` reply that tells the client the ask's id).
//! Approvals "remembered" for the session answer identical later asks (same rule, action and
//! target) at once. The answer's `who` names the human by the credentials of the control
//! connection that answered (`<user> (uid <uid>)`, see [`human`]), never by client-supplied text.
//!
//! `pending` answers at once when its request's `id` is 0 (what `guardctl pending` and `watch`
//! send); a non-zero `id` asks it to wait up to that many milliseconds (at most 30 s) for an
//! unanswered ask to exist first, so an automatic or scripted approver learns of each ask as it
//! arrives without polling (`bench/ask_latency_approver.c` uses it). The refusal check below
//! runs before the wait.
//!
//! Control commands are refused unless the peer is clearly outside every guarded tree: the
//! same uid as the broker (`SO_PEERCRED`), and neither the peer nor any of its ancestors (the
//! `/proc/<pid>/stat` ppid chain) is this session's launcher, any `guardctl run` launcher, a
//! process whose environment holds `GUARD_SESSION`, or a process with `libguard.so` mapped.
//! The launcher is a child subreaper, so a double-forked descendant is reparented to it and
//! still has it as an ancestor; a cleaned environment (`env -i`) still leaves the library
//! mapped (the exec hooks re-inject it) and the launcher in the chain. A peer whose ancestry
//! cannot be read is refused (fail closed). The check runs on every control request; the
//! ancestors' part of a cleared peer is remembered for a second (`Approvals::refusal` says
//! what is re-checked each time), because re-reading every ancestor's environ and maps made
//! each `pending`/`approve` cost several hundred µs, most of an ask's round trip.

use guard_proto::wire::{self, AskReply, AskRequest, ControlReply, ControlRequest, Message};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::os::unix::io::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Extra time the broker keeps an ask past the client's own timeout (the client denies first).
const GRACE: Duration = Duration::from_millis(500);
/// Asks held at once; more are denied at once (each holds a connection thread).
const MAX_PENDING: usize = 256;
/// Longest wait a `pending` request may ask for (its `id` field, in ms; 0: answer at once).
const PENDING_WAIT_MAX: Duration = Duration::from_secs(30);

struct Pending {
    session: String,
    agent: String,
    action: String,
    target: String,
    rule: String,
    reason: String,
    pid: u32,
    ppid: u32,
    exe: String,
    runtime: String,
    cwd: String,
    timeout_ms: u32,
    since: Instant,
    /// (approved, who) once answered.
    answer: Option<(bool, String)>,
}

/// The approving human as stored in the audit event's `approval.who`: `<user> (uid <uid>)`,
/// from the control connection's `SO_PEERCRED` (never from anything the client says).
/// `event::parse_who` reads it back into `uid` and `user`.
pub fn human(uid: u32) -> String {
    format!("{} (uid {uid})", user_name(uid))
}

/// The user name of `uid` from the password database; the uid in decimal when it has none.
pub fn user_name(uid: u32) -> String {
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0u8; 4096];
    let mut out: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: getpwuid_r writes into `pw` and `buf` (sized as given) and sets `out`.
    let rc =
        unsafe { libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr().cast(), buf.len(), &mut out) };
    if rc == 0 && !out.is_null() && !pw.pw_name.is_null() {
        // SAFETY: on success pw_name points to a NUL-terminated string inside `buf`.
        let name = unsafe { std::ffi::CStr::from_ptr(pw.pw_name) };
        let name = name.to_string_lossy();
        // `(uid ` inside a name would make `who` ambiguous; no real user name holds it.
        if !name.is_empty() && !name.contains('(') {
            return name.into_owned();
        }
    }
    uid.to_string()
}

#[derive(Default)]
struct Inner {
    next: u64,
    pending: BTreeMap<u64, Pending>,
    /// (rule, action, target) approved with `--remember session`, and who approved it.
    remembered: HashMap<(String, String, String), String>,
    /// Recent human denials: (pid, key, when). `execvp` and Python's subprocess retry a refused
    /// exec with the next `PATH` entry; the same process asking the same thing again at once
    /// gets the same answer instead of a second prompt.
    recent_denials: Vec<Denial>,
}

/// A recent human denial: (pid, (rule, action, target), when, who).
type Denial = (u32, (String, String, String), Instant, String);

/// How long a denial answers identical asks of the same process.
const DENIAL_ECHO: Duration = Duration::from_secs(3);

/// The approval state of one broker.
pub struct Approvals {
    inner: Mutex<Inner>,
    cv: Condvar,
    /// Ids start at `pid << 20`, so that ids of concurrent brokers differ.
    id_base: u64,
    /// This session's launcher (the broker's own process in `guardctl run`).
    launcher: u32,
    agent: String,
    /// Control peers whose whole ancestry was found outside every guarded tree: pid ->
    /// what identifies that process (see [`Approvals::refusal`]).
    cleared: Mutex<HashMap<u32, Cleared>>,
}

/// A control peer the full ancestry walk cleared.
#[derive(Clone, Copy)]
struct Cleared {
    ppid: u32,
    /// Start time in clock ticks since boot: a reused pid has another.
    start: u64,
    at: Instant,
}

/// How long a cleared peer's ancestors are trusted without a new full walk.
const CLEARED_TTL: Duration = Duration::from_secs(1);
/// Peers remembered at once (consoles are few; old entries are dropped first).
const CLEARED_MAX: usize = 64;

impl Approvals {
    pub fn new(agent: &str) -> Approvals {
        let pid = std::process::id();
        Approvals {
            inner: Mutex::new(Inner::default()),
            cv: Condvar::new(),
            id_base: u64::from(pid) << 20,
            launcher: pid,
            agent: agent.to_string(),
            cleared: Mutex::new(HashMap::new()),
        }
    }

    /// [`peer_refusal`], with the ancestors' verdict remembered per peer process for
    /// [`CLEARED_TTL`]. Every request still checks the peer process itself in full (uid, this
    /// session's launcher, `GUARD_SESSION`, `libguard.so` mapped: an exec into a guarded
    /// program is seen at once) and that it is the same process with the same parent (pid
    /// reuse or reparenting means a full walk). What the memo skips is re-reading each
    /// ancestor's environ and maps, which made every control request cost several hundred µs;
    /// an ancestor turning into a guarded process is seen within [`CLEARED_TTL`].
    fn refusal(&self, stream: &UnixStream) -> Option<String> {
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        let pid = match peer_cred(stream) {
            Some(c) if c.uid == me && c.pid > 1 => c.pid as u32,
            // Refused for its credentials: peer_refusal says why.
            _ => return peer_refusal(stream, self.launcher),
        };
        let known = {
            let g = self.cleared.lock().unwrap_or_else(|e| e.into_inner());
            g.get(&pid)
                .copied()
                .filter(|c| c.at.elapsed() < CLEARED_TTL)
        };
        if let Some(c) = known {
            match check_process(pid, 0, self.launcher, &mut Vec::new()) {
                Ok((ppid, start)) if ppid == c.ppid && start == c.start => return None,
                Ok(_) => {}
                Err(why) => {
                    self.forget(pid);
                    return Some(why);
                }
            }
        }
        match walk(pid, self.launcher) {
            Ok((ppid, start)) => {
                let mut g = self.cleared.lock().unwrap_or_else(|e| e.into_inner());
                g.retain(|_, c| c.at.elapsed() < CLEARED_TTL);
                if g.len() < CLEARED_MAX {
                    g.insert(
                        pid,
                        Cleared {
                            ppid,
                            start,
                            at: Instant::now(),
                        },
                    );
                }
                None
            }
            Err(why) => {
                self.forget(pid);
                Some(why)
            }
        }
    }

    fn forget(&self, pid: u32) {
        let mut g = self.cleared.lock().unwrap_or_else(|e| e.into_inner());
        g.remove(&pid);
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panicking holder cannot leave the map half-updated in a way that matters here.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Serves one ask: blocks until it is answered, then writes the reply.
    fn ask(&self, stream: &UnixStream, req: &AskRequest<'_>, session: &str) {
        let start = Instant::now();
        let key = (
            req.rule.to_string(),
            req.action.to_string(),
            req.target.to_string(),
        );
        let (id, verdict) = {
            let mut g = self.lock();
            g.next += 1;
            let id = self.id_base | (g.next & 0xf_ffff);
            g.recent_denials
                .retain(|(_, _, t, _)| t.elapsed() < DENIAL_ECHO);
            if let Some(who) = g.remembered.get(&key) {
                (id, Some((true, format!("{who} remembered"))))
            } else if let Some((_, _, _, who)) = g
                .recent_denials
                .iter()
                .find(|(pid, k, _, _)| *pid == req.pid && *k == key)
            {
                (id, Some((false, format!("{who} earlier denial"))))
            } else if g.pending.len() >= MAX_PENDING {
                (id, Some((false, "broker".to_string())))
            } else {
                g.pending.insert(
                    id,
                    Pending {
                        session: session.to_string(),
                        agent: req.agent.to_string(),
                        action: key.1.clone(),
                        target: key.2.clone(),
                        rule: key.0.clone(),
                        reason: req.reason.to_string(),
                        pid: req.pid,
                        ppid: req.ppid,
                        exe: req.exe.to_string(),
                        runtime: req.runtime.to_string(),
                        cwd: req.cwd.to_string(),
                        timeout_ms: req.timeout_ms,
                        since: start,
                        answer: None,
                    },
                );
                self.cv.notify_all();
                (id, None)
            }
        };
        let verdict = match verdict {
            Some(v) => v,
            None => {
                // Tell the client its id at once: if nobody answers in time, its audit event
                // still carries the id `guardctl pending` showed.
                let notice = AskReply {
                    id,
                    decision: "pending",
                    who: "",
                    latency_ms: 0,
                };
                let _ = send(stream, &Message::AskReply(notice));
                self.wait(id, stream, start, req.timeout_ms)
            }
        };
        let reply = AskReply {
            id,
            decision: if verdict.0 { "allow" } else { "deny" },
            who: &verdict.1,
            latency_ms: start.elapsed().as_millis() as u64,
        };
        let _ = send(stream, &Message::AskReply(reply));
    }

    /// Parks until `id` is answered, its time is up, or its client left; removes it.
    fn wait(
        &self,
        id: u64,
        stream: &UnixStream,
        start: Instant,
        timeout_ms: u32,
    ) -> (bool, String) {
        let limit = Duration::from_millis(u64::from(timeout_ms.max(1))) + GRACE;
        let mut g = self.lock();
        loop {
            if let Some(p) = g.pending.get(&id)
                && let Some(a) = &p.answer
            {
                let a = a.clone();
                g.pending.remove(&id);
                return a;
            }
            if start.elapsed() >= limit || client_gone(stream) {
                g.pending.remove(&id);
                return (false, "timeout".into());
            }
            g = match self.cv.wait_timeout(g, Duration::from_millis(50)) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
    }

    /// Answers pending ask `id`; false when there is none.
    fn answer(&self, id: u64, approve: bool, remember: bool, who: String) -> bool {
        let mut g = self.lock();
        let Some(p) = g.pending.get_mut(&id) else {
            return false;
        };
        if p.answer.is_some() {
            return false;
        }
        p.answer = Some((approve, who.clone()));
        let key = (p.rule.clone(), p.action.clone(), p.target.clone());
        let pid = p.pid;
        if approve && remember {
            g.remembered.insert(key, who);
        } else if !approve {
            g.recent_denials.push((pid, key, Instant::now(), who));
        }
        self.cv.notify_all();
        true
    }

    /// For `pending` with a wait: parks until some ask is unanswered, `ms` pass (at most
    /// [`PENDING_WAIT_MAX`]), or the client hangs up. A console then learns of a new ask as it
    /// arrives instead of on its next poll, and idles meanwhile instead of polling back to back
    /// (each control request walks the peer's ancestry in /proc).
    fn wait_for_ask(&self, stream: &UnixStream, ms: u64) {
        let until = Instant::now() + Duration::from_millis(ms).min(PENDING_WAIT_MAX);
        let mut g = self.lock();
        while !g.pending.values().any(|p| p.answer.is_none()) {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() || client_gone(stream) {
                return;
            }
            // In slices, so a client that hung up does not hold its thread for long.
            g = match self
                .cv
                .wait_timeout(g, left.min(Duration::from_millis(100)))
            {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
    }

    /// The pending asks as JSON Lines.
    fn pending_json(&self) -> String {
        let g = self.lock();
        let mut out = String::new();
        for (id, p) in g.pending.iter().filter(|(_, p)| p.answer.is_none()) {
            let v = serde_json::json!({
                "id": id,
                "session": p.session,
                "agent": if p.agent.is_empty() { &self.agent } else { &p.agent },
                "action": p.action,
                "target": p.target,
                "rule": p.rule,
                "reason": p.reason,
                "pid": p.pid,
                "ppid": p.ppid,
                "exe": p.exe,
                "runtime": p.runtime,
                "cwd": p.cwd,
                "age_ms": p.since.elapsed().as_millis() as u64,
                "timeout_ms": p.timeout_ms,
            });
            out.push_str(&v.to_string());
            out.push('\n');
            // A reply frame has a maximum size; the rest shows on the next poll.
            if out.len() > wire::MAX_FRAME - 4096 {
                break;
            }
        }
        out
    }

    fn control(&self, stream: &UnixStream, req: &ControlRequest<'_>) {
        let (ok, body) = match self.refusal(stream) {
            Some(why) => (false, format!("refused: {why}")),
            None => {
                match req.op {
                    "pending" => {
                        if req.id > 0 {
                            self.wait_for_ask(stream, req.id);
                        }
                        (true, self.pending_json())
                    }
                    "approve" | "deny" => {
                        // peer_refusal succeeded, so the credentials are readable. Looked up
                        // only here: `pending`, polled back to back by consoles, needs no name.
                        let who = peer_cred(stream)
                            .map(|c| human(c.uid))
                            .unwrap_or_else(|| "unknown".into());
                        let approve = req.op == "approve";
                        if self.answer(req.id, approve, req.remember, who) {
                            (
                                true,
                                format!(
                                    "{} {}",
                                    if approve { "approved" } else { "denied" },
                                    req.id
                                ),
                            )
                        } else {
                            (false, format!("no pending ask {}", req.id))
                        }
                    }
                    other => (false, format!("unknown control operation {other:?}")),
                }
            }
        };
        let _ = send(
            stream,
            &Message::ControlReply(ControlReply { ok, body: &body }),
        );
    }
}

/// The peer's pid from `SO_PEERCRED`.
pub fn peer_cred_pid(stream: &UnixStream) -> Option<u32> {
    peer_cred(stream)
        .map(|c| c.pid)
        .filter(|&p| p > 0)
        .map(|p| p as u32)
}

/// Writes a `ControlReply`.
pub fn reply_control(stream: &UnixStream, ok: bool, body: &str) {
    let _ = send(stream, &Message::ControlReply(ControlReply { ok, body }));
}

/// Handles a message other than an event. Returns false when the connection must close.
pub fn on_message(stream: &UnixStream, msg: &Message<'_>, ap: &Approvals, session: &str) -> bool {
    match msg {
        Message::Hello(_) => true,
        Message::AskRequest(req) => {
            // A session broker knows its session; the shared `serve` broker takes the one the
            // asking process names (display only: it is the same user either way).
            let session = if session.is_empty() {
                req.session
            } else {
                session
            };
            ap.ask(stream, req, session);
            // One ask per connection.
            false
        }
        Message::ControlRequest(req) => {
            ap.control(stream, req);
            true
        }
        // Replies only travel from the broker; a client sending one is confused or hostile.
        _ => false,
    }
}

fn send(mut stream: &UnixStream, msg: &Message<'_>) -> std::io::Result<()> {
    // Most replies (ask answers, approve/deny results) are tiny: try a small buffer first
    // rather than zeroing 64 KiB for each; a large `pending` list takes the full size.
    let mut small = [0u8; 1024];
    if let Ok(n) = wire::encode_frame(msg, &mut small) {
        return stream.write_all(&small[..n]);
    }
    let mut buf = vec![0u8; wire::HEADER_LEN + wire::MAX_FRAME];
    let n =
        wire::encode_frame(msg, &mut buf).map_err(|e| std::io::Error::other(format!("{e:?}")))?;
    stream.write_all(&buf[..n])
}

/// Whether the asking client hung up (it timed out on its own, or was killed).
fn client_gone(stream: &UnixStream) -> bool {
    let mut pfd = libc::pollfd {
        fd: stream.as_raw_fd(),
        events: libc::POLLIN | libc::POLLRDHUP,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout.
    let n = unsafe { libc::poll(&mut pfd, 1, 0) };
    n > 0 && pfd.revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0
}

fn peer_cred(stream: &UnixStream) -> Option<libc::ucred> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: u32::MAX,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid for writes of the sizes given.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&raw mut cred).cast(),
            &raw mut len,
        )
    };
    (rc == 0).then_some(cred)
}

/// Why the peer of `stream` may not use control commands, or `None` when it may.
pub fn peer_refusal(stream: &UnixStream, launcher: u32) -> Option<String> {
    let Some(cred) = peer_cred(stream) else {
        return Some("cannot read the peer's credentials".into());
    };
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if cred.uid != me {
        return Some(format!(
            "peer uid {} is not the broker's uid {me}",
            cred.uid
        ));
    }
    if cred.pid <= 0 {
        return Some("peer pid unknown".into());
    }
    guarded_ancestry(cred.pid as u32, launcher)
}

/// Walks `pid` and its ancestors; `Some(why)` when one of them belongs to a guarded tree.
pub fn guarded_ancestry(pid: u32, launcher: u32) -> Option<String> {
    walk(pid, launcher).err()
}

/// The whole ancestry walk: `Err(why)` as for [`guarded_ancestry`], else the (ppid, start
/// time) of `pid` itself, which [`Approvals::refusal`] keeps to recognise the peer later.
fn walk(pid: u32, launcher: u32) -> Result<(u32, u64), String> {
    // One scratch buffer for every /proc file of the walk (see `read_proc`).
    let mut scratch = Vec::new();
    let mut cur = pid;
    let mut first = None;
    for depth in 0..4096 {
        if cur <= 1 {
            // Reached init. (A peer that is pid 1 itself is not examined, as before; `refusal`
            // never remembers it.)
            return Ok(first.unwrap_or((0, 0)));
        }
        let (ppid, start) = check_process(cur, depth, launcher, &mut scratch)?;
        first.get_or_insert((ppid, start));
        cur = ppid;
    }
    Err("process ancestry too deep".into())
}

/// One process of the ancestry walk (`depth` 0 is the peer itself): `Err(why)` when it belongs
/// to a guarded tree or cannot be read, else its (ppid, start time in clock ticks since boot).
fn check_process(
    cur: u32,
    depth: usize,
    launcher: u32,
    scratch: &mut Vec<u8>,
) -> Result<(u32, u64), String> {
    // The broker's own executable does not change while it runs.
    static OUR_EXE: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();
    let our_exe = OUR_EXE.get_or_init(|| std::fs::read_link("/proc/self/exe").ok());
    let what = if depth == 0 {
        format!("the requesting process {cur}")
    } else {
        format!("its ancestor {cur}")
    };
    if cur == launcher {
        return Err(format!(
            "{what} is this session's launcher: the request comes from inside the guarded tree"
        ));
    }
    let Some(stat) = read_proc(&format!("/proc/{cur}/stat"), scratch).map(<[u8]>::to_vec) else {
        return Err(format!("cannot read /proc/{cur}/stat"));
    };
    if let Some(env) = read_proc(&format!("/proc/{cur}/environ"), scratch)
        && env
            .split(|b| *b == 0)
            .any(|e| e.starts_with(b"GUARD_SESSION="))
    {
        return Err(format!(
            "{what} runs inside a guarded session (GUARD_SESSION is set)"
        ));
    }
    if let Some(maps) = read_proc(&format!("/proc/{cur}/maps"), scratch)
        && maps
            .split(|b| *b == b'\n')
            .any(|l| l.ends_with(b"/libguard.so"))
    {
        return Err(format!("{what} has libguard.so loaded"));
    }
    if depth > 0
        && let (Some(ours), Ok(exe)) = (our_exe, std::fs::read_link(format!("/proc/{cur}/exe")))
        && &exe == ours
        && let Some(cmdline) = read_proc(&format!("/proc/{cur}/cmdline"), scratch)
        && cmdline.split(|b| *b == 0).nth(1) == Some(b"run")
    {
        return Err(format!("{what} is a `guardctl run` launcher"));
    }
    // The comm field may hold spaces and parentheses: parse after the last ')'. Then state
    // (field 3), ppid (4), ..., starttime (22).
    let Some(close) = stat.iter().rposition(|b| *b == b')') else {
        return Err(format!("malformed /proc/{cur}/stat"));
    };
    let rest = String::from_utf8_lossy(&stat[close + 1..]).into_owned();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    match (
        fields.get(1).and_then(|p| p.parse::<u32>().ok()),
        fields.get(19).and_then(|p| p.parse::<u64>().ok()),
    ) {
        (Some(ppid), Some(start)) => Ok((ppid, start)),
        _ => Err(format!("malformed /proc/{cur}/stat")),
    }
}

/// Reads a whole /proc file into `buf` (grown as needed) and returns its bytes. /proc files
/// report size 0, so `std::fs::read` probes with 32 bytes and doubles, about ten reads per
/// file; control requests walk several ancestors' stat, environ and maps on every request, and
/// consoles poll back to back, so this reads in large chunks (usually one read and the EOF).
fn read_proc<'b>(path: &str, buf: &'b mut Vec<u8>) -> Option<&'b [u8]> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).ok()?;
    let mut n = 0;
    loop {
        if buf.len() - n < 4096 {
            let grown = (buf.len() * 2).max(64 * 1024);
            buf.resize(grown, 0);
        }
        match f.read(&mut buf[n..]) {
            Ok(0) => return buf.get(..n),
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_process_is_outside_any_guarded_tree_unless_it_is_the_launcher() {
        let me = std::process::id();
        // Run from a shell or CI, the test process has no guard in its ancestry.
        if std::env::var_os("GUARD_SESSION").is_none() {
            assert_eq!(guarded_ancestry(me, 0), None);
        }
        let parent = std::os::unix::process::parent_id();
        let why = guarded_ancestry(me, parent).unwrap_or_default();
        assert!(why.contains("launcher"), "{why}");
        assert!(
            guarded_ancestry(u32::MAX - 1, 0).is_some(),
            "a vanished pid is refused"
        );
    }

    #[test]
    fn pending_with_a_wait_returns_when_an_ask_arrives_or_the_wait_ends() {
        let ap = std::sync::Arc::new(Approvals::new("agent"));
        let (console, _console_peer) = UnixStream::pair().unwrap();
        let t0 = Instant::now();
        ap.wait_for_ask(&console, 150);
        let idle = t0.elapsed();
        assert!(idle >= Duration::from_millis(150), "{idle:?}");
        assert!(idle < Duration::from_secs(3), "{idle:?}");
        let (a, _b) = UnixStream::pair().unwrap();
        let ap2 = ap.clone();
        let asker = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            let req = AskRequest {
                id: 0,
                session: "s",
                agent: "a",
                action: "read",
                target: "/tmp/asked",
                rule: "r",
                reason: "",
                pid: 1,
                ppid: 0,
                exe: "",
                runtime: "native",
                cwd: "/",
                timeout_ms: 5000,
            };
            ap2.ask(&a, &req, "s");
        });
        let t0 = Instant::now();
        ap.wait_for_ask(&console, 20_000);
        assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
        let listed = ap.pending_json();
        assert!(listed.contains("\"target\":\"/tmp/asked\""), "{listed}");
        let id = *ap.lock().pending.keys().next().unwrap();
        assert!(ap.answer(id, true, false, "test".into()));
        asker.join().unwrap();
        // Answered asks do not count: the next wait runs to its end again.
        let t0 = Instant::now();
        ap.wait_for_ask(&console, 100);
        assert!(t0.elapsed() >= Duration::from_millis(100));
    }

    /// The memo of cleared control peers: the peer itself is checked on every request, its
    /// ancestors again once the entry is older than CLEARED_TTL or the peer's identity changed.
    #[test]
    fn control_peers_are_remembered_but_the_peer_itself_is_checked_every_time() {
        if std::env::var_os("GUARD_SESSION").is_some() {
            return; // run inside a guarded session: everything is refused, rightly
        }
        let me = std::process::id();
        let parent = std::os::unix::process::parent_id();
        let (stream, _peer) = UnixStream::pair().unwrap();
        let with_launcher = |launcher: u32| Approvals {
            launcher,
            ..Approvals::new("a")
        };
        let entry = |ap: &Approvals| ap.cleared.lock().unwrap().get(&me).copied();

        // Outside: cleared, remembered, and cleared again from the memo.
        let ap = with_launcher(0);
        assert_eq!(ap.refusal(&stream), None);
        let first = entry(&ap).expect("remembered");
        assert_eq!(first.ppid, parent);
        assert_eq!(ap.refusal(&stream), None);
        // A different start time (a reused pid) is not taken from the memo: full walk again.
        ap.cleared.lock().unwrap().get_mut(&me).unwrap().start ^= 1;
        assert_eq!(ap.refusal(&stream), None);
        assert_eq!(entry(&ap).map(|c| c.start), Some(first.start));

        // The peer itself is re-checked even with a fresh memo entry.
        let ap = with_launcher(me);
        ap.cleared.lock().unwrap().insert(me, first);
        let why = ap.refusal(&stream).unwrap_or_default();
        assert!(why.contains("launcher"), "{why}");
        assert!(entry(&ap).is_none(), "a refusal forgets the peer");

        // Ancestors: trusted from a fresh entry, walked again once it is older than the TTL.
        let ap = with_launcher(parent);
        let mut stale = first;
        stale.at = Instant::now() - CLEARED_TTL - Duration::from_millis(1);
        ap.cleared.lock().unwrap().insert(me, stale);
        let why = ap.refusal(&stream).unwrap_or_default();
        assert!(why.contains("launcher"), "{why}");
    }

    #[test]
    fn read_proc_reads_whole_files_of_any_size() {
        let mut scratch = Vec::new();
        let cmdline = std::fs::read("/proc/self/cmdline").unwrap();
        assert_eq!(
            read_proc("/proc/self/cmdline", &mut scratch),
            Some(&cmdline[..])
        );
        // Larger than the first chunk, so the buffer has to grow mid-read.
        let dir = std::env::temp_dir().join(format!("guard-ap-readproc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(dir.join("big"), &big).unwrap();
        let got = read_proc(dir.join("big").to_str().unwrap(), &mut scratch).map(<[u8]>::to_vec);
        assert_eq!(got.as_deref(), Some(&big[..]));
        assert_eq!(read_proc("/proc/0/stat", &mut scratch), None);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn answers_reach_the_waiting_ask_and_remember_works() {
        let ap = std::sync::Arc::new(Approvals::new("agent"));
        let (a, b) = UnixStream::pair().unwrap();
        let ap2 = ap.clone();
        let t = std::thread::spawn(move || {
            let req = AskRequest {
                id: 0,
                session: "s",
                agent: "a",
                action: "exec",
                target: "git push -f",
                rule: "r",
                reason: "",
                pid: 1,
                ppid: 0,
                exe: "",
                runtime: "native",
                cwd: "/",
                timeout_ms: 5000,
            };
            ap2.ask(&a, &req, "s");
            ap2.ask(&a, &req, "s");
        });
        let id = loop {
            if let Some(id) = ap.lock().pending.keys().next().copied() {
                break id;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        assert!(ap.pending_json().contains("\"target\":\"git push -f\""));
        assert!(ap.answer(id, true, true, "test".into()));
        assert!(!ap.answer(id, false, false, "again".into()));
        t.join().unwrap();
        let mut got = Vec::new();
        let mut b = b;
        b.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut chunk = [0u8; 512];
        while got.len() < 2 {
            let n = std::io::Read::read(&mut b, &mut chunk).unwrap();
            let mut off = 0;
            let mut buf = chunk[..n].to_vec();
            while let Ok((Message::AskReply(r), used)) = wire::decode_frame(&buf[off..]) {
                if r.decision != "pending" {
                    got.push((r.decision.to_string(), r.who.to_string()));
                }
                off += used;
            }
            buf.clear();
        }
        assert_eq!(got[0].0, "allow");
        assert_eq!(got[1], ("allow".into(), "test remembered".into()));
    }

    /// A broker on a socket in a fresh scratch directory named after `tag` and this process:
    /// (directory, socket path, broker).
    fn live_broker(
        tag: &str,
    ) -> (
        std::path::PathBuf,
        std::path::PathBuf,
        crate::broker::Broker,
    ) {
        use crate::broker::Broker;
        use crate::broker::event::SessionInfo;
        use std::os::unix::net::UnixListener;
        let dir = std::env::temp_dir().join(format!("{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("b.sock");
        let log = std::fs::File::create(dir.join("log.jsonl")).unwrap();
        let info = SessionInfo {
            session: "s".into(),
            agent: "a".into(),
            model: "m".into(),
            host: "h".into(),
        };
        let broker = Broker::start(UnixListener::bind(&sock).unwrap(), log, info).unwrap();
        (dir, sock, broker)
    }

    /// Random bytes, truncated frames, huge lengths, wrong versions and half-sent asks over a
    /// live broker's socket: the broker keeps serving, and control requests from its own
    /// process (the launcher) are refused.
    #[test]
    fn a_live_broker_survives_hostile_clients() {
        use std::io::Read;
        let (dir, sock, broker) = live_broker("guard-ap-fuzz");
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut good = vec![0u8; 1024];
        let ask = AskRequest {
            id: 0,
            session: "s",
            agent: "a",
            action: "exec",
            target: "x",
            rule: "r",
            reason: "",
            pid: 1,
            ppid: 0,
            exe: "",
            runtime: "native",
            cwd: "/",
            timeout_ms: 10,
        };
        let n = wire::encode_frame(&Message::AskRequest(ask), &mut good).unwrap();
        good.truncate(n);
        for round in 0..400u32 {
            let Ok(mut c) = UnixStream::connect(&sock) else {
                panic!("broker stopped accepting at round {round}");
            };
            let mut bytes: Vec<u8> = match round % 5 {
                0 => (0..rnd() % 300).map(|_| rnd() as u8).collect(),
                1 => good[..(rnd() as usize % good.len())].to_vec(),
                2 => {
                    let mut b = good.clone();
                    b[..4].copy_from_slice(&(rnd() as u32 | 0x0100_0000).to_le_bytes());
                    b
                }
                3 => {
                    let mut b = good.clone();
                    let i = rnd() as usize % b.len();
                    b[i] ^= rnd() as u8 | 1;
                    b
                }
                _ => {
                    let mut b = good.clone();
                    b[4] = 2 + (rnd() % 250) as u8;
                    b
                }
            };
            if round % 7 == 0 {
                bytes.extend((0..64).map(|_| rnd() as u8));
            }
            let _ = c.write_all(&bytes);
        }
        // Still serving: an ask times out on the broker side and is answered with a deny;
        // a control request from the launcher's own process is refused.
        let mut c = UnixStream::connect(&sock).unwrap();
        c.write_all(&good).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = vec![0u8; 4096];
        let mut got = 0;
        let reply = loop {
            let k = c.read(&mut buf[got..]).unwrap();
            assert!(k > 0, "broker closed without answering");
            got += k;
            let mut off = 0;
            let mut last = None;
            while let Ok((Message::AskReply(r), used)) = wire::decode_frame(&buf[off..got]) {
                off += used;
                if r.decision != "pending" {
                    last = Some((r.decision.to_string(), r.who.to_string()));
                }
            }
            if let Some(r) = last {
                break r;
            }
        };
        assert_eq!(reply, ("deny".to_string(), "timeout".to_string()));
        let mut c = UnixStream::connect(&sock).unwrap();
        let mut f = vec![0u8; 256];
        let req = ControlRequest {
            op: "approve",
            id: 1,
            remember: false,
        };
        let n = wire::encode_frame(&Message::ControlRequest(req), &mut f).unwrap();
        c.write_all(&f[..n]).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        got = 0;
        let body = loop {
            let k = c.read(&mut buf[got..]).unwrap();
            assert!(k > 0);
            got += k;
            if let Ok((Message::ControlReply(r), _)) = wire::decode_frame(&buf[..got]) {
                assert!(!r.ok);
                break r.body.to_string();
            }
        };
        assert!(body.contains("launcher"), "{body}");
        let summary = broker.finish(Duration::from_millis(50), Duration::from_secs(2));
        assert!(summary.rejected_connections > 0, "{summary:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Ask round trip through a live broker with an automatic approver thread (the human
    /// replaced by code answering each ask as soon as it is pending). Measures the client's
    /// send → reply time on a fresh connection per ask, as libguard does.
    /// `cargo test -p guardctl --release -- --ignored ask_round_trip --nocapture`
    #[test]
    #[ignore]
    fn ask_round_trip_latency() {
        use std::io::Read;
        let (dir, sock, broker) = live_broker("guard-ap-bench");
        let ap = broker.approvals();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop2 = stop.clone();
        let approver = std::thread::spawn(move || {
            while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
                let mut g = ap.lock();
                let ids: Vec<u64> = g
                    .pending
                    .iter()
                    .filter(|(_, p)| p.answer.is_none())
                    .map(|(id, _)| *id)
                    .collect();
                if ids.is_empty() {
                    let _ = ap.cv.wait_timeout(g, Duration::from_millis(20));
                    continue;
                }
                for id in ids {
                    if let Some(p) = g.pending.get_mut(&id) {
                        p.answer = Some((true, "auto".into()));
                    }
                }
                ap.cv.notify_all();
            }
        });
        let mut frame = vec![0u8; 1024];
        let mut times = Vec::new();
        for i in 0..2000u32 {
            let target = format!("touch /tmp/x{i}");
            let req = AskRequest {
                id: 0,
                session: "s",
                agent: "a",
                action: "exec",
                target: &target,
                rule: "r",
                reason: "",
                pid: 1,
                ppid: 0,
                exe: "/bin/sh",
                runtime: "native",
                cwd: "/",
                timeout_ms: 5000,
            };
            let n = wire::encode_frame(&Message::AskRequest(req), &mut frame).unwrap();
            let t = Instant::now();
            let mut c = UnixStream::connect(&sock).unwrap();
            c.write_all(&frame[..n]).unwrap();
            let mut buf = [0u8; 256];
            let mut got = 0;
            loop {
                let k = c.read(&mut buf[got..]).unwrap();
                assert!(k > 0);
                got += k;
                let mut off = 0;
                let mut done = false;
                while let Ok((Message::AskReply(r), used)) = wire::decode_frame(&buf[off..got]) {
                    off += used;
                    if r.decision != "pending" {
                        assert_eq!(r.decision, "allow");
                        done = true;
                    }
                }
                if done {
                    break;
                }
            }
            times.push(t.elapsed());
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        times.sort();
        let pct = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
        println!(
            "ask round trip over {} asks: median {:?}, p90 {:?}, p99 {:?}, max {:?}",
            times.len(),
            pct(0.5),
            pct(0.9),
            pct(0.99),
            times[times.len() - 1]
        );
        let _ = approver.join();
        let _ = broker.finish(Duration::from_millis(50), Duration::from_secs(2));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
