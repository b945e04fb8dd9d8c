//! TLS plaintext hooks: every HTTP request a process writes into an OpenSSL connection is
//! reassembled (`guard_http`) and evaluated as an `http` action before any byte of it reaches
//! the server.
//!
//! # Two ways in
//! - libssl linked dynamically (CPython, curl, git, psql): the exported `SSL_write`,
//!   `SSL_write_ex`, `SSL_read`, `SSL_read_ex`, `SSL_ctrl` (SNI) and `SSL_free` here interpose.
//!   The real functions come from `dlsym(RTLD_NEXT)`, and when that is NULL (CPython's `_ssl`
//!   loads libssl `RTLD_LOCAL`, or libssl was `dlopen`ed late) from
//!   `dlopen("libssl.so.3" | "libssl.so.1.1", RTLD_NOLOAD)` + `dlsym`, resolved at the first
//!   call (a hook can only be reached once some libssl is loaded).
//! - OpenSSL linked statically into the executable (node official builds): at load time
//!   `SSL_write`, `SSL_write_ex`, `SSL_read` and `SSL_free` are looked up with
//!   `dlsym(RTLD_DEFAULT)`; when the address lies inside the main executable (not in a
//!   libssl.so: a `node_shared_openssl` build resolves into libssl and interposition covers it),
//!   the entry is patched in place (`trampoline.rs`) in the constructor, before threads exist.
//!   Nothing in JavaScript can undo it. A prologue that cannot be relocated is refused and
//!   recorded (`tls-unhooked`).
//!
//! Where TLS is not visible (static TLS elsewhere, Go's `crypto/tls`, rustls, GnuTLS), the first
//! connect to port 443 of a process with no hooked TLS stack records one `tls-unseen` audit event.
//!
//! # Holding strategy
//! Per `SSL*` connection (a fixed table of slots keyed by the pointer, each behind a spin flag;
//! allocation only on this TLS path): each write's new bytes are fed to the reassembler.
//! - A request is reported (complete, too large, or malformed) → evaluated on every host name
//!   known for the connection (the `Host`/`:authority` header, the SNI, the name the peer
//!   address came from via `getaddrinfo`); the strictest decision wins.
//! - Ask: this thread blocks inside the write (the request is still held back, nothing of it
//!   sent) until a human answers through the broker (`eval::resolve_ask`); approved → as allow,
//!   denied or timed out → as deny. The connection's slot stays locked meanwhile, which only
//!   matters to another thread writing to the same `SSL*` (OpenSSL forbids that anyway).
//! - Deny: the write fails — `SSL_write` returns -1, `SSL_write_ex` returns 0, `errno =
//!   EACCES`. OpenSSL is told too (`refuse_in_openssl`): a system error (`EACCES`) is queued,
//!   so `SSL_get_error` says `SSL_ERROR_SYSCALL` whatever the connection's last I/O state was,
//!   and a zero-length `BIO_write_ex` resets the output BIO (curl keeps "would block" from its
//!   last read in its own BIO and would otherwise retry the refused write forever). The held
//!   bytes are dropped and the connection is dead: every later write on it fails the same way,
//!   so no byte of the refused request (or one behind it) ever reaches the server. The
//!   connection is also ended (`end_connection`), because some clients do not act on a failed
//!   write (node's HTTP/2 session would wait for the refused stream's response forever): a
//!   socket of its own (`SSL_get_fd`) is shut down; behind a memory BIO (node) a TLS
//!   close_notify is queued, which the runtime sends and the server answers by closing.
//! - Redact (an http rule with `decision = "redact"`): the secrets guard-secrets' built-in
//!   detectors find in the body are overwritten in the held bytes, in place, by
//!   `REDACTED_BY_POLICY` cut or padded with `*` to each secret's length
//!   (`redact_same_length`), HTTP/1 and HTTP/2 alike: the body keeps its length, so
//!   `Content-Length`, chunk sizes, DATA frame lengths, flow-control windows and HPACK state
//!   all stay valid and the connection carries on. The parser says where each body byte sat
//!   in the stream (`guard_http::Request::body_spans`). Fail-closed where the body is not all
//!   held (over the capture limit): refused.
//! - Judging on the head alone: when no http rule that matches a request's method, host (any
//!   of its names) and path reads bodies (`body_contains`, `body_regex`, `graphql`) or
//!   redacts (`Ruleset::http_body_matters`), the body cannot change the decision, so the
//!   request is judged as soon as its head is complete and its body streams through unheld.
//! - `Expect: 100-continue`: a head judged on its own (above) is released at once, so the
//!   server answers `100 Continue` as usual. When the body is needed, the head is held like any
//!   incomplete request: the server never sees it and sends no `100 Continue`; the client
//!   sends the body after its own expect timeout (curl: 1 s) and the decision is taken on head
//!   and body. Fail-closed rule: a head whose body matters is never released on its own. A
//!   client that waits for the `100` without a timeout stalls until it gives up, and its
//!   request is never sent (measured cost for curl: the 1 s expect timeout, once per such
//!   request).
//! - A request still incomplete after this write: the bytes are held (copied) and the write is
//!   reported done in full (as OpenSSL reports a write it has buffered), so the caller sends the
//!   rest. With `SSL_MODE_ENABLE_PARTIAL_WRITE` that is still correct: a full count is a legal
//!   partial-write result.
//! - Nothing pending: the held bytes and this write go to the real function, in order. When
//!   nothing is held the caller's buffer goes straight through and its result (including
//!   `WANT_WRITE` and partial counts) is returned unchanged; the bytes the real call did not
//!   take will come back in the caller's retry, and are not fed to the parser twice
//!   (`fed_ahead`). Held bytes are flushed in a loop that waits with `poll` on
//!   `WANT_READ`/`WANT_WRITE` (non-blocking sockets, e.g. curl), always retrying with the same
//!   buffer as OpenSSL requires.
//!
//! Bodies larger than the reassembler's capture limit (1 MiB) are judged on their head and
//! prefix, then streamed. HTTP/2 flow control bounds what a client sends before the server's
//! `WINDOW_UPDATE` (64 KiB unless the server raised its windows), and the server grants no
//! more for bytes it never received: a held request whose body has used all the credit the
//! server gave (followed from its SETTINGS and WINDOW_UPDATE frames on the read side;
//! `h2_flow_exhausted`) can never complete, so it is refused at once, as a deny, with an event
//! saying why, instead of hanging the program until its own timeout. Such uploads (over the
//! server's window, under a rule that reads bodies) therefore fail: keep body-reading rules
//! scoped to the paths that need them.
//!
//! `SSL_write_early_data` (TLS 1.3 0-RTT) goes through the same gate as `SSL_write_ex`.
//!
//! # Response statuses
//! Reads (`SSL_read`, `SSL_read_ex`, node's patched `SSL_read`) are followed for the status of
//! each request that has an audit event, recorded as an `http-response` event with the same
//! target (`guard_http::Responses`): HTTP/1 status lines at the start of a read, paired in
//! order; HTTP/2 `:status` paired by stream (every server frame is followed once any connection
//! of the process speaks HTTP/2, to keep the HPACK state). Reads of HTTP/1-only processes that
//! do not start with a status line return before any lookup.
//!
//! Not done: `SSL_sendfile` (kernel TLS only; a file's bytes never pass through user space);
//! an `SSL*` from a second, different libssl in the same process (the first libssl that
//! resolves wins).

