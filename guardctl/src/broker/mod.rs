//! The session broker: receives audit events from every guarded process of one session over a
//! private Unix socket and appends them, as JSON Lines, to the session's audit log.
//!
//! Threads: one acceptor, one reader per connection (guarded processes connect lazily, one
//! stream each, and connections are few), and one writer fed by a bounded queue, so a slow disk
//! never blocks a reader for long and a flood cannot grow memory: when the queue is full the
//! event is counted as dropped. Input is never trusted: a malformed, oversized or wrong-version
//! frame closes that connection only; connections from other users are refused.

pub mod approvals;
pub mod event;
pub mod store;

use event::{AuditEvent, SessionInfo};
use guard_proto::wire::{self, FrameError, Message};
use std::fs::File;
use std::io::Read;
use std::os::unix::io::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};
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
}

pub struct Broker {
    shared: Arc<Shared>,
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
    pub fn start_with_db(
        listener: UnixListener,
        log: File,
        db: &Path,
        info: SessionInfo,
    ) -> std::io::Result<Broker> {
        let store = Store::open(log, Some(db), &info.session)?;
        Broker::start_store(listener, store, info, QUEUE_CAPACITY)
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
        });
        let (tx, rx) = mpsc::sync_channel::<AuditEvent>(capacity.max(1));
        let w_shared = Arc::clone(&shared);
        let writer = thread::Builder::new()
            .name("guard-writer".into())
            .spawn(move || write_loop(rx, store, &w_shared))?;
        let a_shared = Arc::clone(&shared);
        let watch = listener.try_clone().ok();
        thread::Builder::new()
            .name("guard-accept".into())
            .spawn(move || accept_loop(listener, tx, a_shared))?;
        Ok(Broker {
            shared,
            writer: Some(writer),
            listener: watch,
        })
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
        }
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

fn accept_loop(listener: UnixListener, tx: SyncSender<AuditEvent>, shared: Arc<Shared>) {
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

fn read_loop(mut stream: UnixStream, tx: &SyncSender<AuditEvent>, shared: &Shared) {
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = match stream.read(&mut chunk) {
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
                        handle(msg, tx, shared);
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

// Other message kinds may be added to the wire protocol; this broker only stores events.
#[allow(unreachable_patterns, clippy::single_match)]
fn handle(msg: Message<'_>, tx: &SyncSender<AuditEvent>, shared: &Shared) {
    match msg {
        Message::Event(ev) => {
            if ev.dropped_before > 0 {
                shared
                    .client_dropped
                    .fetch_add(ev.dropped_before, Ordering::Relaxed);
            }
            let out = AuditEvent::from_wire(&ev, &shared.info, SystemTime::now());
            match tx.try_send(out) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
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

fn write_loop(
    rx: mpsc::Receiver<AuditEvent>,
    mut store: Store,
    shared: &Shared,
) -> std::io::Result<()> {
    let delay = test_delay();
    let mut batch: Vec<AuditEvent> = Vec::with_capacity(BATCH);
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
        match store.write_batch(&batch, counts(shared)) {
            Ok(n) => {
                shared.written.fetch_add(n, Ordering::AcqRel);
            }
            Err(e) => break Err(e),
        }
        if stopping {
            // Drain what was queued when we were told to stop, but a process that keeps
            // flooding after its session ended must not keep the launcher alive.
            after_stop += batch.len();
            if after_stop > QUEUE_CAPACITY {
                break Ok(());
            }
        }
    };
    store.finish(counts(shared));
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
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
