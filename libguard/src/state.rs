//! Per-process state: the initialisation state machine, the configuration snapshot taken from the
//! environment at load time, the mapped ruleset, and the per-thread bypass flag.
//!
//! All of it is written exactly once, by the thread that wins the UNINIT→INITIALIZING transition,
//! and only read after READY is published (release/acquire). A fork child inherits it unchanged
//! (the ruleset mapping and the configuration stay valid); the broker connection is the only
//! per-process state that is re-created, and it carries its owner's pid (see `broker`).

use crate::raw::{self, Buf};
use core::cell::UnsafeCell;
use core::ffi::{c_char, c_void};
use core::sync::atomic::{AtomicU8, Ordering};
use guard_proto::{LoadError, Ruleset};

const UNINIT: u8 = 0;
const INITIALIZING: u8 = 1;
const READY: u8 = 2;

static STATE: AtomicU8 = AtomicU8::new(UNINIT);

// The flag itself lives in the C shim (`csrc/shim.c`) as initial-exec TLS: Rust's
// `thread_local!` in a shared object costs a `__tls_get_addr` call per access.
unsafe extern "C" {
    fn libguard_bypassed() -> core::ffi::c_int;
    fn libguard_set_bypass(on: core::ffi::c_int);
}

/// Whether hooks must pass straight through on this thread right now: set while this thread
/// runs library code, so that anything it calls passes straight through the hooks.
#[inline]
pub fn bypassed() -> bool {
    // SAFETY: reads this thread's flag; no arguments.
    unsafe { libguard_bypassed() != 0 }
}

#[inline]
pub fn set_bypass(v: bool) {
    // SAFETY: writes this thread's flag.
    unsafe { libguard_set_bypass(core::ffi::c_int::from(v)) }
}

/// Marks this thread as inside the library until dropped. Holds no resources: dropping it only
/// clears the flag, and exec paths clear the flag explicitly before calling the real exec.
pub struct Inside(());

impl Inside {
    /// `None` when the hook must pass through (library not ready, or already inside it).
    pub fn enter() -> Option<Inside> {
        if !ensure_ready() || bypassed() {
            return None;
        }
        set_bypass(true);
        Some(Inside(()))
    }
}

impl Drop for Inside {
    fn drop(&mut self) {
        set_bypass(false);
    }
}

/// The GUARD_* variables re-injected into children.
pub const GUARD_VARS: [&[u8]; 9] = [
    b"GUARD_SOCKET",
    b"GUARD_RULESET",
    b"GUARD_SESSION",
    b"GUARD_AGENT",
    b"GUARD_MODEL",
    b"GUARD_WORKSPACE",
    b"GUARD_PROTECT",
    b"GUARD_ASK_SOCKET",
    // Where events that cannot be sent are spilled (`broker.rs`); read from `inject` there.
    b"GUARD_SPILL_DIR",
];

pub const MAX_INJECT: usize = GUARD_VARS.len() + 2;

/// Configuration captured at load time (later `unsetenv` by the program does not change it).
pub struct Config {
    pub socket: Buf<110>,
    /// `GUARD_ASK_SOCKET`: where asks go when a `guardctl serve` broker answers them (else
    /// `socket`).
    pub ask_socket: Buf<110>,
    pub session: Buf<256>,
    pub agent: Buf<256>,
    pub ruleset_path: Buf<4096>,
    /// `GUARD_PROTECT`: `:`-separated paths guarded processes may never modify (`selfprotect`).
    pub protect: Buf<8192>,
    /// Absolute path of this library.
    pub self_path: Buf<4096>,
    /// `LD_PRELOAD=...` as it should be in a child that has none: the launch value when it
    /// names this library, else just this library.
    pub preload_entry: Buf<8192>,
    /// `NAME=value\0` strings forced into every child environment.
    pub inject: Buf<16384>,
    pub inject_off: [usize; MAX_INJECT],
    pub inject_count: usize,
    pub exe: Buf<4096>,
    pub runtime: &'static str,
    /// Why the ruleset is unusable (degraded mode), empty when it loaded.
    pub ruleset_error: Buf<512>,
}

struct Global {
    cfg: UnsafeCell<Config>,
    ruleset: UnsafeCell<Option<Ruleset<'static>>>,
}

// SAFETY: written only by the initialising thread before READY is published with Release;
// readers first observe READY with Acquire, and nothing writes afterwards.
unsafe impl Sync for Global {}

static G: Global = Global {
    cfg: UnsafeCell::new(Config {
        socket: Buf::new(),
        ask_socket: Buf::new(),
        session: Buf::new(),
        agent: Buf::new(),
        ruleset_path: Buf::new(),
        protect: Buf::new(),
        self_path: Buf::new(),
        preload_entry: Buf::new(),
        inject: Buf::new(),
        inject_off: [0; MAX_INJECT],
        inject_count: 0,
        exe: Buf::new(),
        runtime: "native",
        ruleset_error: Buf::new(),
    }),
    ruleset: UnsafeCell::new(None),
};