use crate::eval::{self, Outcome};
use crate::raw::{self, Buf};
use crate::state::{self, Inside};
use crate::trampoline;
use core::cell::UnsafeCell;
use core::ffi::{CStr, c_int, c_long, c_void};
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicUsize, Ordering};
use guard_http::{
    BodyMode, Connection, Event, FeedResult, Limits, Protocol, Request, Responses, Status,
};
use guard_proto::{Action, Decision};
use std::collections::VecDeque;

type WriteFn = unsafe extern "C" fn(*mut c_void, *const c_void, c_int) -> c_int;
type WriteExFn = unsafe extern "C" fn(*mut c_void, *const c_void, usize, *mut usize) -> c_int;
type ReadFn = unsafe extern "C" fn(*mut c_void, *mut c_void, c_int) -> c_int;
type ReadExFn = unsafe extern "C" fn(*mut c_void, *mut c_void, usize, *mut usize) -> c_int;
type CtrlFn = unsafe extern "C" fn(*mut c_void, c_int, c_long, *mut c_void) -> c_long;
type FreeFn = unsafe extern "C" fn(*mut c_void);
type GetFdFn = unsafe extern "C" fn(*const c_void) -> c_int;
type GetErrFn = unsafe extern "C" fn(*const c_void, c_int) -> c_int;

const SSL_CTRL_SET_TLSEXT_HOSTNAME: c_int = 55;
const SSL_ERROR_WANT_READ: c_int = 2;
const SSL_ERROR_WANT_WRITE: c_int = 3;

/// One OpenSSL function: interposed (resolved from the next object or the loaded libssl) or
/// patched (the trampoline).
struct Sym {
    p: AtomicPtr<c_void>,
    name: &'static CStr,
}

impl Sym {
    const fn new(name: &'static CStr) -> Self {
        Sym {
            p: AtomicPtr::new(core::ptr::null_mut()),
            name,
        }
    }

    fn addr(&self) -> *mut c_void {
        let p = self.p.load(Ordering::Acquire);
        if !p.is_null() {
            return p;
        }
        let p = resolve_dynamic(self.name);
        if !p.is_null() {
            self.p.store(p, Ordering::Release);
        }
        p
    }
}

macro_rules! get {
    ($set:expr, $field:ident, $ty:ty) => {{
        let p = $set.$field.addr();
        if p.is_null() {
            None
        } else {
            // SAFETY: the symbol has the C signature `$ty` (OpenSSL's public API).
            Some(unsafe { core::mem::transmute::<*mut c_void, $ty>(p) })
        }
    }};
}

/// The OpenSSL functions one way in uses as "the real one".
struct SslApi {
    write: Sym,
    write_ex: Sym,
    write_early: Sym,
    read: Sym,
    read_ex: Sym,
    ctrl: Sym,
    free: Sym,
    get_fd: Sym,
    get_error: Sym,
    get_wbio: Sym,
    bio_write: Sym,
    shutdown: Sym,
    err_new: Sym,
    err_set_error: Sym,
}

impl SslApi {
    const fn new() -> Self {
        SslApi {
            write: Sym::new(c"SSL_write"),
            write_ex: Sym::new(c"SSL_write_ex"),
            write_early: Sym::new(c"SSL_write_early_data"),
            read: Sym::new(c"SSL_read"),
            read_ex: Sym::new(c"SSL_read_ex"),
            ctrl: Sym::new(c"SSL_ctrl"),
            free: Sym::new(c"SSL_free"),
            get_fd: Sym::new(c"SSL_get_fd"),
            get_error: Sym::new(c"SSL_get_error"),
            get_wbio: Sym::new(c"SSL_get_wbio"),
            bio_write: Sym::new(c"BIO_write_ex"),
            shutdown: Sym::new(c"SSL_shutdown"),
            err_new: Sym::new(c"ERR_new"),
            err_set_error: Sym::new(c"ERR_set_error"),
        }
    }
}

/// The dynamic libssl (interposition).
static DYN: SslApi = SslApi::new();
/// The executable's own OpenSSL (patched); its fields are set once in the constructor.
static EXE: SslApi = SslApi::new();
/// Set when the executable's `SSL_write` was patched.
static EXE_HOOKED: AtomicBool = AtomicBool::new(false);

fn resolve_dynamic(name: &CStr) -> *mut c_void {
    // SAFETY: dlsym/dlopen with valid C strings; RTLD_NOLOAD never loads anything.
    unsafe {
        let p = libc::dlsym(libc::RTLD_NEXT, name.as_ptr());
        if !p.is_null() {
            return p;
        }
        for so in [c"libssl.so.3", c"libssl.so.1.1", c"libssl.so"] {
            let h = libc::dlopen(so.as_ptr(), libc::RTLD_NOLOAD | libc::RTLD_LAZY);
            if h.is_null() {
                continue;
            }
            let p = libc::dlsym(h, name.as_ptr());
            if !p.is_null() && !is_ours(p) {
                return p;
            }
        }
    }
    core::ptr::null_mut()
}

/// Whether `p` lies in a loaded segment of this library. Address ranges from
/// `dl_iterate_phdr`, not `dladdr`: `_dl_addr` walks the whole dynamic symbol table of the
/// object, which for node is ~1M instructions per call.
fn is_ours(p: *const c_void) -> bool {
    in_object_of(is_ours as *const c_void as usize, p as usize)
}

/// Whether `p` lies in a `PT_LOAD` segment of the object that also contains `anchor`
/// (`anchor == 0`: the main executable, the loader's first object).
fn in_object_of(anchor: usize, p: usize) -> bool {
    unsafe extern "C" fn cb(
        info: *mut libc::dl_phdr_info,
        _size: usize,
        data: *mut c_void,
    ) -> c_int {
        // SAFETY: the loader's record of one object; `data` is our (anchor, addr, found).
        let info = unsafe { &*info };
        let (anchor, addr, found) = unsafe { &mut *(data as *mut (usize, usize, bool)) };
        let mut has_anchor = *anchor == 0;
        let mut has_addr = false;
        for i in 0..info.dlpi_phnum as usize {
            // SAFETY: dlpi_phnum program headers follow dlpi_phdr.
            let ph = unsafe { &*info.dlpi_phdr.add(i) };
            if ph.p_type == libc::PT_LOAD {
                let lo = info.dlpi_addr as usize + ph.p_vaddr as usize;
                let hi = lo + ph.p_memsz as usize;
                has_anchor |= (lo..hi).contains(anchor);
                has_addr |= (lo..hi).contains(addr);
            }
        }
        if has_anchor {
            *found = has_addr;
            return 1; // the object is found: stop
        }
        0
    }
    let mut d = (anchor, p, false);
    // SAFETY: the callback only reads the loader's records.
    unsafe { libc::dl_iterate_phdr(Some(cb), &mut d as *mut _ as *mut c_void) };
    d.2
}

// ---------------------------------------------------------------------------------------------
// Per-connection state.

const SLOTS: usize = 1024;

struct Conn {
    http: Connection,
    held: Vec<u8>,
    res: FeedResult,
    sni: Vec<u8>,
    /// Bytes at the head of the next write the parser has already seen (a retried or partially
    /// taken write).
    fed_ahead: usize,
    /// A request was refused: the connection never carries another byte.
    dead: bool,
    /// Requests sent whose response status has not been read yet, oldest first (HTTP/1: all
    /// of them, to pair statuses in order; HTTP/2: those with an audit event, by stream).
    awaiting: VecDeque<Awaited>,
    /// Follows the server's side for statuses, created at the first read that needs it.
    resp: Option<Responses>,
    statuses: Vec<Status>,
    /// The held bytes and this write with the secrets of redacted bodies overwritten: held or
    /// sent instead of them.
    replace: Option<Vec<u8>>,
    /// (st_dev, st_ino) of the socket under the connection when last seen: a different one
    /// means the `SSL*` was freed and its address reused without our `SSL_free` seeing it
    /// (node's `SSL_free` cannot be patched: its prologue branches).
    sock: (u64, u64),
    /// The name the peer address came from (getaddrinfo), looked up at the first request.
    peer: Vec<u8>,
    peer_known: bool,
}

