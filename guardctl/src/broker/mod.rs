//! The broker: receives audit events from the guarded processes of one session (`guardctl
//! run`) or of every attached session (`guardctl serve`) over a private Unix socket and appends
//! them to each session's audit store (hash-chained JSON Lines plus SQLite).
//!
//! Events a process could not send wait in its spill file (see [`spill`]); a spill thread
//! ingests them at start, every second and at the end, into the same queue, so they join the
//! hash chain like any other event, marked `delivery: spill`.
//!
//! Threads: one acceptor, one reader per connection (guarded processes connect lazily, one
//! stream each, and connections are few), and one writer fed by a bounded queue, so a slow disk
//! never blocks a reader for long and a flood cannot grow memory: when the queue is full the
//! event is counted as dropped. Input is never trusted: a malformed, oversized or wrong-version
//! frame closes that connection only; connections from other users are refused.

pub mod approvals;
pub mod event;
pub mod registry;
pub mod seccomp;
pub mod spill;
pub mod store;

use event::{AuditEvent, SessionInfo};
use guard_proto::wire::{self, FrameError, Message};
use registry::Registry;
use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};
use store::{Counts, Store};

// `eprintln!` that never panics: with `2>&1 | head` the pipe may be gone when the summary is
// written, and a panic (abort) there would replace the command's exit status.
macro_rules! eprintln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

/// What the writer receives. Events are nearly every item, and boxing them would add an
/// allocation per event on the broker's hot path.
#[allow(clippy::large_enum_variant)]
pub enum Item {
    Event(AuditEvent),
    /// `guardctl serve`: flush and close the store of a session that ended, then report.
    Close {
        session: String,
        done: mpsc::Sender<SessionTotals>,
    },
}

/// A session's totals when its store is closed.
#[derive(Clone, Copy, Debug, Default)]
pub struct SessionTotals {
    /// Events in its JSON Lines file (`lost` records not included).
    pub records: u64,
    /// Broker drops plus client-reported drops (`dropped_before`, `lost` records).
    pub dropped: u64,
    /// Records that came from spill files (this broker's; included in `records`).
    pub spilled: u64,
}

/// Seconds between two spill passes.
const SPILL_EVERY: Duration = Duration::from_secs(1);

/// Events waiting for the writer; beyond this the broker drops and counts.
pub const QUEUE_CAPACITY: usize = 8192;
/// Concurrent connections served; more are closed at once (each holds a thread).
const MAX_CONNECTIONS: usize = 512;

/// Counters shared by the broker's threads.
struct Shared {
    info: SessionInfo,
    stop: AtomicBool,
    /// Milliseconds since `epoch` of the last byte or connection seen.
    last_activity_ms: AtomicU64,
    epoch: Instant,
    connections: AtomicUsize,
    /// Events the broker itself lost (queue full).
    broker_dropped: AtomicU64,
    /// Sum of `dropped_before` reported by guarded processes.
    client_dropped: AtomicU64,
    /// Connections closed for sending garbage.
    rejected: AtomicU64,
    written: AtomicU64,
    /// Asks waiting for a human, and the control commands answering them.
    approvals: Arc<approvals::Approvals>,
    /// `guardctl serve`: the attached sessions (None in a session broker).
    registry: Option<Arc<Registry>>,
    /// The session's spill directory (session broker); serve uses the registry's root.
    spill: Option<PathBuf>,
    /// Events taken from spill files.
    spilled: AtomicU64,
    /// Serialises spill passes (the periodic thread, session ends, the final pass).
    spill_lock: Mutex<()>,
    /// Tells the spill thread to stop (before `stop`, so the final pass is still written).
    spill_stop: AtomicBool,
    /// The session's compiled ruleset, for the kernel layer's supervisor (`seccomp`); unset in
    /// `serve`, which then refuses to supervise.
    ruleset: OnceLock<PathBuf>,
}

impl Shared {
    fn touch(&self) {
        let ms = self.epoch.elapsed().as_millis() as u64;
        self.last_activity_ms.fetch_max(ms, Ordering::Relaxed);
    }
    fn quiet_for(&self) -> Duration {
        let now = self.epoch.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last_activity_ms.load(Ordering::Relaxed)))
    }
}