/// The configuration; only meaningful once `ensure_ready()` returned true.
pub fn cfg() -> &'static Config {
    // SAFETY: see `Global`.
    unsafe { &*G.cfg.get() }
}

/// The loaded ruleset, or `None` in degraded mode. A reference: `Ruleset` is a few hundred
/// bytes of section slices, and copying it out showed up as two `memcpy`s per open.
pub fn ruleset() -> Option<&'static Ruleset<'static>> {
    // SAFETY: see `Global`.
    unsafe { (*G.ruleset.get()).as_ref() }
}

/// True once the library is initialised; initialises on first call. Returns false (pass
/// through) while another thread, or this one re-entrantly, is initialising.
#[inline]
pub fn ensure_ready() -> bool {
    if cfg!(test) {
        // Unit-test binaries link these hooks into the test harness itself: keep them inert.
        return false;
    }
    match STATE.load(Ordering::Acquire) {
        READY => true,
        INITIALIZING => false,
        _ => {
            if STATE
                .compare_exchange(UNINIT, INITIALIZING, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                set_bypass(true);
                // SAFETY: we are the only writer (won the CAS).
                unsafe { init(environ_ptr()) };
                set_bypass(false);
                STATE.store(READY, Ordering::Release);
                true
            } else {
                STATE.load(Ordering::Acquire) == READY
            }
        }
    }
}

unsafe extern "C" {
    static mut environ: *const *const c_char;
}

pub fn environ_ptr() -> *const *const c_char {
    // SAFETY: reading a pointer-sized global that libc maintains.
    unsafe { environ }
}