impl Conn {
    fn new() -> Conn {
        Conn {
            http: Connection::new(),
            held: Vec::new(),
            res: FeedResult::default(),
            sni: Vec::new(),
            fed_ahead: 0,
            dead: false,
            awaiting: VecDeque::new(),
            resp: None,
            statuses: Vec::new(),
            replace: None,
            sock: (0, 0),
            peer: Vec::new(),
            peer_known: false,
        }
    }
}

/// A request waiting for its response status.
struct Awaited {
    stream: u32,
    /// The target of the request's audit event (None: it had none, nothing to follow up).
    event: Option<Vec<u8>>,
}

/// Most requests remembered per connection for statuses (a client that never reads its
/// responses must not grow this).
const AWAITED_MAX: usize = 64;

/// Set once any connection of this process speaks HTTP/2: from then on every read is looked
/// at (an HTTP/2 server's frames must all be followed); before, only reads that start with an
/// HTTP/1 status line are, so HTTP/1-only processes pay nothing on other reads.
static ANY_H2: AtomicBool = AtomicBool::new(false);

struct Slot {
    key: AtomicUsize,
    busy: AtomicBool,
    conn: UnsafeCell<Option<Box<Conn>>>,
}

// SAFETY: `conn` is only touched by the thread holding `busy`.
unsafe impl Sync for Slot {}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY_SLOT: Slot = Slot {
    key: AtomicUsize::new(0),
    busy: AtomicBool::new(false),
    conn: UnsafeCell::new(None),
};

static TABLE: [Slot; SLOTS] = [EMPTY_SLOT; SLOTS];

/// Exclusive access to one connection's state until dropped.
struct Locked {
    slot: &'static Slot,
}

impl Locked {
    fn conn(&mut self) -> &mut Conn {
        // SAFETY: we hold `busy`; the Option is always Some while a key is set (see `lock`).
        let c = unsafe { &mut *self.slot.conn.get() };
        c.get_or_insert_with(|| Box::new(Conn::new()))
    }
}

impl Drop for Locked {
    fn drop(&mut self) {
        self.slot.busy.store(false, Ordering::Release);
    }
}

fn spin_lock(s: &'static Slot) -> Locked {
    let mut n = 0u32;
    while s
        .busy
        .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        n = n.wrapping_add(1);
        if n.is_multiple_of(64) {
            // SAFETY: no preconditions.
            unsafe { libc::sched_yield() };
        } else {
            core::hint::spin_loop();
        }
    }
    Locked { slot: s }
}

fn start(ssl: *mut c_void) -> usize {
    let k = ssl as usize;
    (k >> 4).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 7
}

/// The state of `ssl`, created on first use. `None` when the table is full.
fn lock(ssl: *mut c_void, create: bool) -> Option<Locked> {
    let key = ssl as usize;
    if key == 0 {
        return None;
    }
    let h = start(ssl);
    // First the existing entry, anywhere in the probe sequence: a slot freed before it (an
    // `SSL_free`d neighbour) must not make a second, fresh entry for a live connection (its
    // held bytes or its refusal would be lost). A miss scans the whole table (1024 loads),
    // once per new connection.
    for i in 0..SLOTS {
        let s = TABLE.get((h + i) % SLOTS)?;
        if s.key.load(Ordering::Acquire) == key {
            let l = spin_lock(s);
            if s.key.load(Ordering::Acquire) == key {
                return Some(l);
            }
        }
    }
    if !create {
        return None;
    }
    for i in 0..SLOTS {
        let s = TABLE.get((h + i) % SLOTS)?;
        if s.key.load(Ordering::Acquire) != 0 {
            continue;
        }
        let mut l = spin_lock(s);
        if s.key
            .compare_exchange(0, key, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            // SAFETY: locked.
            unsafe { *s.conn.get() = None };
            let _ = l.conn();
            return Some(l);
        }
    }
    None
}

/// Forgets `ssl` (SSL_free): the pointer may be reused for a new connection.
fn forget(ssl: *mut c_void) {
    if let Some(l) = lock(ssl, false) {
        // SAFETY: locked.
        let old = unsafe { (*l.slot.conn.get()).take() };
        l.slot.key.store(0, Ordering::Release);
        drop(l);
        drop(old);
    }
}

// ---------------------------------------------------------------------------------------------
// Evaluation.

/// The name the peer address of `ssl`'s socket came from (getaddrinfo table).
fn peer_name(api: &SslApi, ssl: *mut c_void, out: &mut [u8; crate::dns::NAME_MAX]) -> usize {
    let Some(get_fd) = get!(api, get_fd, GetFdFn) else {
        return 0;
    };
    // SAFETY: a live SSL*, as the caller passed it to SSL_write.
    let fd = unsafe { get_fd(ssl) };
    if fd < 0 {
        return 0;
    }
    let mut ss: libc::sockaddr_storage = unsafe { core::mem::zeroed() };
    let mut len = core::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: valid out pointers.
    if unsafe { libc::getpeername(fd, &mut ss as *mut _ as *mut libc::sockaddr, &mut len) } != 0 {
        return 0;
    }
    let Some((ip, _)) =
        (unsafe { super::net::inet_addr(&ss as *const _ as *const libc::sockaddr, len) })
    else {
        return 0;
    };
    crate::dns::lookup(ip, out).unwrap_or(0)
}

/// Identity of the socket under `ssl` ((0, 0) when unknown: a BIO that is not a socket).
fn socket_ident(api: &SslApi, ssl: *mut c_void) -> (u64, u64) {
    let Some(get_fd) = get!(api, get_fd, GetFdFn) else {
        return (0, 0);
    };
    // SAFETY: a live SSL*.
    let fd = unsafe { get_fd(ssl) };
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    if fd < 0 || !raw::fstat(fd, &mut st) {
        return (0, 0);
    }
    (st.st_dev, st.st_ino)
}

fn strip_port(h: &[u8]) -> &[u8] {
    if h.first() == Some(&b'[') {
        return h;
    }
    match h.iter().rposition(|c| *c == b':') {
        Some(i) if h.iter().filter(|c| **c == b':').count() == 1 => h.get(..i).unwrap_or(h),
        _ => h,
    }
}

/// Largest body prefix quoted in an audit target.
const TARGET_BODY: usize = 400;

fn describe(req: &Request, host: &[u8], out: &mut Buf<1024>) {
    describe_with_body(req, host, req.body(), out)
}

/// As `describe`, quoting `body` (a redacted one) instead of the request's.
fn describe_with_body(req: &Request, host: &[u8], body: &[u8], out: &mut Buf<1024>) {
    out.push_trunc(req.method().as_bytes());
    out.push_trunc(b" https://");
    out.push_trunc(host);
    if let Some(p) = req.port().filter(|p| *p != 443) {
        out.push_trunc(b":");
        raw::push_num(out, p as u64);
    }
    out.push_trunc(req.path().as_bytes());
    if !body.is_empty() {
        out.push_trunc(b" ");
        let b = body.get(..body.len().min(TARGET_BODY)).unwrap_or(&[]);
        for &c in b {
            out.push_trunc(&[if c.is_ascii_graphic() || c == b' ' {
                c
            } else {
                b' '
            }]);
        }
    }
}