/// What the broker saw, for the session summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub events: u64,
    /// Lost by the broker (queue full) plus reported lost by guarded processes.
    pub dropped: u64,
    pub rejected_connections: u64,
    /// Events that arrived through spill files (included in `events`).
    pub spilled: u64,
}

pub struct Broker {
    shared: Arc<Shared>,
    tx: SyncSender<Item>,
    spiller: Option<JoinHandle<()>>,
    writer: Option<JoinHandle<std::io::Result<()>>>,
    /// A second handle on the listening socket, to see connections not yet accepted.
    listener: Option<UnixListener>,
}

impl Broker {
    /// Starts serving `listener`, appending events to `log` (JSON Lines only).
    #[allow(dead_code)] // the skeleton's API; `guardctl run` uses `start_with_db`
    pub fn start(listener: UnixListener, log: File, info: SessionInfo) -> std::io::Result<Broker> {
        Broker::start_with_capacity(listener, log, info, QUEUE_CAPACITY)
    }

    /// [`Broker::start`], also indexing every event in the SQLite database at `db`.
    #[allow(dead_code)] // the skeleton's API; `guardctl run` uses `start_session`
    pub fn start_with_db(
        listener: UnixListener,
        log: File,
        db: &Path,
        info: SessionInfo,
    ) -> std::io::Result<Broker> {
        let store = Store::open(log, Some(db), &info.session)?;
        Broker::start_store(listener, store, info, QUEUE_CAPACITY)
    }

    /// A session broker (`guardctl run`) that also ingests the session's spill directory.
    pub fn start_session(
        listener: UnixListener,
        log: File,
        db: &Path,
        info: SessionInfo,
        spill: PathBuf,
    ) -> std::io::Result<Broker> {
        let store = Store::open(log, Some(db), &info.session)?;
        Broker::start_inner(
            listener,
            Sink::One(store),
            info,
            QUEUE_CAPACITY,
            None,
            Some(spill),
        )
    }

    /// The shared broker (`guardctl serve`): stores the events of every attached session (see
    /// [`registry`]) in that session's own files, and ingests their spill directories.
    pub fn start_serve(listener: UnixListener, state: &Path) -> std::io::Result<Broker> {
        let host = event::hostname();
        let registry = Arc::new(Registry::new(state.to_path_buf(), host.clone()));
        let info = SessionInfo {
            session: String::new(),
            agent: String::new(),
            model: String::new(),
            host,
        };
        let many = Many {
            registry: Arc::clone(&registry),
            open: HashMap::new(),
        };
        Broker::start_inner(
            listener,
            Sink::Many(many),
            info,
            QUEUE_CAPACITY,
            Some(registry),
            None,
        )
    }

    /// [`Broker::start`] with a queue of `capacity` events.
    #[allow(dead_code)] // the skeleton's API, used by the unit tests
    pub fn start_with_capacity(
        listener: UnixListener,
        log: File,
        info: SessionInfo,
        capacity: usize,
    ) -> std::io::Result<Broker> {
        let store = Store::open(log, None, &info.session)?;
        Broker::start_store(listener, store, info, capacity)
    }

    /// Starts serving `listener`, writing events to `store`.
    pub fn start_store(
        listener: UnixListener,
        store: Store,
        info: SessionInfo,
        capacity: usize,
    ) -> std::io::Result<Broker> {
        Broker::start_inner(listener, Sink::One(store), info, capacity, None, None)
    }