/// The `.init_array` constructor. glibc passes (argc, argv, envp); with `-z initfirst` it can
/// run before libc's own initialiser has set `environ`, so the envp argument is used.
#[cfg(not(test))]
extern "C" fn constructor(_argc: i32, _argv: *const *const c_char, envp: *const *const c_char) {
    if STATE
        .compare_exchange(UNINIT, INITIALIZING, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
    {
        set_bypass(true);
        let env = if envp.is_null() { environ_ptr() } else { envp };
        // SAFETY: sole writer.
        unsafe { init(env) };
        set_bypass(false);
        STATE.store(READY, Ordering::Release);
        // The kernel layer's start-up step (Go processes; see `seccomp.rs`). Only here, in the
        // constructor: a lazy initialisation may happen in a vfork child.
        set_bypass(true);
        crate::seccomp::at_start();
        set_bypass(false);
    }
}

#[cfg(not(test))]
#[used]
#[unsafe(link_section = ".init_array")]
static CONSTRUCTOR: extern "C" fn(i32, *const *const c_char, *const *const c_char) = constructor;

/// Value of `name` in a C environment block.
pub unsafe fn env_lookup<'a>(envp: *const *const c_char, name: &[u8]) -> Option<&'a [u8]> {
    if envp.is_null() {
        return None;
    }
    let mut i = 0usize;
    loop {
        // SAFETY: envp is a NULL-terminated array of C strings.
        let p = unsafe { *envp.add(i) };
        if p.is_null() {
            return None;
        }
        let e = unsafe { raw::cstr(p) };
        if e.len() > name.len() && e.starts_with(name) && e.get(name.len()) == Some(&b'=') {
            return e.get(name.len() + 1..);
        }
        i += 1;
    }
}

/// Whether `list` (a `:`/space separated LD_PRELOAD value) names the library at `path`.
pub fn preload_has(list: &[u8], path: &[u8]) -> bool {
    !path.is_empty() && list.split(|c| *c == b':' || *c == b' ').any(|e| e == path)
}

unsafe fn init(envp: *const *const c_char) {
    // SAFETY: sole writer during INITIALIZING.
    let c = unsafe { &mut *G.cfg.get() };
    let get = |n: &[u8]| unsafe { env_lookup(envp, n) };
    c.socket.push_trunc(get(b"GUARD_SOCKET").unwrap_or(b""));
    c.ask_socket
        .push_trunc(get(b"GUARD_ASK_SOCKET").unwrap_or(b""));
    c.session.push_trunc(get(b"GUARD_SESSION").unwrap_or(b""));
    c.agent.push_trunc(get(b"GUARD_AGENT").unwrap_or(b""));
    c.ruleset_path
        .push_trunc(get(b"GUARD_RULESET").unwrap_or(b""));
    c.protect.push_trunc(get(b"GUARD_PROTECT").unwrap_or(b""));

    self_path(&mut c.self_path);
    let launch_preload = get(b"LD_PRELOAD").unwrap_or(b"");
    c.preload_entry.push(b"LD_PRELOAD=");
    // Our own path unknown (dladdr failed): the launch value is the best we have.
    let keep_launch = preload_has(launch_preload, c.self_path.as_bytes())
        || (c.self_path.is_empty() && !launch_preload.is_empty());
    if !(keep_launch && c.preload_entry.push(launch_preload)) {
        c.preload_entry.truncate(11);
        c.preload_entry.push(c.self_path.as_bytes());
    }
    // Stored NUL-terminated: children get a pointer straight into this buffer.
    c.preload_entry.push(b"\0");

    for name in GUARD_VARS {
        if let Some(v) = get(name) {
            let start = c.inject.len();
            if c.inject.push(name)
                && c.inject.push(b"=")
                && c.inject.push(v)
                && c.inject.push(b"\0")
            {
                if let Some(slot) = c.inject_off.get_mut(c.inject_count) {
                    *slot = start;
                    c.inject_count += 1;
                }
            } else {
                c.inject.truncate(start);
            }
        }
    }
    let start = c.inject.len();
    if c.inject.push(b"UV_USE_IO_URING=0\0")
        && let Some(slot) = c.inject_off.get_mut(c.inject_count)
    {
        *slot = start;
        c.inject_count += 1;
    }

    let mut exe = [0u8; 4096];
    if let Some(n) = raw::readlinkat(libc::AT_FDCWD, c"/proc/self/exe".as_ptr(), &mut exe) {
        c.exe.push_trunc(exe.get(..n).unwrap_or(&[]));
    }
    let argv0 = b"";
    c.runtime = crate::runtime::detect(c.exe.as_bytes(), argv0);

    // SAFETY: sole writer.
    unsafe { *G.ruleset.get() = map_ruleset(c) };
    crate::hooks::resolve_all();
}

/// This library's own absolute path, from the loader's record of it.
fn self_path(out: &mut Buf<4096>) {
    let mut info: libc::Dl_info = unsafe { core::mem::zeroed() };
    // SAFETY: dladdr only reads the address and fills `info`.
    let ok = unsafe { libc::dladdr(self_path as *const c_void, &mut info) } != 0;
    if !ok || info.dli_fname.is_null() {
        return;
    }
    let name = unsafe { raw::cstr(info.dli_fname) };
    if name.first() == Some(&b'/') {
        crate::path::clean_into(name, out);
    } else {
        let mut cwd = Buf::<4096>::new();
        if crate::path::getcwd(&mut cwd) {
            out.push(cwd.as_bytes());
            crate::path::push_components(out, name);
        }
    }
}

fn map_ruleset(c: &mut Config) -> Option<Ruleset<'static>> {
    use core::fmt::Write;
    if c.ruleset_path.is_empty() {
        let _ = c.ruleset_error.write_str("GUARD_RULESET is not set");
        return None;
    }
    let fd = raw::openat(
        libc::AT_FDCWD,
        c.ruleset_path.c_ptr(),
        libc::O_RDONLY | libc::O_CLOEXEC,
        0,
    );
    if fd < 0 {
        let _ = write!(c.ruleset_error, "cannot open (errno {})", -fd);
        return None;
    }
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    let ok = raw::fstat(fd, &mut st);
    let len = st.st_size as usize;
    if !ok || len == 0 {
        raw::close(fd);
        let _ = c.ruleset_error.write_str("empty or unreadable file");
        return None;
    }
    let p = unsafe {
        raw::sys6(
            libc::SYS_mmap,
            [
                0,
                len,
                libc::PROT_READ as usize,
                libc::MAP_PRIVATE as usize,
                fd as usize,
                0,
            ],
        )
    };
    raw::close(fd);
    if p < 0 {
        let _ = write!(c.ruleset_error, "mmap failed (errno {})", -p);
        return None;
    }
    // SAFETY: a read-only private mapping of `len` bytes that is never unmapped. (A file
    // truncated underneath would SIGBUS; guardctl writes rulesets by atomic rename.)
    let bytes: &'static [u8] = unsafe { core::slice::from_raw_parts(p as *const u8, len) };
    match Ruleset::load(bytes) {
        Ok(r) => Some(r),
        Err(e) => {
            let _ = write!(c.ruleset_error, "{}", LoadErrorDisplay(&e));
            None
        }
    }
}

struct LoadErrorDisplay<'a>(&'a LoadError);

impl core::fmt::Display for LoadErrorDisplay<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Display::fmt(self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::preload_has;

    #[test]
    fn preload_lists_are_split_like_the_loader_does() {
        assert!(preload_has(
            b"/a.so:/lib/libguard.so /b.so",
            b"/lib/libguard.so"
        ));
        assert!(preload_has(b"/lib/libguard.so", b"/lib/libguard.so"));
        assert!(!preload_has(b"/lib/libguard.so.bak", b"/lib/libguard.so"));
        assert!(!preload_has(b"/x.so", b""));
    }
}