/// What judging one request decided.
struct Judged {
    /// It must not be sent.
    blocks: bool,
    /// The target of the audit event recorded for it, if one was.
    event: Option<Vec<u8>>,
    /// A `redact` decision, not yet recorded (the event must quote the redacted body): the
    /// outcome and the host it matched on.
    redact: Option<(Outcome, Vec<u8>)>,
}

/// Evaluates one request on every known name; records it.
fn judge(req: &Request, sni: &[u8], peer: &[u8]) -> Judged {
    let header = req.host().map(|h| strip_port(h.as_bytes())).unwrap_or(b"");
    let names: [&[u8]; 3] = [header, sni, peer];
    // The header names the request; SNI and the connect-time name cross-check it.
    let primary = names.iter().copied().find(|n| !n.is_empty()).unwrap_or(b"");
    let mut best: Option<(Outcome, usize)> = None;
    // One context for all names (it costs a getcwd); each distinct name evaluated once.
    eval::with_ctx(state::environ_ptr(), |ctx| {
        for i in 0..names.len() {
            let n = names.get(i).copied().unwrap_or(b"");
            if n.is_empty() && !(i == 0 && sni.is_empty() && peer.is_empty()) {
                continue;
            }
            if names.get(..i).is_some_and(|seen| seen.contains(&n)) {
                continue;
            }
            let o = eval::evaluate(
                &Action::Http {
                    method: req.method().as_bytes(),
                    host: n,
                    path: req.path().as_bytes(),
                    body: req.body(),
                },
                ctx,
            );
            best = Some(match best {
                None => (o, i),
                Some(b) => eval::stricter(b, (o, i)),
            });
        }
    });
    let Some((mut o, i)) = best else {
        return Judged {
            blocks: false,
            event: None,
            redact: None,
        };
    };
    let mut event = None;
    if o.enforce != Decision::Allow {
        let host = names
            .get(i)
            .copied()
            .filter(|n| !n.is_empty())
            .unwrap_or(primary);
        let mut t = Buf::<1024>::new();
        describe(req, host, &mut t);
        let why = if host != primary {
            "matched on a cross-checked host name (SNI or connect-time name)"
        } else {
            ""
        };
        if o.enforce == Decision::Redact && o.effective == Decision::Redact {
            return Judged {
                blocks: false,
                event: None,
                redact: Some((o, host.to_vec())),
            };
        }
        // An ask holds this write (and so the whole request, still held back) until a human
        // answers through the broker; the same path file and exec asks take.
        eval::resolve_ask(&mut o, "http", t.as_bytes());
        eval::emit("http", t.as_bytes(), &o, false, why);
        event = Some(t.as_bytes().to_vec());
    }
    Judged {
        blocks: o.blocks(),
        event,
        redact: None,
    }
}

/// The detectors outbound bodies are scrubbed with (guard-secrets' built-in set, compiled on
/// the first `redact` decision for an http rule).
fn http_detectors() -> &'static guard_secrets::Detectors {
    static D: std::sync::OnceLock<guard_secrets::Detectors> = std::sync::OnceLock::new();
    D.get_or_init(guard_secrets::Detectors::builtin)
}

/// What a secret in an outbound body is overwritten with: this placeholder, cut to the
/// secret's length or padded with [`REDACT_PAD`], so the body keeps its length.
const PLACEHOLDER: &[u8] = b"REDACTED_BY_POLICY";
/// The padding after [`PLACEHOLDER`]: not in the base64 or base64url alphabets, not special
/// in JSON strings, form encoding or multipart bodies, so a padded placeholder neither breaks
/// the body's syntax nor looks like part of a token.
const REDACT_PAD: u8 = b'*';