    fn start_inner(
        listener: UnixListener,
        sink: Sink,
        info: SessionInfo,
        capacity: usize,
        registry: Option<Arc<Registry>>,
        spill: Option<PathBuf>,
    ) -> std::io::Result<Broker> {
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            last_activity_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            connections: AtomicUsize::new(0),
            broker_dropped: AtomicU64::new(0),
            client_dropped: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            written: AtomicU64::new(0),
            approvals: Arc::new(approvals::Approvals::new(&info.agent)),
            info,
            registry,
            spill,
            spilled: AtomicU64::new(0),
            spill_lock: Mutex::new(()),
            spill_stop: AtomicBool::new(false),
            ruleset: OnceLock::new(),
        });
        let (tx, rx) = mpsc::sync_channel::<Item>(capacity.max(1));
        let w_shared = Arc::clone(&shared);
        let writer = thread::Builder::new()
            .name("guard-writer".into())
            .spawn(move || write_loop(rx, sink, &w_shared))?;
        let a_shared = Arc::clone(&shared);
        let watch = listener.try_clone().ok();
        let a_tx = tx.clone();
        thread::Builder::new()
            .name("guard-accept".into())
            .spawn(move || accept_loop(listener, a_tx, a_shared))?;
        let spiller = if shared.spill.is_some() || shared.registry.is_some() {
            let (s_shared, s_tx) = (Arc::clone(&shared), tx.clone());
            Some(
                thread::Builder::new()
                    .name("guard-spill".into())
                    .spawn(move || spill_loop(&s_shared, &s_tx))?,
            )
        } else {
            None
        };
        Ok(Broker {
            shared,
            tx,
            spiller,
            writer: Some(writer),
            listener: watch,
        })
    }

    /// Lets this broker supervise seccomp listeners (the kernel layer) with the compiled
    /// ruleset at `path`.
    pub fn supervise_with(&self, path: PathBuf) {
        let _ = self.shared.ruleset.set(path);
    }

    /// The approval state (tests answer asks through it directly).
    #[cfg(test)]
    pub fn approvals(&self) -> Arc<approvals::Approvals> {
        Arc::clone(&self.shared.approvals)
    }

    /// Waits until the session's processes have gone quiet (every connection closed, or no
    /// bytes for `quiet`), at most `max`, then flushes every queued event and stops writing.
    pub fn finish(mut self, quiet: Duration, max: Duration) -> Summary {
        let start = Instant::now();
        // Give the last writes of an exiting child a chance to be read.
        self.shared.touch();
        let mut idle_since: Option<Instant> = None;
        loop {
            // A process that connected, wrote and exited just before the command did may
            // still sit in the listen backlog: not idle until it is accepted and read.
            let backlog = self.listener.as_ref().is_some_and(pending_connection);
            let idle = !backlog && self.shared.connections.load(Ordering::Acquire) == 0;
            idle_since = if idle {
                idle_since.or(Some(Instant::now()))
            } else {
                None
            };
            let settled = idle_since.is_some_and(|t| t.elapsed() >= Duration::from_millis(20));
            if settled || (!backlog && self.shared.quiet_for() >= quiet) || start.elapsed() >= max {
                break;
            }
            thread::sleep(Duration::from_millis(10));
        }
        self.shared.spill_stop.store(true, Ordering::Release);
        if let Some(s) = self.spiller.take() {
            let _ = s.join();
        }
        // The last pass: every process of a session broker has exited by now; wait a little
        // for a file a writer still holds. Before `stop`, so the writer takes all of it.
        spill_pass(&self.shared, &self.tx, Duration::from_millis(300), None);
        self.shared.stop.store(true, Ordering::Release);
        if let Some(w) = self.writer.take() {
            match w.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => eprintln!("guard: writing the audit log failed: {e}"),
                Err(_) => eprintln!("guard: the audit writer crashed"),
            }
        }
        let s = &self.shared;
        Summary {
            events: s.written.load(Ordering::Acquire),
            dropped: s
                .broker_dropped
                .load(Ordering::Acquire)
                .saturating_add(s.client_dropped.load(Ordering::Acquire)),
            rejected_connections: s.rejected.load(Ordering::Acquire),
            spilled: s.spilled.load(Ordering::Acquire),
        }
    }
}