/// `body` with the span of every finding overwritten in place (see [`PLACEHOLDER`]): the
/// same length, so the request's framing (Content-Length, chunk sizes, HTTP/2 DATA frame
/// lengths and flow-control windows) stays valid and only body bytes change.
fn redact_same_length(body: &[u8], findings: &[guard_secrets::Finding<'_>]) -> Vec<u8> {
    let mut out = body.to_vec();
    for f in findings {
        let Some(span) = out.get_mut(f.start.min(f.end)..f.end.min(body.len())) else {
            continue;
        };
        for (k, b) in span.iter_mut().enumerate() {
            *b = PLACEHOLDER.get(k).copied().unwrap_or(REDACT_PAD);
        }
    }
    out
}

/// A `redact` decision on a request: overwrites the secrets the detectors find in its body
/// in the bytes that will be sent (`raw`: the held bytes and this write, created on the first
/// redaction of a write, stream offset of its first byte = `fed - len`), and records the event
/// (quoting the redacted body). Returns the event's target. `Err`: refused, recorded as a deny,
/// because the body cannot be rewritten whole: a body over the capture limit (not all of it
/// is held), one whose bytes are not all among those held, or one split into more pieces
/// than the parser records (`guard_http::Request::body_spans`).
fn redact_request(
    req: &Request,
    host: &[u8],
    o: &Outcome,
    raw: &mut Option<Vec<u8>>,
    held: &[u8],
    bytes: &[u8],
    fed: u64,
) -> Result<Vec<u8>, ()> {
    let det = http_detectors();
    let body = req.body();
    let findings = det.scan(body);
    let mut t = Buf::<1024>::new();
    if findings.is_empty() {
        describe(req, host, &mut t);
        eval::emit(
            "http",
            t.as_bytes(),
            o,
            false,
            "no secret found in the body",
        );
        return Ok(t.as_bytes().to_vec());
    }
    let clean = redact_same_length(body, &findings);
    describe_with_body(req, host, &clean, &mut t);
    // Recorded without the rule: an event with a rule carries the rule's reason, and this one
    // must say why a redaction became a refusal.
    let refuse = |why: &str| {
        let d = Outcome::from_verdict(Decision::Deny, None, false, false);
        eval::emit("http", t.as_bytes(), &d, false, why);
    };
    if !req.body_complete() {
        refuse(
            "redact rule: secrets in a body over the capture limit (1 MiB; not all of it is held): refused",
        );
        return Err(());
    }
    let raw = raw.get_or_insert_with(|| {
        let mut v = Vec::with_capacity(held.len() + bytes.len());
        v.extend_from_slice(held);
        v.extend_from_slice(bytes);
        v
    });
    let start = fed.saturating_sub(raw.len() as u64);
    if !guard_http::patch_body(raw, start, req, &clean) {
        refuse(
            "redact rule: secrets in a body that cannot be rewritten in place (not all of it held, or split into over 4096 pieces): refused",
        );
        return Err(());
    }
    let mut why = Buf::<256>::new();
    why.push_trunc(b"redacted ");
    raw::push_num(&mut why, findings.len() as u64);
    why.push_trunc(b" secrets in the body:");
    for (i, f) in findings.iter().enumerate() {
        if findings
            .get(..i)
            .is_some_and(|p| p.iter().any(|g| g.detector == f.detector))
        {
            continue;
        }
        why.push_trunc(b" ");
        why.push_trunc(f.detector.as_bytes());
        why.push_trunc(b" x");
        let n = findings.iter().filter(|g| g.detector == f.detector).count();
        raw::push_num(&mut why, n as u64);
    }
    eval::emit(
        "http",
        t.as_bytes(),
        o,
        false,
        raw::utf8_prefix(why.as_bytes()),
    );
    Ok(t.as_bytes().to_vec())
}

/// Whether `req`'s body must be captured before it is judged: some http rule matching its
/// head under any of the connection's names reads or redacts bodies. Otherwise the request is
/// judged on its head and its body streams through unheld (an `Expect: 100-continue` head
/// reaches the server at once, an upload is not held for its first 1 MiB).
fn body_mode(req: &Request, sni: &[u8], peer: &[u8]) -> BodyMode {
    // Degraded (no ruleset): every http request is refused on its head anyway.
    let Some(rs) = state::ruleset() else {
        return BodyMode::HeadOnly;
    };
    let header = req.host().map(|h| strip_port(h.as_bytes())).unwrap_or(b"");
    let (m, p) = (req.method().as_bytes(), req.path().as_bytes());
    if [header, sni, peer]
        .iter()
        .any(|n| rs.http_body_matters(m, n, p))
    {
        BodyMode::Capture
    } else {
        BodyMode::HeadOnly
    }
}

fn note(action_target: &[u8], why: &str, d: Decision) {
    let o = Outcome::from_verdict(d, None, false, false);
    eval::emit("tls", action_target, &o, false, why);
}

/// Feeds `bytes` and judges what they complete. `Err(())`: refuse the write.
fn inspect(api: &SslApi, ssl: *mut c_void, c: &mut Conn, bytes: &[u8]) -> Result<(), ()> {
    if !c.peer_known {
        // The peer does not change for the life of the connection: one getpeername.
        let mut peer = [0u8; crate::dns::NAME_MAX];
        let pn = peer_name(api, ssl, &mut peer);
        c.peer = peer.get(..pn).unwrap_or(&[]).to_vec();
        c.peer_known = true;
    }
    c.res.events.clear();
    let (sni, peer) = (&c.sni[..], &c.peer[..]);
    c.http
        .feed_into_with(bytes, &mut c.res, &mut |r| body_mode(r, sni, peer));
    if c.res.events.is_empty() {
        return refuse_if_stalled(c);
    }
    if !ANY_H2.load(Ordering::Relaxed) && c.http.protocol() == Some(Protocol::Http2) {
        ANY_H2.store(true, Ordering::Relaxed);
    }
    let peer = &c.peer[..];
    for e in c.res.events.iter() {
        match e {
            Event::Complete(r) | Event::TooLarge(r) | Event::Head(r) => {
                let mut j = judge(r, &c.sni, peer);
                if j.blocks {
                    return Err(());
                }
                if let Some((o, host)) = j.redact.take() {
                    let fed = c.http.fed();
                    j.event = Some(redact_request(
                        r,
                        &host,
                        &o,
                        &mut c.replace,
                        &c.held,
                        bytes,
                        fed,
                    )?);
                }
                // HTTP/1 statuses pair with requests in order, so every request takes a
                // place; HTTP/2 pairs by stream, so only those with an event do.
                if r.stream_id() == 0 || j.event.is_some() {
                    if c.awaiting.len() >= AWAITED_MAX {
                        c.awaiting.pop_front();
                    }
                    c.awaiting.push_back(Awaited {
                        stream: r.stream_id(),
                        event: j.event,
                    });
                }
            }
            Event::Malformed(m) => {
                let mut w = Buf::<256>::new();
                use core::fmt::Write;
                let _ = write!(w, "unparseable HTTP in a TLS connection ({m}); refused");
                note(
                    conn_target(c).as_bytes(),
                    raw::utf8_prefix(w.as_bytes()),
                    Decision::Deny,
                );
                return Err(());
            }
        }
    }
    refuse_if_stalled(c)
}

/// The target of a connection-level event: the SNI, else the peer.
fn conn_target(c: &Conn) -> Buf<1024> {
    let mut t = Buf::<1024>::new();
    t.push_trunc(if c.sni.is_empty() { &c.peer } else { &c.sni });
    t
}

/// `Err(())` (the write is refused, like a deny) when a request still held back can grow no
/// more: the client cannot send the rest of an HTTP/2 body until the server grants more window,
/// which it will not do for bytes it never received, so holding on would hang the program. The
/// request cannot be judged whole, so it is refused (fail closed), with an event saying why.
fn refuse_if_stalled(c: &Conn) -> Result<(), ()> {
    if !c.res.request_started {
        return Ok(());
    }
    let Some(stream) = h2_flow_exhausted(c) else {
        return Ok(());
    };
    let mut why = Buf::<256>::new();
    why.push_trunc(
        b"HTTP/2 request body held for inspection filled the server's flow-control window (stream ",
    );
    raw::push_num(&mut why, u64::from(stream));
    why.push_trunc(b"); cannot be judged whole: refused");
    note(
        conn_target(c).as_bytes(),
        raw::utf8_prefix(why.as_bytes()),
        Decision::Deny,
    );
    Err(())
}

enum Flow {
    /// Refused: fail the write with EACCES.
    Refuse,
    /// Held: report `n` bytes written.
    Held,
    /// Pass the caller's buffer, skipping nothing; `fed` bytes were fed.
    Pass,
    /// Flush held bytes + this write, then report success.
    Flush,
}

/// Decides one write. `None`: pass through untouched (not ready, re-entered).
fn on_write(api: &SslApi, ssl: *mut c_void, bytes: &[u8], l: &mut Locked) -> Flow {
    // Only the patched OpenSSL needs this (one fstat per write): the interposed one tells us
    // about `SSL_free`.
    let ident = if core::ptr::eq(api, &EXE) {
        socket_ident(api, ssl)
    } else {
        (0, 0)
    };
    let c = l.conn();
    if c.sock != ident {
        if c.sock != (0, 0) {
            // A new connection behind a reused SSL* address: start afresh (the SNI, set
            // before the handshake of the new connection, is kept).
            let sni = core::mem::take(&mut c.sni);
            *c = Conn::new();
            c.sni = sni;
        }
        c.sock = ident;
    }
    if c.dead {
        return Flow::Refuse;
    }
    let skip = c.fed_ahead.min(bytes.len());
    c.fed_ahead = 0;
    let new = bytes.get(skip..).unwrap_or(&[]);
    if inspect(api, ssl, c, new).is_err() {
        c.dead = true;
        c.held = Vec::new();
        end_connection(api, ssl);
        return Flow::Refuse;
    }
    if let Some(r) = c.replace.take() {
        // A redacted request: what goes out (or stays held, when another request is still
        // incomplete) is the held bytes and this write with the secrets overwritten.
        c.held = r;
        return if c.res.request_started {
            Flow::Held
        } else {
            Flow::Flush
        };
    }
    if c.res.request_started {
        c.held.extend_from_slice(new);
        return Flow::Held;
    }
    if c.held.is_empty() {
        Flow::Pass
    } else {
        c.held.extend_from_slice(new);
        Flow::Flush
    }
}

/// HTTP/2: a stream whose held request has used all the flow-control credit the server gave
/// (on the stream or the connection), so that no more of its body can come. `None` for HTTP/1,
/// mid-frame, or while credit remains. The server's credit is what the frames read so far
/// say (`Responses::h2_send_window`; before any is read, the protocol's 65,535-byte defaults,
/// a floor).
fn h2_flow_exhausted(c: &Conn) -> Option<u32> {
    let (conn_sent, held) = c.http.h2_held_flow()?;
    held.into_iter().find_map(|(stream, sent)| {
        let (conn_window, stream_window) = c
            .resp
            .as_ref()
            .and_then(|r| r.h2_send_window(stream))
            .unwrap_or((65_535, 65_535));
        (conn_sent >= conn_window || sent >= stream_window).then_some(stream)
    })
}

/// Ends a refused connection. A failed write alone is not always noticed: node's HTTP/2 session
/// ignores it and its stream would wait for a response forever. A socket under the connection
/// is shut down (both directions; the descriptor stays the program's), so every runtime sees
/// the connection end and the server sees it closed with no byte of the refused request.
fn end_connection(api: &SslApi, ssl: *mut c_void) {
    let Some(get_fd) = get!(api, get_fd, GetFdFn) else {
        return;
    };
    // SAFETY: a live SSL*, as the caller passed it to SSL_write.
    let fd = unsafe { get_fd(ssl) };
    if fd >= 0 {
        // SAFETY: shutdown on the program's socket; harmless on a non-socket (ENOTSOCK).
        unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
        return;
    }
    // No socket in reach (a memory BIO: node): queue a TLS close_notify instead. The runtime
    // sends it with its next flush; the server closes the connection, and the client sees it
    // end. An alert carries no byte of the refused request.
    type ShutdownFn = unsafe extern "C" fn(*mut c_void) -> c_int;
    if let Some(sd) = get!(api, shutdown, ShutdownFn) {
        // SAFETY: a live SSL*; SSL_shutdown only queues the alert on a memory BIO.
        unsafe { sd(ssl) };
    }
}

/// Writes all of `c.held` with the real `SSL_write`, waiting on WANT_READ/WANT_WRITE.
fn flush(api: &SslApi, ssl: *mut c_void, c: &mut Conn) -> bool {
    let Some(write) = get!(api, write, WriteFn) else {
        return false;
    };
    let mut off = 0usize;
    while off < c.held.len() {
        let chunk = c.held.get(off..).unwrap_or(&[]);
        let n = chunk.len().min(i32::MAX as usize) as c_int;
        // SAFETY: live SSL*, `chunk` readable for n bytes (the same buffer on every retry).
        let r = unsafe { write(ssl, chunk.as_ptr() as *const c_void, n) };
        if r > 0 {
            off += r as usize;
            continue;
        }
        let err = match get!(api, get_error, GetErrFn) {
            // SAFETY: live SSL*.
            Some(f) => unsafe { f(ssl, r) },
            None => 0,
        };
        let ev = match err {
            SSL_ERROR_WANT_WRITE => libc::POLLOUT,
            SSL_ERROR_WANT_READ => libc::POLLIN,
            _ => return false,
        };
        let fd = match get!(api, get_fd, GetFdFn) {
            // SAFETY: live SSL*.
            Some(f) => unsafe { f(ssl) },
            None => -1,
        };
        if fd < 0 {
            return false;
        }
        let mut p = libc::pollfd {
            fd,
            events: ev,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut p, 1, 1000) };
    }
    c.held = Vec::new();
    true
}

/// The common write path. `real` performs the pass-through write of the caller's buffer and
/// returns (OpenSSL return value, bytes written).
fn gated_write(
    api: &SslApi,
    ssl: *mut c_void,
    buf: *const c_void,
    len: usize,
    nested_write: bool,
    real: impl FnOnce() -> (c_int, usize),
) -> Result<(c_int, usize), ()> {
    if buf.is_null() || len == 0 {
        return Ok(real());
    }
    let Some(g) = Inside::enter() else {
        return Ok(real());
    };
    // SAFETY: the caller passed `len` readable bytes.
    let bytes = unsafe { core::slice::from_raw_parts(buf as *const u8, len) };
    let Some(mut l) = lock(ssl, true) else {
        note(
            b"",
            "TLS connection table full; write refused",
            Decision::Deny,
        );
        return Err(());
    };
    match on_write(api, ssl, bytes, &mut l) {
        Flow::Refuse => Err(()),
        Flow::Held => Ok((1, len)),
        Flow::Pass => {
            // `SSL_write_early_data` writes through the exported `SSL_write_ex`, which is this
            // hook again: keep the guard, so that inner call passes straight through instead
            // of waiting on the connection this call holds (and judging the bytes twice).
            let g = if nested_write {
                Some(g)
            } else {
                drop(g);
                None
            };
            let (r, n) = real();
            drop(g);
            // What the real call did not take comes back in the retry, already parsed.
            l.conn().fed_ahead = if r > 0 { len.saturating_sub(n) } else { len };
            Ok((r, n))
        }
        Flow::Flush => {
            drop(g);
            let ok = flush(api, ssl, l.conn());
            if ok {
                Ok((1, len))
            } else {
                l.conn().dead = true;
                Err(())
            }
        }
    }
}

fn write_common(api: &SslApi, ssl: *mut c_void, buf: *const c_void, num: c_int) -> c_int {
    let Some(real) = get!(api, write, WriteFn) else {
        raw::set_errno(libc::ENOSYS);
        return -1;
    };
    if num <= 0 {
        // SAFETY: forwarding the caller's arguments.
        return unsafe { real(ssl, buf, num) };
    }
    let r = gated_write(api, ssl, buf, num as usize, false, || {
        // SAFETY: forwarding the caller's arguments.
        let r = unsafe { real(ssl, buf, num) };
        (r, if r > 0 { r as usize } else { 0 })
    });
    match r {
        Ok((1, n)) if n == num as usize => num,
        Ok((r, _)) => r,
        Err(()) => {
            // Without a queued error, `SSL_get_error` falls back on the connection's last I/O
            // state: after a read that would have blocked it says WANT_READ, and a client
            // (curl over HTTP/2) retries the refused write forever. The system error makes it
            // SSL_ERROR_SYSCALL with errno EACCES.
            refuse_in_openssl(api, ssl);
            raw::set_errno(libc::EACCES);
            -1
        }
    }
}

fn write_ex_common(
    api: &SslApi,
    ssl: *mut c_void,
    buf: *const c_void,
    num: usize,
    written: *mut usize,
) -> c_int {
    let Some(real) = get!(api, write_ex, WriteExFn) else {
        raw::set_errno(libc::ENOSYS);
        return 0;
    };
    size_t_write(api, real, false, ssl, buf, num, written)
}

/// `SSL_write_ex` and `SSL_write_early_data` (same signature, same results: 1 or 0).
fn size_t_write(
    api: &SslApi,
    real: WriteExFn,
    nested: bool,
    ssl: *mut c_void,
    buf: *const c_void,
    num: usize,
    written: *mut usize,
) -> c_int {
    let r = gated_write(api, ssl, buf, num, nested, || {
        let mut w = 0usize;
        // SAFETY: forwarding the caller's arguments.
        let r = unsafe { real(ssl, buf, num, &mut w) };
        (r, w)
    });
    match r {
        Ok((r, n)) => {
            if !written.is_null() {
                // SAFETY: the caller's out pointer.
                unsafe { *written = if r > 0 { n } else { 0 } };
            }
            r
        }
        Err(()) => {
            if !written.is_null() {
                unsafe { *written = 0 };
            }
            // `SSL_write_ex` returns 0 for every failure, and callers that read errno only do so
            // for a -1 (CPython reports a bare 0 as an unexpected EOF): queue a system-library
            // error, so `SSL_get_error` says SSL_ERROR_SYSCALL and the error text is EACCES's.
            refuse_in_openssl(api, ssl);
            raw::set_errno(libc::EACCES);
            0
        }
    }
}

type ErrNewFn = unsafe extern "C" fn();
type ErrSetErrorFn = unsafe extern "C" fn(c_int, c_int, *const core::ffi::c_char, ...);

type GetBioFn = unsafe extern "C" fn(*const c_void) -> *mut c_void;
type BioWriteExFn = unsafe extern "C" fn(*mut c_void, *const c_void, usize, *mut usize) -> c_int;