/// Spill passes every [`SPILL_EVERY`] until the broker stops (the first one at once, which
/// is the ingest "at restart" for a `serve` that comes back).
fn spill_loop(shared: &Shared, tx: &SyncSender<Item>) {
    loop {
        spill_pass(shared, tx, Duration::ZERO, None);
        let t = Instant::now();
        while t.elapsed() < SPILL_EVERY {
            if shared.spill_stop.load(Ordering::Acquire) {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Ingests spill files into the queue (blocking sends: nothing taken from a file is dropped).
/// `only`: in serve, just this session's directory.
fn spill_pass(shared: &Shared, tx: &SyncSender<Item>, wait: Duration, only: Option<&str>) {
    let _g = shared.spill_lock.lock().unwrap_or_else(|e| e.into_inner());
    let push = |got: spill::Ingested| {
        for ev in got.events {
            shared.spilled.fetch_add(1, Ordering::Relaxed);
            if shared.registry.is_none() && ev.dropped_before > 0 {
                shared
                    .client_dropped
                    .fetch_add(ev.dropped_before, Ordering::Relaxed);
            }
            if tx.send(Item::Event(ev)).is_err() {
                shared.broker_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    };
    if let Some(dir) = &shared.spill {
        push(spill::ingest_dir(dir, &shared.info, wait));
        return;
    }
    let Some(reg) = &shared.registry else {
        return;
    };
    let root = reg.spill_root();
    let dirs: Vec<PathBuf> = match only {
        Some(s) => vec![root.join(s)],
        None => std::fs::read_dir(&root)
            .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default(),
    };
    for dir in dirs {
        let Some(session) = dir.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        // Spill files of a session nobody registered stay where they are.
        let Some(info) = reg.lookup(session) else {
            continue;
        };
        push(spill::ingest_dir(&dir, &info, wait));
        if reg.ended(session) {
            spill::remove_dir_if_empty(&dir);
        }
    }
}

/// `end-session` from an attached launcher (serve only): waits for the session's connections
/// to close, ingests its spill files, closes its store and answers with its totals as JSON.
fn end_session(stream: &UnixStream, shared: &Shared, tx: &SyncSender<Item>) -> (bool, String) {
    let Some(reg) = &shared.registry else {
        return (false, "not a shared broker".into());
    };
    let pid = approvals::peer_cred_pid(stream);
    let Some(session) = pid.and_then(|p| reg.by_launcher(p)) else {
        return (
            false,
            "refused: the peer is not the launcher of a session attached here".into(),
        );
    };
    let t = Instant::now();
    while (reg.conns(&session) > 0 || shared.quiet_for() < Duration::from_millis(50))
        && t.elapsed() < Duration::from_secs(2)
    {
        thread::sleep(Duration::from_millis(10));
    }
    spill_pass(shared, tx, Duration::from_millis(300), Some(&session));
    let (done, rx) = mpsc::channel();
    if tx
        .send(Item::Close {
            session: session.clone(),
            done,
        })
        .is_err()
    {
        return (false, "the broker is stopping".into());
    }
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(t) => (
            true,
            serde_json::json!({"session": session, "events": t.records, "dropped": t.dropped, "spilled": t.spilled})
                .to_string(),
        ),
        Err(_) => (false, "the audit writer did not answer".into()),
    }
}

/// Whether a connection waits in `listener`'s backlog.
fn pending_connection(listener: &UnixListener) -> bool {
    let mut pfd = libc::pollfd {
        fd: listener.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout.
    let n = unsafe { libc::poll(&mut pfd, 1, 0) };
    n > 0 && pfd.revents & libc::POLLIN != 0
}

fn accept_loop(listener: UnixListener, tx: SyncSender<Item>, shared: Arc<Shared>) {
    for conn in listener.incoming() {
        if shared.stop.load(Ordering::Acquire) {
            return;
        }
        let Ok(stream) = conn else {
            // EMFILE and friends: back off instead of spinning.
            thread::sleep(Duration::from_millis(20));
            continue;
        };
        // Counted at once, so `finish` never sees an accepted connection as absent.
        let live = shared.connections.fetch_add(1, Ordering::AcqRel);
        shared.touch();
        if !peer_is_us(&stream) || live >= MAX_CONNECTIONS {
            shared.connections.fetch_sub(1, Ordering::AcqRel);
            shared.rejected.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let (tx, r_shared) = (tx.clone(), Arc::clone(&shared));
        let spawned = thread::Builder::new()
            .name("guard-conn".into())
            .stack_size(128 * 1024)
            .spawn(move || {
                read_loop(stream, &tx, &r_shared);
                r_shared.connections.fetch_sub(1, Ordering::AcqRel);
            });
        if spawned.is_err() {
            shared.connections.fetch_sub(1, Ordering::AcqRel);
            shared.rejected.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The socket lives in a 0700 directory, so only we (or root) can reach it; still refuse
/// other uids in case the directory was made reachable.
fn peer_is_us(stream: &UnixStream) -> bool {
    static UID: OnceLock<u32> = OnceLock::new();
    // SAFETY: geteuid has no preconditions.
    let me = *UID.get_or_init(|| unsafe { libc::geteuid() });
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
    rc == 0 && (cred.uid == me || cred.uid == 0)
}

/// The session a serve connection's events belong to (checked once, then reused).
#[derive(Default)]
struct Bound {
    session: Option<(String, SessionInfo)>,
}

fn read_loop(stream: UnixStream, tx: &SyncSender<Item>, shared: &Arc<Shared>) {
    let mut bound = Bound::default();
    read_frames(stream, tx, shared, &mut bound);
    if let (Some(reg), Some((s, _))) = (&shared.registry, &bound.session) {
        reg.conn_closed(s);
    }
}

fn read_frames(stream: UnixStream, tx: &SyncSender<Item>, shared: &Arc<Shared>, bound: &mut Bound) {
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    let mut chunk = [0u8; 16 * 1024];
    // A descriptor that came with the bytes (only a `Supervise` listener frame carries one).
    let mut passed: Option<std::os::fd::OwnedFd> = None;
    loop {
        let n = match recv_with_fd(&stream, &mut chunk, &mut passed) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        shared.touch();
        buf.extend_from_slice(&chunk[..n]);
        let mut used = 0;
        loop {
            match wire::decode_frame(&buf[used..]) {
                Ok((msg, len)) => {
                    used += len;
                    if matches!(msg, Message::Event(_)) {
                        handle(msg, tx, shared, bound);
                    } else if let Message::Supervise(sup) = &msg {
                        let (ok, body) = seccomp::on_supervise(sup, passed.take(), shared, tx);
                        approvals::reply_control(&stream, ok, &body);
                    } else if let Message::ControlRequest(r) = &msg
                        && r.op == "end-session"
                    {
                        let (ok, body) = end_session(&stream, shared, tx);
                        approvals::reply_control(&stream, ok, &body);
                    } else if !approvals::on_message(
                        &stream,
                        &msg,
                        &shared.approvals,
                        &shared.info.session,
                    ) {
                        return;
                    }
                }
                Err(FrameError::Incomplete) => break,
                Err(_) => {
                    // Garbage, an oversized length or a wrong version: this peer is not
                    // speaking our protocol; drop it and keep serving everyone else.
                    shared.rejected.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        }
        buf.drain(..used);
    }
}

/// `read`, also taking one `SCM_RIGHTS` descriptor into `fd` (closing any earlier one not
/// claimed, and any extra ones: only the kernel layer's listener is ever passed).
fn recv_with_fd(
    stream: &UnixStream,
    chunk: &mut [u8],
    fd: &mut Option<std::os::fd::OwnedFd>,
) -> std::io::Result<usize> {
    use std::os::fd::FromRawFd;
    #[repr(C)]
    union Cmsg {
        hdr: libc::cmsghdr,
        buf: [u8; 128],
    }
    let mut cbuf = Cmsg { buf: [0u8; 128] };
    let mut iov = libc::iovec {
        iov_base: chunk.as_mut_ptr().cast(),
        iov_len: chunk.len(),
    };
    // SAFETY: an all-zero msghdr is valid; the pointers set below outlive the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = (&raw mut cbuf).cast();
    msg.msg_controllen = std::mem::size_of::<Cmsg>();
    // SAFETY: valid msghdr with its buffers.
    let n = unsafe { libc::recvmsg(stream.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: walking the control messages the kernel wrote into `cbuf`.
    unsafe {
        let mut h = libc::CMSG_FIRSTHDR(&msg);
        while !h.is_null() {
            if (*h).cmsg_level == libc::SOL_SOCKET && (*h).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(h).cast::<i32>();
                let count = ((*h).cmsg_len as usize - libc::CMSG_LEN(0) as usize) / 4;
                for i in 0..count {
                    let raw = std::ptr::read_unaligned(data.add(i));
                    let owned = std::os::fd::OwnedFd::from_raw_fd(raw);
                    if i == 0 {
                        *fd = Some(owned);
                    }
                }
            }
            h = libc::CMSG_NXTHDR(&msg, h);
        }
    }
    Ok(n as usize)
}

/// The session identity to stamp on `ev`: the broker's own session, or in serve the attached
/// session it names (`None`: not attached, the event is refused and counted).
fn session_of<'b>(
    ev: &wire::Event<'_>,
    shared: &'b Shared,
    bound: &'b mut Bound,
) -> Option<&'b SessionInfo> {
    let Some(reg) = &shared.registry else {
        return Some(&shared.info);
    };
    let same = bound
        .session
        .as_ref()
        .is_some_and(|(s, _)| s.as_str() == ev.session);
    if !same {
        let info = reg.lookup(ev.session)?;
        if let Some((old, _)) = &bound.session {
            reg.conn_closed(old);
        }
        reg.conn_opened(ev.session);
        bound.session = Some((ev.session.to_string(), info));
    }
    bound.session.as_ref().map(|(_, i)| i)
}

// Other message kinds may be added to the wire protocol; this broker only stores events.
#[allow(unreachable_patterns, clippy::single_match)]
fn handle(msg: Message<'_>, tx: &SyncSender<Item>, shared: &Shared, bound: &mut Bound) {
    match msg {
        Message::Event(ev) => {
            if ev.dropped_before > 0 {
                shared
                    .client_dropped
                    .fetch_add(ev.dropped_before, Ordering::Relaxed);
            }
            let Some(info) = session_of(&ev, shared, bound) else {
                shared.broker_dropped.fetch_add(1, Ordering::Relaxed);
                return;
            };
            let out = AuditEvent::from_wire(&ev, info, SystemTime::now());
            match tx.try_send(Item::Event(out)) {
                Ok(()) => {}
                Err(TrySendError::Full(Item::Event(ev)))
                | Err(TrySendError::Disconnected(Item::Event(ev))) => {
                    shared.broker_dropped.fetch_add(1, Ordering::Relaxed);
                    if let Some(reg) = &shared.registry {
                        reg.add_dropped(&ev.session);
                    }
                }
                Err(_) => {
                    shared.broker_dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        _ => {}
    }
}

/// Events written per batch (one write(2), one SQLite transaction).
const BATCH: usize = 512;

fn counts(shared: &Shared) -> Counts {
    Counts {
        broker_dropped: shared.broker_dropped.load(Ordering::Acquire),
        client_dropped: shared.client_dropped.load(Ordering::Acquire),
    }
}

/// Microseconds to stall per event, from `GUARD_TEST_WRITER_DELAY_US`: lets the load tests
/// force a writer slower than its clients and check the loss accounting.
fn test_delay() -> Option<Duration> {
    std::env::var("GUARD_TEST_WRITER_DELAY_US")
        .ok()?
        .parse::<u64>()
        .ok()
        .filter(|&us| us > 0)
        .map(Duration::from_micros)
}

/// Where the writer puts events: one session's store, or (serve) one store per session.
pub enum Sink {
    One(Store),
    Many(Many),
}

/// The stores of serve's attached sessions, opened on their first event.
pub struct Many {
    registry: Arc<Registry>,
    /// Per session: its store (holding an exclusive `flock` on the JSON Lines file, so that a
    /// launcher's fallback ingest never interleaves with it) and its counts.
    open: HashMap<String, Open>,
}

/// One attached session's open store.
struct Open {
    store: Store,
    /// Its totals, continued from what the database held when it was opened.
    counts: Counts,
    spilled: u64,
}

impl Many {
    fn store(&mut self, session: &str) -> Option<&mut Open> {
        if !self.open.contains_key(session) {
            let path = self
                .registry
                .sessions_dir()
                .join(format!("{session}.jsonl"));
            let file = std::fs::OpenOptions::new()
                .read(true)
                .append(true)
                .create(true)
                .mode(0o600)
                .open(&path)
                .ok()?;
            if !lock_exclusive(&file, Duration::from_secs(5)) {
                eprintln!(
                    "guard: serve: {} stays locked by another writer; events of {session} are dropped",
                    path.display()
                );
                return None;
            }
            let db = self.registry.sessions_dir().join("audit.db");
            let store = Store::open(file, Some(&db), session).ok()?;
            let counts = store.stored_counts();
            self.open.insert(
                session.to_string(),
                Open {
                    store,
                    counts,
                    spilled: 0,
                },
            );
        }
        self.open.get_mut(session)
    }

    fn write(&mut self, events: Vec<AuditEvent>) -> u64 {
        let mut by_session: Vec<(String, Vec<AuditEvent>)> = Vec::new();
        for ev in events {
            match by_session.iter_mut().find(|(s, _)| *s == ev.session) {
                Some((_, v)) => v.push(ev),
                None => by_session.push((ev.session.clone(), vec![ev])),
            }
        }
        let mut written = 0;
        for (session, evs) in by_session {
            let more = self.registry.take_dropped(&session);
            let Some(o) = self.store(&session) else {
                // Back in the registry: they stay counted for when the store opens.
                for _ in 0..more {
                    self.registry.add_dropped(&session);
                }
                for _ in &evs {
                    self.registry.add_dropped(&session);
                }
                continue;
            };
            o.counts.client_dropped += evs.iter().map(|e| e.dropped_before).sum::<u64>();
            o.spilled += evs
                .iter()
                .filter(|e| e.delivery.as_deref() == Some("spill"))
                .count() as u64;
            o.counts.broker_dropped += more;
            match o.store.write_batch(&evs, o.counts) {
                Ok(n) => written += n,
                Err(e) => eprintln!("guard: serve: writing the audit log of {session}: {e}"),
            }
        }
        written
    }

    fn close(&mut self, session: &str) -> SessionTotals {
        let more = self.registry.take_dropped(session);
        match self.store(session) {
            Some(o) => {
                o.counts.broker_dropped += more;
                let c = o.counts;
                o.store.finish(c);
                let totals = SessionTotals {
                    records: o.store.events(),
                    dropped: c.broker_dropped + c.client_dropped,
                    spilled: o.spilled,
                };
                self.open.remove(session);
                totals
            }
            None => SessionTotals::default(),
        }
    }
}

/// Takes an exclusive `flock` on `f`, retrying for up to `wait`.
pub fn lock_exclusive(f: &File, wait: Duration) -> bool {
    let t = Instant::now();
    loop {
        // SAFETY: flock on an open file.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return true;
        }
        if t.elapsed() >= wait {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Writes `events` to the sink, counting them.
fn flush(sink: &mut Sink, events: Vec<AuditEvent>, shared: &Shared) -> std::io::Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    // `lost` records stand for events that never arrived; they are counted as drops.
    let lost = events.iter().filter(|e| e.action == "lost").count() as u64;
    let n = match sink {
        Sink::One(store) => store.write_batch(&events, counts(shared))?,
        Sink::Many(m) => m.write(events),
    };
    shared
        .written
        .fetch_add(n.saturating_sub(lost), Ordering::AcqRel);
    Ok(())
}

fn write_loop(rx: mpsc::Receiver<Item>, mut sink: Sink, shared: &Shared) -> std::io::Result<()> {
    let delay = test_delay();
    let mut batch: Vec<Item> = Vec::with_capacity(BATCH);
    let mut after_stop = 0usize;
    let result = loop {
        let stopping = shared.stop.load(Ordering::Acquire);
        let first = match rx.recv_timeout(Duration::from_millis(25)) {
            Ok(ev) => ev,
            Err(RecvTimeoutError::Timeout) if stopping => break Ok(()),
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => break Ok(()),
        };
        batch.clear();
        batch.push(first);
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(ev) => batch.push(ev),
                Err(_) => break,
            }
        }
        if let Some(d) = delay {
            thread::sleep(d * batch.len() as u32);
        }
        let n = batch.len();
        let mut events = Vec::with_capacity(n);
        let mut failed = None;
        for item in batch.drain(..) {
            match item {
                Item::Event(ev) => events.push(ev),
                Item::Close { session, done } => {
                    // Events queued before the close belong to the session: write them first.
                    if let Err(e) = flush(&mut sink, std::mem::take(&mut events), shared) {
                        failed = Some(e);
                        break;
                    }
                    let totals = match &mut sink {
                        Sink::Many(m) => m.close(&session),
                        Sink::One(_) => SessionTotals::default(),
                    };
                    let _ = done.send(totals);
                }
            }
        }
        if failed.is_none()
            && let Err(e) = flush(&mut sink, events, shared)
        {
            failed = Some(e);
        }
        if let Some(e) = failed {
            break Err(e);
        }
        if stopping {
            // Drain what was queued when we were told to stop, but a process that keeps
            // flooding after its session ended must not keep the launcher alive.
            after_stop += n;
            if after_stop > QUEUE_CAPACITY {
                break Ok(());
            }
        }
    };
    if let Sink::One(store) = &mut sink {
        store.finish(counts(shared));
    }
    if let Sink::Many(m) = &mut sink {
        let sessions: Vec<String> = m.open.keys().cloned().collect();
        for s in sessions {
            m.close(&s);
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::{FromRawFd, OwnedFd};

    fn info() -> SessionInfo {
        SessionInfo {
            session: "s".into(),
            agent: "a".into(),
            model: "m".into(),
            host: "h".into(),
        }
    }

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_blocking() {
        let dir = std::env::temp_dir().join(format!("guard-broker-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("b.sock");
        let listener = UnixListener::bind(&sock).unwrap();
        // The audit log is a pipe nobody reads yet: the writer stalls, the queue fills.
        let mut fds = [0; 2];
        // SAFETY: pipe fills two valid fds that we then own.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) };
        let broker = Broker::start_with_capacity(listener, wr, info(), 4).unwrap();

        const SENT: u64 = 400;
        let target = "x".repeat(2000);
        let mut client = UnixStream::connect(&sock).unwrap();
        let mut buf = vec![0u8; 8192];
        for i in 0..SENT {
            let ev = wire::Event {
                session: "",
                pid: i as u32,
                ppid: 1,
                exe: "/bin/x",
                runtime: "native",
                cwd: "/",
                action: "read",
                target: &target,
                decision: "allow",
                enforce_decision: "allow",
                rule: "",
                reason: "",
                tags: "",
                dropped_before: 0,
                approval_id: 0,
                approval_answer: "",
                approval_who: "",
                approval_latency_ms: 0,
            };
            let n = wire::encode_frame(&Message::Event(ev), &mut buf).unwrap();
            client.write_all(&buf[..n]).unwrap();
        }
        drop(client);
        thread::sleep(Duration::from_millis(300));
        let drain = thread::spawn(move || {
            let mut f = File::from(rd);
            let mut all = Vec::new();
            let _ = f.read_to_end(&mut all);
            all
        });
        let summary = broker.finish(Duration::from_millis(100), Duration::from_secs(2));
        assert!(summary.dropped > 0, "{summary:?}");
        assert_eq!(
            summary.events + summary.dropped,
            SENT,
            "every event is either written or counted"
        );
        // The writer has exited and closed its end, so the drain sees EOF.
        let written = drain.join().unwrap();
        assert_eq!(
            written.iter().filter(|&&b| b == b'\n').count() as u64,
            summary.events
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