/// What a refused write tells the caller's OpenSSL: `ERR_raise(ERR_LIB_SYS, EACCES)`, and an
/// empty write through the connection's output BIO, which clears the retry state the last real I/O
/// left there. Without that, a client that keeps its own I/O state in a custom BIO (curl ≥ 7.87
/// remembers "would block" from the last read) takes the refusal for "try again" and retries
/// the refused write forever.
fn refuse_in_openssl(api: &SslApi, ssl: *mut c_void) {
    push_sys_error(api);
    // Only for a BIO that is not a plain descriptor (curl's, node's memory BIO): a socket BIO
    // keeps no state the queued error does not override, and an empty write(2) on a socket the
    // peer has reset raises SIGPIPE, which would kill a program that does not ignore it.
    if let Some(get_fd) = get!(api, get_fd, GetFdFn) {
        // SAFETY: a live SSL*.
        if unsafe { get_fd(ssl) } >= 0 {
            return;
        }
    }
    if let (Some(wbio), Some(write)) = (
        get!(api, get_wbio, GetBioFn),
        get!(api, bio_write, BioWriteExFn),
    ) {
        // `BIO_write_ex`, not `BIO_write`: the latter returns early for a zero length without
        // calling the BIO's method, which is what must run to reset its state.
        // SAFETY: a live SSL*; a zero-length write writes nothing (a socket BIO sends 0 bytes,
        // a memory BIO appends nothing).
        unsafe {
            let b = wbio(ssl);
            let mut n = 0usize;
            if !b.is_null() {
                write(b, c"".as_ptr() as *const c_void, 0, &mut n);
            }
        }
    }
}

/// `ERR_raise(ERR_LIB_SYS, EACCES)` in the caller's OpenSSL (3.x; absent in 1.1: skipped).
fn push_sys_error(api: &SslApi) {
    const ERR_LIB_SYS: c_int = 2;
    let (Some(new), Some(set)) = (
        get!(api, err_new, ErrNewFn),
        get!(api, err_set_error, ErrSetErrorFn),
    ) else {
        return;
    };
    // SAFETY: OpenSSL's ERR_new/ERR_set_error; a NULL format means no extra data.
    unsafe {
        new();
        set(ERR_LIB_SYS, libc::EACCES, core::ptr::null());
    }
}

/// After a read: the statuses of responses to requests that have an audit event are recorded
/// as a follow-up event (`http-response`, same target as the request's event, reason
/// `status NNN`). HTTP/1: a status line at the start of a read, paired with the oldest request
/// sent; HTTP/2: the server's frames are followed and `:status` is paired by stream.
fn after_read(ssl: *mut c_void, buf: *const u8, n: usize) {
    if n == 0 || buf.is_null() {
        return;
    }
    // SAFETY: the real read filled n bytes.
    let b = unsafe { core::slice::from_raw_parts(buf, n) };
    // Checked before any lookup: most reads are neither.
    if !b.starts_with(b"HTTP/1.") && !ANY_H2.load(Ordering::Relaxed) {
        return;
    }
    let Some(_g) = Inside::enter() else { return };
    let Some(mut l) = lock(ssl, false) else {
        return;
    };
    let c = l.conn();
    let h2 = match c.http.protocol() {
        Some(Protocol::Http2) => true,
        Some(Protocol::Http1) => false,
        _ => return,
    };
    if !h2 && c.awaiting.is_empty() {
        return;
    }
    let resp = c.resp.get_or_insert_with(|| {
        if h2 {
            Responses::http2(Limits::default())
        } else {
            Responses::http1()
        }
    });
    c.statuses.clear();
    resp.feed(b, &mut c.statuses);
    for st in c.statuses.iter() {
        let pos = if h2 {
            c.awaiting.iter().position(|a| a.stream == st.stream_id)
        } else if c.awaiting.is_empty() {
            None
        } else {
            Some(0)
        };
        let Some(a) = pos.and_then(|p| c.awaiting.remove(p)) else {
            continue;
        };
        if let Some(target) = a.event {
            let mut why = Buf::<32>::new();
            why.push_trunc(b"status ");
            raw::push_num(&mut why, u64::from(st.code));
            let o = Outcome::from_verdict(Decision::Audit, None, false, false);
            eval::emit(
                "http-response",
                &target,
                &o,
                false,
                raw::utf8_prefix(why.as_bytes()),
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Interposed exports (dynamic libssl).

#[unsafe(no_mangle)]
pub unsafe extern "C" fn SSL_write(ssl: *mut c_void, buf: *const c_void, num: c_int) -> c_int {
    write_common(&DYN, ssl, buf, num)
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn SSL_write_ex(
    ssl: *mut c_void,
    buf: *const c_void,
    num: usize,
    written: *mut usize,
) -> c_int {
    write_ex_common(&DYN, ssl, buf, num, written)
}

/// 0-RTT data is a request like any other (and replayable by an attacker on the path): the
/// same gate as `SSL_write_ex`. Bytes held from an early-data write are flushed, when their
/// request is complete and allowed, with the real `SSL_write`: they then go out after the
/// handshake instead of as early data, which every server must accept.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SSL_write_early_data(
    ssl: *mut c_void,
    buf: *const c_void,
    num: usize,
    written: *mut usize,
) -> c_int {
    let Some(real) = get!(DYN, write_early, WriteExFn) else {
        raw::set_errno(libc::ENOSYS);
        return 0;
    };
    size_t_write(&DYN, real, true, ssl, buf, num, written)
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn SSL_read(ssl: *mut c_void, buf: *mut c_void, num: c_int) -> c_int {
    let Some(real) = get!(DYN, read, ReadFn) else {
        raw::set_errno(libc::ENOSYS);
        return -1;
    };
    // SAFETY: forwarding.
    let r = unsafe { real(ssl, buf, num) };
    if r > 0 {
        after_read(ssl, buf as *const u8, r as usize);
    }
    r
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn SSL_read_ex(
    ssl: *mut c_void,
    buf: *mut c_void,
    num: usize,
    read: *mut usize,
) -> c_int {
    let Some(real) = get!(DYN, read_ex, ReadExFn) else {
        raw::set_errno(libc::ENOSYS);
        return 0;
    };
    // SAFETY: forwarding.
    let r = unsafe { real(ssl, buf, num, read) };
    if r > 0 && !read.is_null() {
        after_read(ssl, buf as *const u8, unsafe { *read });
    }
    r
}

fn remember_sni(ssl: *mut c_void, name: *const c_void) {
    if name.is_null() {
        return;
    }
    let Some(_g) = Inside::enter() else { return };
    // SAFETY: SSL_set_tlsext_host_name takes a C string.
    let n = unsafe { raw::cstr(name as *const core::ffi::c_char) };
    if let Some(mut l) = lock(ssl, true) {
        let c = l.conn();
        c.sni.clear();
        c.sni
            .extend(n.iter().take(255).map(|b| b.to_ascii_lowercase()));
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn SSL_ctrl(
    ssl: *mut c_void,
    cmd: c_int,
    larg: c_long,
    parg: *mut c_void,
) -> c_long {
    let Some(real) = get!(DYN, ctrl, CtrlFn) else {
        return 0;
    };
    if cmd == SSL_CTRL_SET_TLSEXT_HOSTNAME {
        remember_sni(ssl, parg);
    }
    // SAFETY: forwarding.
    unsafe { real(ssl, cmd, larg, parg) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn SSL_free(ssl: *mut c_void) {
    if !ssl.is_null() && state::ensure_ready() {
        forget(ssl);
    }
    if let Some(real) = get!(DYN, free, FreeFn) {
        // SAFETY: forwarding.
        unsafe { real(ssl) }
    }
}

// ---------------------------------------------------------------------------------------------
// Patched entries (OpenSSL inside the executable).

unsafe extern "C" fn exe_ssl_write(ssl: *mut c_void, buf: *const c_void, num: c_int) -> c_int {
    write_common(&EXE, ssl, buf, num)
}

unsafe extern "C" fn exe_ssl_write_ex(
    ssl: *mut c_void,
    buf: *const c_void,
    num: usize,
    written: *mut usize,
) -> c_int {
    write_ex_common(&EXE, ssl, buf, num, written)
}

unsafe extern "C" fn exe_ssl_read(ssl: *mut c_void, buf: *mut c_void, num: c_int) -> c_int {
    let Some(real) = get!(EXE, read, ReadFn) else {
        return -1;
    };
    // SAFETY: forwarding.
    let r = unsafe { real(ssl, buf, num) };
    if r > 0 {
        after_read(ssl, buf as *const u8, r as usize);
    }
    r
}

unsafe extern "C" fn exe_ssl_free(ssl: *mut c_void) {
    if !ssl.is_null() {
        forget(ssl);
    }
    if let Some(real) = get!(EXE, free, FreeFn) {
        // SAFETY: forwarding.
        unsafe { real(ssl) }
    }
}

/// Whether `p` lies in a loaded segment of the main executable.
fn in_main_exe(p: *const c_void) -> bool {
    in_object_of(0, p as usize)
}

/// What the patching at load time found, for the audit (written once by the constructor).
static EXE_REFUSED: AtomicPtr<u8> = AtomicPtr::new(core::ptr::null_mut());

fn exe_symbol(name: &CStr) -> *mut u8 {
    // SAFETY: dlsym with a valid C string.
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    // In the executable means not in this library: no `is_ours` needed.
    if p.is_null() || !in_main_exe(p) {
        return core::ptr::null_mut();
    }
    p as *mut u8
}

/// Patches the executable's own OpenSSL entries. Runs from the constructor, single-threaded.
pub fn patch_executable() {
    if !trampoline::supported() {
        // No patcher on this architecture (aarch64: designed, not enabled): the executable's
        // own OpenSSL stays unseen, and the first connect to port 443 says so (`tls-unseen`).
        return;
    }
    let w = exe_symbol(c"SSL_write");
    if w.is_null() {
        return; // no OpenSSL in the executable (or a shared one: interposition covers it)
    }
    // Helpers that are only called, never patched, straight from the executable.
    for s in [
        &EXE.get_fd,
        &EXE.get_error,
        &EXE.get_wbio,
        &EXE.bio_write,
        &EXE.shutdown,
        &EXE.ctrl,
        &EXE.err_new,
        &EXE.err_set_error,
    ] {
        s.p.store(exe_symbol(s.name) as *mut c_void, Ordering::Release);
    }
    let hooks: [(&CStr, &Sym, *const c_void); 4] = [
        (c"SSL_write", &EXE.write, exe_ssl_write as *const c_void),
        (
            c"SSL_write_ex",
            &EXE.write_ex,
            exe_ssl_write_ex as *const c_void,
        ),
        (c"SSL_read", &EXE.read, exe_ssl_read as *const c_void),
        (c"SSL_free", &EXE.free, exe_ssl_free as *const c_void),
    ];
    let mut wrote = false;
    for (name, sym, hook) in hooks {
        let t = exe_symbol(name);
        if t.is_null() {
            continue;
        }
        // SAFETY: an exported function entry in the executable's text, constructor time.
        match unsafe { trampoline::patch(t, hook) } {
            Ok(tramp) => {
                sym.p.store(tramp as *mut c_void, Ordering::Release);
                if name == c"SSL_write" {
                    wrote = true;
                }
            }
            Err(e) => {
                // Without the write hooks nothing is gated: record it (once the broker is up).
                if name != c"SSL_read" && name != c"SSL_free" {
                    EXE_REFUSED.store(e.as_str().as_ptr() as *mut u8, Ordering::Release);
                    REFUSED_LEN.store(e.as_str().len(), Ordering::Release);
                }
            }
        }
    }
    EXE_HOOKED.store(
        wrote && EXE_REFUSED.load(Ordering::Acquire).is_null(),
        Ordering::Release,
    );
}

static REFUSED_LEN: AtomicUsize = AtomicUsize::new(0);

/// The `.init_array` entry (see `patch_executable`).
pub extern "C" fn tls_constructor() {
    // Independent of the main constructor's order (it may not have run yet, and initialising
    // from here would read an `environ` libc has not set): patching needs no configuration.
    let was = state::bypassed();
    state::set_bypass(true);
    patch_executable();
    state::set_bypass(was);
}

#[cfg(not(test))]
#[used]
#[unsafe(link_section = ".init_array")]
static TLS_CONSTRUCTOR: extern "C" fn() = tls_constructor;

/// Resolves what can be resolved up front (the dynamic libssl if already loaded).
pub fn resolve_all() {}

static UNSEEN_PID: AtomicU32 = AtomicU32::new(0);

/// Called on every inet connect: the first connect to port 443 of a process whose TLS this
/// library cannot see records one audit event saying so.
pub fn note_connect(port: u16) {
    if port != 443 {
        return;
    }
    let pid = raw::getpid() as u32;
    if UNSEEN_PID.load(Ordering::Relaxed) == pid {
        return;
    }
    UNSEEN_PID.store(pid, Ordering::Relaxed);
    let refused = EXE_REFUSED.load(Ordering::Acquire);
    if EXE_HOOKED.load(Ordering::Acquire) {
        return;
    }
    if !refused.is_null() {
        // SAFETY: a &'static str stored by patch_executable.
        let why = unsafe {
            core::str::from_utf8_unchecked(core::slice::from_raw_parts(
                refused,
                REFUSED_LEN.load(Ordering::Acquire),
            ))
        };
        let mut w = Buf::<512>::new();
        w.push_trunc(b"tls-unhooked: the executable's OpenSSL could not be patched: ");
        w.push_trunc(why.as_bytes());
        note(
            state::cfg().exe.as_bytes(),
            raw::utf8_prefix(w.as_bytes()),
            Decision::Audit,
        );
        return;
    }
    if libssl_loaded() && state::cfg().runtime != "go" {
        return;
    }
    note(
        state::cfg().exe.as_bytes(),
        "tls-unseen: this process connects to port 443 without a TLS stack libguard can see (no libssl loaded, no patched OpenSSL; e.g. Go crypto/tls, rustls, GnuTLS, static TLS): its HTTPS requests are not gated",
        Decision::Audit,
    );
}

fn libssl_loaded() -> bool {
    [c"libssl.so.3", c"libssl.so.1.1"].iter().any(|so| {
        // SAFETY: RTLD_NOLOAD only looks.
        let h = unsafe { libc::dlopen(so.as_ptr(), libc::RTLD_NOLOAD | libc::RTLD_LAZY) };
        !h.is_null()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_length_redaction_cuts_or_pads_the_placeholder() {
        let body = b"a=ghp_R8x2Lq9ZtV4mN7pK3sW6yB1cD5fG0hJ2aQ8e&b=short1234&c=1";
        let f = |start, end| guard_secrets::Finding {
            detector: "t",
            start,
            end,
            decision: Decision::Redact,
        };
        let out = redact_same_length(body, &[f(2, 42), f(45, 54), f(50, 999)]);
        assert_eq!(out.len(), body.len());
        assert_eq!(
            &out[..],
            &b"a=REDACTED_BY_POLICY**********************&b=REDACREDACTED"[..]
        );
    }
}
