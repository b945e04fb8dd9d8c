//! Exec hooks: the exec family, `posix_spawn(p)`, and `system`/`popen` (reimplemented on the
//! guarded spawn path, because glibc's own versions exec internally and would run a child
//! without the guard after `unsetenv("LD_PRELOAD")`).
//!
//! Each exec is decided on the resolved program and the full argv (plus the payload of `su -c`
//! and `pkexec`, and the static/setuid check), recorded, and either refused with `EACCES` and
//! one line on stderr, or performed with the child environment of `envp.rs`.
//!
//! vfork safety (CPython execs from a vfork child, glibc's spawn uses CLONE_VM): everything here
//! lives on the stack, the audit event goes over a connection of its own, and the per-thread
//! bypass flag is cleared before the real exec is called.

use super::Real;
use crate::envp::{self, ChildEnv};
use crate::eval::{self, CArgv, Outcome, SliceArgv};
use crate::path::{self, PathBuf};
use crate::raw::{self, Buf, set_errno};
use crate::state::{self, Inside};
use core::ffi::{c_char, c_int};
use core::sync::atomic::{AtomicI32, AtomicPtr, AtomicU64, Ordering};
use guard_proto::{Action, Argv, Decision};
use libc::{FILE, pid_t, posix_spawn_file_actions_t, posix_spawnattr_t};

type Cv = *const *const c_char;
type ExecveFn = unsafe extern "C" fn(*const c_char, Cv, Cv) -> c_int;
type FexecveFn = unsafe extern "C" fn(c_int, Cv, Cv) -> c_int;
type ExecveatFn = unsafe extern "C" fn(c_int, *const c_char, Cv, Cv, c_int) -> c_int;
type SpawnFn = unsafe extern "C" fn(
    *mut pid_t,
    *const c_char,
    *const posix_spawn_file_actions_t,
    *const posix_spawnattr_t,
    Cv,
    Cv,
) -> c_int;
type PcloseFn = unsafe extern "C" fn(*mut FILE) -> c_int;

static EXECVE: Real<ExecveFn> = Real::new(c"execve");
static EXECVPE: Real<ExecveFn> = Real::new(c"execvpe");
static FEXECVE: Real<FexecveFn> = Real::new(c"fexecve");
static EXECVEAT: Real<ExecveatFn> = Real::new(c"execveat");
static POSIX_SPAWN: Real<SpawnFn> = Real::new(c"posix_spawn");
static POSIX_SPAWNP: Real<SpawnFn> = Real::new(c"posix_spawnp");
static PCLOSE: Real<PcloseFn> = Real::new(c"pclose");

pub fn resolve_all() {
    EXECVE.resolve();
    EXECVPE.resolve();
    FEXECVE.resolve();
    EXECVEAT.resolve();
    POSIX_SPAWN.resolve();
    POSIX_SPAWNP.resolve();
    PCLOSE.resolve();
}

/// argv[off..] as an `Argv`.
struct SubArgv<'a> {
    a: &'a CArgv,
    off: usize,
}

impl Argv for SubArgv<'_> {
    fn len(&self) -> usize {
        self.a.n.saturating_sub(self.off)
    }
    fn arg(&self, i: usize) -> &[u8] {
        self.a.arg(i.saturating_add(self.off))
    }
}

fn basename(p: &[u8]) -> &[u8] {
    p.rsplit(|c| *c == b'/').next().unwrap_or(p)
}

const STATIC: &str = "statically linked: the loader never loads LD_PRELOAD";

/// How the real exec is made when the kernel layer is involved (`seccomp.rs`).
struct Kernel {
    /// Exec with the raw syscall carrying the session value: the filter (just installed for a
    /// static binary, or inherited) lets it through without asking the broker again.
    via_magic: bool,
    /// The resolved program (for the PATH-searching callers).
    program: PathBuf,
}

impl Kernel {
    fn new() -> Kernel {
        Kernel {
            via_magic: false,
            program: PathBuf::new(),
        }
    }
}

/// Whether the program at `prog` cannot carry the preload: setuid/setgid (secure-execution
/// mode drops LD_PRELOAD), not a 64-bit ELF of our class, or statically linked (no PT_INTERP).
/// Scripts are guardable (their interpreter is what runs). `None` when it cannot be read.
fn unguardable(prog: *const c_char) -> Option<&'static str> {
    let fd = raw::openat(libc::AT_FDCWD, prog, libc::O_RDONLY | libc::O_CLOEXEC, 0);
    if fd < 0 {
        return None;
    }
    let res = (|| {
        let mut st: libc::stat = unsafe { core::mem::zeroed() };
        if !raw::fstat(fd, &mut st) {
            return None;
        }
        if st.st_mode & (libc::S_ISUID | libc::S_ISGID) != 0 {
            return Some("setuid/setgid binary: the loader ignores LD_PRELOAD");
        }
        let mut h = [0u8; 64];
        let n = pread(fd, &mut h, 0);
        if n < 4 || h.get(..4) != Some(b"\x7fELF") {
            return None;
        }
        if n < 64 || h.get(4) != Some(&2) {
            return Some("not a 64-bit ELF: this library cannot be loaded into it");
        }
        let u16_at = |o: usize| u16::from_le_bytes([h[o], h[o + 1]]) as u64;
        let phoff = u64::from_le_bytes(h.get(32..40)?.try_into().ok()?);
        let phentsize = u16_at(54);
        let phnum = u16_at(56).min(128);
        for i in 0..phnum {
            let mut t = [0u8; 4];
            let off = phoff.saturating_add(i.saturating_mul(phentsize));
            if pread(fd, &mut t, off) != 4 {
                return None;
            }
            if u32::from_le_bytes(t) == libc::PT_INTERP {
                return None;
            }
        }
        Some(STATIC)
    })();
    raw::close(fd);
    res
}

fn pread(fd: i32, buf: &mut [u8], off: u64) -> usize {
    let r = unsafe {
        raw::sys(
            libc::SYS_pread64,
            fd as usize,
            buf.as_mut_ptr() as usize,
            buf.len(),
            off as usize,
        )
    };
    if r < 0 { 0 } else { r as usize }
}

/// Splits an `su -c` command string on whitespace (best effort: no quoting).
fn split_words(s: &[u8]) -> SliceArgv<'_, 64> {
    let mut a = SliceArgv {
        args: [&[][..]; 64],
        n: 0,
    };
    for w in s
        .split(|c| c.is_ascii_whitespace())
        .filter(|w| !w.is_empty())
    {
        if let Some(slot) = a.args.get_mut(a.n) {
            *slot = w;
            a.n += 1;
        }
    }
    a
}

/// The command a setuid wrapper runs that the evaluator does not see through itself.
enum Payload<'a> {
    None,
    Words(&'a [u8]),
    Tail(usize),
}

fn payload<'a>(argv: &'a CArgv) -> Payload<'a> {
    let prog = basename(argv.arg(0));
    if prog == b"su" {
        let mut i = 1;
        while i < argv.n {
            let a = argv.arg(i);
            if a == b"-c" || a == b"--command" {
                return Payload::Words(argv.arg(i + 1));
            }
            if let Some(v) = a.strip_prefix(b"--command=") {
                return Payload::Words(v);
            }
            i += 1;
        }
    } else if prog == b"pkexec" {
        let mut i = 1;
        while i < argv.n {
            let a = argv.arg(i);
            if a == b"--user" || a == b"-u" {
                i += 2;
                continue;
            }
            if a.starts_with(b"-") {
                i += 1;
                continue;
            }
            return Payload::Tail(i);
        }
    }
    Payload::None
}

/// Decides one exec: `program` is the absolute executable path (NUL-terminated in its buffer),
/// `env` the environment the child would get (for `when.env`). Records the event(s). Returns
/// true when the exec must fail with EACCES (the explanation is already on stderr).
fn exec_denied(program: &mut PathBuf, argv: &CArgv, env: Cv, kernel: Option<&mut Kernel>) -> bool {
    // The program's real name when a symlink leads to it (raw syscalls and stack buffers
    // only: this may run in a vfork child).
    let mut real_buf = PathBuf::new();
    let mut dangling = PathBuf::new();
    let real = (!program.is_empty()
        && crate::path::resolved(
            libc::AT_FDCWD,
            program.c_ptr(),
            &mut real_buf,
            &mut dangling,
        )
        && real_buf.as_bytes() != program.as_bytes())
    .then(|| real_buf.as_bytes());
    let prog = program.as_bytes();
    let prog_opt = if prog.is_empty() { None } else { Some(prog) };
    let mut o = eval::with_ctx(env, |ctx| {
        let mut o = eval::evaluate(
            &Action::Exec {
                argv,
                program: prog_opt,
            },
            ctx,
        );
        let extra = match payload(argv) {
            Payload::Words(w) => {
                let a = split_words(w);
                (a.n > 0).then(|| {
                    eval::evaluate(
                        &Action::Exec {
                            argv: &a,
                            program: None,
                        },
                        ctx,
                    )
                })
            }
            Payload::Tail(k) => {
                let a = SubArgv { a: argv, off: k };
                Some(eval::evaluate(
                    &Action::Exec {
                        argv: &a,
                        program: None,
                    },
                    ctx,
                ))
            }
            Payload::None => None,
        };
        if let Some(e) = extra {
            o = eval::stricter((o, 0), (e, 1)).0;
        }
        // A symlink to a governed program (`ln -s $(which terraform) tf; ./tf destroy`) is
        // judged as the program it leads to as well. (A copy under another name is not: only
        // the name identifies a program; see README "What the guard does not see".)
        if let Some(real) = real {
            let r = eval::evaluate(
                &Action::Exec {
                    argv,
                    program: Some(real),
                },
                ctx,
            );
            o = eval::stricter((o, 0), (r, 1)).0;
        }
        o
    });
    let mut target = Buf::<2048>::new();
    for i in 0..argv.n {
        if i > 0 {
            target.push_trunc(b" ");
        }
        target.push_trunc(argv.arg(i));
    }
    if target.is_empty() {
        target.push_trunc(prog);
    }
    let unguard = if prog_opt.is_some() {
        unguardable(program.c_ptr())
    } else {
        None
    };
    let ug_decision = match state::ruleset() {
        Some(rs) => rs.unguardable_exec(),
        None => Decision::Deny,
    };
    // A static binary exec'd by this process itself runs under the kernel layer instead of
    // being only recorded (setuid keeps today's handling: no_new_privs would defeat it). An
    // `unguardable_exec = "deny"` still refuses it (file opens stay unguarded there); an
    // `ask` is asked first, and the approved exec is supervised.
    let backstop = kernel.is_some()
        && unguard == Some(STATIC)
        && ug_decision != Decision::Deny
        && crate::seccomp::possible();
    if let Some(why) = unguard
        && (!backstop || ug_decision == Decision::Ask)
    {
        {
            let d = ug_decision;
            let monitor = state::ruleset().is_some_and(|r| r.monitor_mode());
            let u = Outcome::from_verdict(d, None, state::ruleset().is_none(), monitor);
            eval::emit("exec-unguardable", program.as_bytes(), &u, true, why);
            if u.enforce > o.enforce {
                o = u;
            }
        }
    }
    // A PATH-searching caller retries a refused exec on the next PATH entry at once: refuse
    // the retry of an ask that was just refused without asking the human again.
    if o.enforce == Decision::Ask && repeated_denial(argv, &o, false) {
        return true;
    }
    eval::resolve_ask(&mut o, "exec", target.as_bytes());
    if o.blocks() && repeated_denial(argv, &o, true) {
        // Still refused, but already recorded and explained (see `repeated_denial`).
        return true;
    }
    eval::emit("exec", target.as_bytes(), &o, true, "");
    // An ask already wrote its own line saying why.
    if o.blocks() && o.asked.is_none() {
        let shown = if argv.n > 0 {
            argv.arg(0)
        } else {
            program.as_bytes()
        };
        eval::explain_exec_denial(shown, &o);
    }
    if o.blocks() {
        return true;
    }
    if let Some(k) = kernel {
        k.via_magic = crate::seccomp::is_filtered();
        if backstop && !k.via_magic {
            let mut left = false;
            match crate::seccomp::install(
                crate::seccomp::Why::StaticExec,
                program.as_bytes(),
                &mut left,
            ) {
                Ok(()) => k.via_magic = true,
                Err(e) => {
                    // Today's behaviour: the `unguardable_exec` decision, and say why.
                    crate::seccomp::diagnose(program.as_bytes(), e, left);
                    k.via_magic = left;
                    if unguardable_fallback(program, e) {
                        return true;
                    }
                }
            }
        }
    }
    false
}

/// The `unguardable_exec` decision for a static binary the kernel layer could not cover;
/// records it. True when the exec must be refused.
fn unguardable_fallback(program: &mut PathBuf, err: &str) -> bool {
    let d = match state::ruleset() {
        Some(rs) => rs.unguardable_exec(),
        None => Decision::Deny,
    };
    let monitor = state::ruleset().is_some_and(|r| r.monitor_mode());
    let u = Outcome::from_verdict(d, None, state::ruleset().is_none(), monitor);
    let mut why = Buf::<256>::new();
    why.push_trunc(STATIC.as_bytes());
    why.push_trunc(b"; kernel layer (seccomp) unavailable: ");
    why.push_trunc(err.as_bytes());
    eval::emit(
        "exec-unguardable",
        program.as_bytes(),
        &u,
        true,
        raw::utf8_prefix(why.as_bytes()),
    );
    if u.blocks() {
        eval::explain_exec_denial(program.as_bytes(), &u);
    }
    u.blocks()
}

/// The last denied exec of this process: pid, a hash of argv and rule, and when (ms).
static LAST_DENIAL: [AtomicU64; 3] = [const { AtomicU64::new(0) }; 3];

/// Whether this denial repeats the previous one of the same process within a second: the same
/// argv refused by the same rule. Programs that search PATH themselves (CPython's subprocess
/// and `os.execvp`) call `execve` on every PATH entry that has the program and keep going after
/// `EACCES`; with several copies of `git` on PATH one command would otherwise print several
/// denial lines and record several events. The exec is refused every time; only the event and
/// the stderr line are not repeated. Atomics only (this runs in vfork children); a race between
/// threads can at worst let a duplicate through. `record`: remember this denial (else only look).
fn repeated_denial(argv: &CArgv, o: &Outcome, record: bool) -> bool {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut mix = |b: &[u8]| {
        for c in b.iter().chain(&[0u8]) {
            h = (h ^ *c as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for i in 0..argv.n {
        mix(argv.arg(i));
    }
    mix(&o.rule.unwrap_or(u32::MAX).to_le_bytes());
    let mut ts: libc::timespec = unsafe { core::mem::zeroed() };
    let now_ms = if unsafe {
        raw::sys(
            libc::SYS_clock_gettime,
            libc::CLOCK_MONOTONIC as usize,
            &mut ts as *mut libc::timespec as usize,
            0,
            0,
        )
    } == 0
    {
        (ts.tv_sec as u64).wrapping_mul(1000) + ts.tv_nsec as u64 / 1_000_000
    } else {
        0
    };
    let pid = raw::getpid() as u32 as u64;
    let same = LAST_DENIAL[0].load(Ordering::Acquire) == pid
        && LAST_DENIAL[1].load(Ordering::Acquire) == h
        && now_ms.wrapping_sub(LAST_DENIAL[2].load(Ordering::Acquire)) < 1000;
    if !record {
        return same;
    }
    LAST_DENIAL[0].store(pid, Ordering::Release);
    LAST_DENIAL[1].store(h, Ordering::Release);
    LAST_DENIAL[2].store(now_ms, Ordering::Release);
    same
}

/// Looks `file` up like execvp does (PATH of this process, default "/bin:/usr/bin").
fn search_path(file: &[u8], out: &mut PathBuf) -> bool {
    out.clear();
    if file.contains(&b'/') {
        return path::lexical(libc::AT_FDCWD, file, out);
    }
    let env_path = unsafe { state::env_lookup(state::environ_ptr(), b"PATH") };
    let p = env_path.unwrap_or(b"/bin:/usr/bin");
    for dir in p.split(|c| *c == b':') {
        let mut cand = PathBuf::new();
        let dir = if dir.is_empty() { b"." as &[u8] } else { dir };
        if !(path::lexical(libc::AT_FDCWD, dir, &mut cand)
            && path::push_components(&mut cand, file))
        {
            continue;
        }
        let r = unsafe {
            raw::sys(
                libc::SYS_faccessat,
                libc::AT_FDCWD as isize as usize,
                cand.c_ptr() as usize,
                libc::X_OK as usize,
                0,
            )
        };
        if r == 0 {
            let mut st: libc::stat = unsafe { core::mem::zeroed() };
            let fd = raw::openat(
                libc::AT_FDCWD,
                cand.c_ptr(),
                libc::O_PATH | libc::O_CLOEXEC,
                0,
            );
            let regular =
                fd >= 0 && raw::fstat(fd, &mut st) && (st.st_mode & libc::S_IFMT) == libc::S_IFREG;
            if fd >= 0 {
                raw::close(fd);
            }
            if regular {
                out.push(cand.as_bytes());
                return true;
            }
        }
    }
    // Not found: decide on the bare name (the exec itself will fail with ENOENT).
    out.push(file);
    true
}

/// Where the program of an exec comes from.
enum Prog {
    Path(*const c_char),
    Search(*const c_char),
    Fd(c_int),
    At(c_int, *const c_char, c_int),
}

/// The common gate: evaluates, then builds the child environment. `Err(errno)` to refuse.
/// Clears the bypass flag before returning so the caller can exec right away.
/// `kernel`: the caller execs in this process right after (not a spawn), so the kernel layer
/// may be installed here; on return it says how to exec.
fn gate(
    prog: Prog,
    argv: Cv,
    env_src: Cv,
    child: &mut ChildEnv,
    kernel: Option<&mut Kernel>,
) -> Result<(), c_int> {
    // This may be a vfork child, sharing the parent's memory but not its directory: whatever
    // it remembered as the current directory must not outlive it (`cwd_cache.rs`).
    crate::cwd_cache::invalidate();
    let Some(g) = Inside::enter() else {
        // Not ready (or inside the library): pass the environment through, still guarded.
        return unsafe { pass_env(env_src, child) };
    };
    let mut program = PathBuf::new();
    let by_fd = matches!(prog, Prog::Fd(_));
    let _ = match prog {
        Prog::Path(p) => path::lexical(libc::AT_FDCWD, unsafe { raw::cstr(p) }, &mut program),
        Prog::Search(f) => search_path(unsafe { raw::cstr(f) }, &mut program),
        Prog::Fd(fd) => path::fd_path(fd, &mut program),
        Prog::At(dirfd, p, flags) => {
            let pb = unsafe { raw::cstr(p) };
            if pb.is_empty() && flags & libc::AT_EMPTY_PATH != 0 {
                path::fd_path(dirfd, &mut program)
            } else {
                path::lexical(dirfd, pb, &mut program)
            }
        }
    };
    if !by_fd {
        // An exec that cannot happen is not decided: CPython and execvp try every PATH entry,
        // and each miss would otherwise be a denial line and an event. The kernel's answer
        // is returned as is, without calling exec (so a file appearing meanwhile is not run).
        let r = unsafe {
            raw::sys(
                libc::SYS_faccessat,
                libc::AT_FDCWD as isize as usize,
                program.c_ptr() as usize,
                libc::X_OK as usize,
                0,
            )
        };
        if r < 0 {
            drop(g);
            return Err(-r as c_int);
        }
    }
    let a = unsafe { CArgv::new(argv) };
    let mut kernel = kernel;
    let denied = exec_denied(&mut program, &a, env_src, kernel.as_deref_mut());
    if let Some(k) = kernel
        && k.via_magic
    {
        k.program.clear();
        k.program.push(program.as_bytes());
    }
    let r = if denied {
        Err(libc::EACCES)
    } else {
        unsafe { envp::build(env_src, child) }
    };
    drop(g);
    r
}

/// Environment fix-up without evaluation (library not ready yet).
unsafe fn pass_env(env_src: Cv, child: &mut ChildEnv) -> Result<(), c_int> {
    if state::ensure_ready() {
        unsafe { envp::build(env_src, child) }
    } else {
        // Configuration unknown: hand the caller's environment through unchanged.
        let mut i = 0;
        while !env_src.is_null() && i < envp::MAX_ENV - 1 {
            let p = unsafe { *env_src.add(i) };
            if p.is_null() {
                break;
            }
            if let Some(s) = child.ptrs.get_mut(i) {
                *s = p;
            }
            i += 1;
        }
        if let Some(s) = child.ptrs.get_mut(i) {
            *s = core::ptr::null();
        }
        Ok(())
    }
}

fn fail(e: c_int) -> c_int {
    set_errno(e);
    -1
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn libguard_execve(path: *const c_char, argv: Cv, envp: Cv) -> c_int {
    let mut child = ChildEnv::new();
    let mut k = Kernel::new();
    if let Err(e) = gate(Prog::Path(path), argv, envp, &mut child, Some(&mut k)) {
        return fail(e);
    }
    if k.via_magic {
        return crate::hooks::libc_ret(crate::seccomp::execve(path, argv, child.as_ptr())) as c_int;
    }
    match EXECVE.get() {
        Some(f) => unsafe { f(path, argv, child.as_ptr()) },
        None => fail(libc::ENOSYS),
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn libguard_execvpe(file: *const c_char, argv: Cv, envp: Cv) -> c_int {
    let mut child = ChildEnv::new();
    let mut k = Kernel::new();
    if let Err(e) = gate(Prog::Search(file), argv, envp, &mut child, Some(&mut k)) {
        return fail(e);
    }
    if k.via_magic {
        // The program as execvpe would have found it; a script without `#!` (ENOEXEC) falls
        // back to libc, whose exec the filter then sends to the broker.
        let r = crate::seccomp::execve(k.program.c_ptr(), argv, child.as_ptr());
        if r != -(libc::ENOEXEC as isize) {
            return crate::hooks::libc_ret(r) as c_int;
        }
    }
    match EXECVPE.get() {
        Some(f) => unsafe { f(file, argv, child.as_ptr()) },
        None => fail(libc::ENOSYS),
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn execve(path: *const c_char, argv: Cv, envp: Cv) -> c_int {
    unsafe { libguard_execve(path, argv, envp) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn execv(path: *const c_char, argv: Cv) -> c_int {
    unsafe { libguard_execve(path, argv, state::environ_ptr()) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn execvp(file: *const c_char, argv: Cv) -> c_int {
    unsafe { libguard_execvpe(file, argv, state::environ_ptr()) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn execvpe(file: *const c_char, argv: Cv, envp: Cv) -> c_int {
    unsafe { libguard_execvpe(file, argv, envp) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn fexecve(fd: c_int, argv: Cv, envp: Cv) -> c_int {
    let mut child = ChildEnv::new();
    let mut k = Kernel::new();
    if let Err(e) = gate(Prog::Fd(fd), argv, envp, &mut child, Some(&mut k)) {
        return fail(e);
    }
    if k.via_magic {
        return crate::hooks::libc_ret(crate::seccomp::execveat(
            fd,
            c"".as_ptr(),
            argv,
            child.as_ptr(),
            libc::AT_EMPTY_PATH,
        )) as c_int;
    }
    match FEXECVE.get() {
        Some(f) => unsafe { f(fd, argv, child.as_ptr()) },
        None => fail(libc::ENOSYS),
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn execveat(
    dirfd: c_int,
    path: *const c_char,
    argv: Cv,
    envp: Cv,
    flags: c_int,
) -> c_int {
    let mut child = ChildEnv::new();
    let mut k = Kernel::new();
    if let Err(e) = gate(
        Prog::At(dirfd, path, flags),
        argv,
        envp,
        &mut child,
        Some(&mut k),
    ) {
        return fail(e);
    }
    if k.via_magic {
        return crate::hooks::libc_ret(crate::seccomp::execveat(
            dirfd,
            path,
            argv,
            child.as_ptr(),
            flags,
        )) as c_int;
    }
    match EXECVEAT.get() {
        Some(f) => unsafe { f(dirfd, path, argv, child.as_ptr(), flags) },
        None => crate::hooks::libc_ret(unsafe {
            raw::sys6(
                libc::SYS_execveat,
                [
                    dirfd as isize as usize,
                    path as usize,
                    argv as usize,
                    child.as_ptr() as usize,
                    flags as usize,
                    0,
                ],
            )
        }) as c_int,
    }
}

fn env_or_environ(envp: Cv) -> Cv {
    if envp.is_null() {
        state::environ_ptr()
    } else {
        envp
    }
}

/// The guarded spawn path shared by posix_spawn(p), system and popen. Returns an error number.
unsafe fn spawn(
    search: bool,
    pid: *mut pid_t,
    path: *const c_char,
    fa: *const posix_spawn_file_actions_t,
    attr: *const posix_spawnattr_t,
    argv: Cv,
    envp: Cv,
) -> c_int {
    let mut child = ChildEnv::new();
    let prog = if search {
        Prog::Search(path)
    } else {
        Prog::Path(path)
    };
    // A spawn execs in a child this process does not control: no filter is installed here,
    // the static target stays governed by `unguardable_exec` (docs/kernel-layer.md).
    if let Err(e) = gate(prog, argv, env_or_environ(envp), &mut child, None) {
        return e;
    }
    let real = if search {
        POSIX_SPAWNP.get()
    } else {
        POSIX_SPAWN.get()
    };
    match real {
        Some(f) => unsafe { f(pid, path, fa, attr, argv, child.as_ptr()) },
        None => libc::ENOSYS,
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn posix_spawn(
    pid: *mut pid_t,
    path: *const c_char,
    fa: *const posix_spawn_file_actions_t,
    attr: *const posix_spawnattr_t,
    argv: Cv,
    envp: Cv,
) -> c_int {
    unsafe { spawn(false, pid, path, fa, attr, argv, envp) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn posix_spawnp(
    pid: *mut pid_t,
    file: *const c_char,
    fa: *const posix_spawn_file_actions_t,
    attr: *const posix_spawnattr_t,
    argv: Cv,
    envp: Cv,
) -> c_int {
    unsafe { spawn(true, pid, file, fa, attr, argv, envp) }
}

const SHELL: &core::ffi::CStr = c"/bin/sh";

/// `system(3)` on the guarded spawn path, with glibc's signal semantics: SIGINT and SIGQUIT
/// ignored and SIGCHLD blocked in the caller while the command runs, defaults in the child.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn system(cmd: *const c_char) -> c_int {
    if cmd.is_null() {
        let ok = unsafe {
            raw::sys(
                libc::SYS_faccessat,
                libc::AT_FDCWD as isize as usize,
                SHELL.as_ptr() as usize,
                libc::X_OK as usize,
                0,
            )
        } == 0;
        return ok as c_int;
    }
    unsafe {
        let mut ign: libc::sigaction = core::mem::zeroed();
        ign.sa_sigaction = libc::SIG_IGN;
        libc::sigemptyset(&mut ign.sa_mask);
        let mut old_int: libc::sigaction = core::mem::zeroed();
        let mut old_quit: libc::sigaction = core::mem::zeroed();
        libc::sigaction(libc::SIGINT, &ign, &mut old_int);
        libc::sigaction(libc::SIGQUIT, &ign, &mut old_quit);
        let mut chld: libc::sigset_t = core::mem::zeroed();
        let mut omask: libc::sigset_t = core::mem::zeroed();
        libc::sigemptyset(&mut chld);
        libc::sigaddset(&mut chld, libc::SIGCHLD);
        libc::sigprocmask(libc::SIG_BLOCK, &chld, &mut omask);

        let mut attr: posix_spawnattr_t = core::mem::zeroed();
        libc::posix_spawnattr_init(&mut attr);
        let mut def: libc::sigset_t = core::mem::zeroed();
        libc::sigemptyset(&mut def);
        if old_int.sa_sigaction != libc::SIG_IGN {
            libc::sigaddset(&mut def, libc::SIGINT);
        }
        if old_quit.sa_sigaction != libc::SIG_IGN {
            libc::sigaddset(&mut def, libc::SIGQUIT);
        }
        libc::posix_spawnattr_setsigdefault(&mut attr, &def);
        libc::posix_spawnattr_setsigmask(&mut attr, &omask);
        libc::posix_spawnattr_setflags(
            &mut attr,
            (libc::POSIX_SPAWN_SETSIGDEF | libc::POSIX_SPAWN_SETSIGMASK) as libc::c_short,
        );
        let argv: [*const c_char; 4] = [c"sh".as_ptr(), c"-c".as_ptr(), cmd, core::ptr::null()];
        let mut pid: pid_t = 0;
        let e = spawn(
            false,
            &mut pid,
            SHELL.as_ptr(),
            core::ptr::null(),
            &attr,
            argv.as_ptr(),
            state::environ_ptr(),
        );
        libc::posix_spawnattr_destroy(&mut attr);
        let status = if e == 0 {
            let mut st: c_int = 0;
            loop {
                let r = libc::waitpid(pid, &mut st, 0);
                if r == pid {
                    break st;
                }
                if r < 0 && raw::errno() != libc::EINTR {
                    break -1;
                }
            }
        } else if e == libc::EACCES {
            // The shell could not run: like a shell that failed to exec its command.
            126 << 8
        } else {
            127 << 8
        };
        libc::sigaction(libc::SIGINT, &old_int, core::ptr::null_mut());
        libc::sigaction(libc::SIGQUIT, &old_quit, core::ptr::null_mut());
        libc::sigprocmask(libc::SIG_SETMASK, &omask, core::ptr::null_mut());
        if e != 0 && e != libc::EACCES {
            set_errno(e);
        }
        status
    }
}

const POPEN_SLOTS: usize = 64;
static POPEN_FILE: [AtomicPtr<FILE>; POPEN_SLOTS] =
    [const { AtomicPtr::new(core::ptr::null_mut()) }; POPEN_SLOTS];
static POPEN_PID: [AtomicI32; POPEN_SLOTS] = [const { AtomicI32::new(0) }; POPEN_SLOTS];

/// `popen(3)` on the guarded spawn path. The stream→pid pairs live in a fixed table that
/// `pclose` consults; a full table makes popen fail with EMFILE.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn popen(cmd: *const c_char, mode: *const c_char) -> *mut FILE {
    let m = unsafe { raw::cstr(mode) };
    let reading = match m.first() {
        Some(b'r') => true,
        Some(b'w') => false,
        _ => {
            set_errno(libc::EINVAL);
            return core::ptr::null_mut();
        }
    };
    let cloexec = m.contains(&b'e');
    if cmd.is_null() {
        set_errno(libc::EINVAL);
        return core::ptr::null_mut();
    }
    unsafe {
        let mut fds = [0 as c_int; 2];
        if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
            return core::ptr::null_mut();
        }
        let (parent_end, child_end, child_target) = if reading {
            (fds[0], fds[1], 1)
        } else {
            (fds[1], fds[0], 0)
        };
        let mut fa: posix_spawn_file_actions_t = core::mem::zeroed();
        libc::posix_spawn_file_actions_init(&mut fa);
        libc::posix_spawn_file_actions_adddup2(&mut fa, child_end, child_target);
        let argv: [*const c_char; 4] = [c"sh".as_ptr(), c"-c".as_ptr(), cmd, core::ptr::null()];
        let mut pid: pid_t = 0;
        let e = spawn(
            false,
            &mut pid,
            SHELL.as_ptr(),
            &fa,
            core::ptr::null(),
            argv.as_ptr(),
            state::environ_ptr(),
        );
        libc::posix_spawn_file_actions_destroy(&mut fa);
        libc::close(child_end);
        if e != 0 {
            libc::close(parent_end);
            set_errno(e);
            return core::ptr::null_mut();
        }
        if !cloexec {
            libc::fcntl(parent_end, libc::F_SETFD, 0);
        }
        let fp = libc::fdopen(
            parent_end,
            if reading {
                c"r".as_ptr()
            } else {
                c"w".as_ptr()
            },
        );
        if fp.is_null() {
            libc::close(parent_end);
            reap(pid);
            return core::ptr::null_mut();
        }
        for (slot, spid) in POPEN_FILE.iter().zip(POPEN_PID.iter()) {
            if slot
                .compare_exchange(
                    core::ptr::null_mut(),
                    fp,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
            {
                spid.store(pid, Ordering::Release);
                return fp;
            }
        }
        libc::fclose(fp);
        reap(pid);
        set_errno(libc::EMFILE);
        core::ptr::null_mut()
    }
}

fn reap(pid: pid_t) -> c_int {
    let mut st: c_int = 0;
    loop {
        let r = unsafe { libc::waitpid(pid, &mut st, 0) };
        if r == pid {
            return st;
        }
        if r < 0 && raw::errno() != libc::EINTR {
            return -1;
        }
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn pclose(fp: *mut FILE) -> c_int {
    for (slot, spid) in POPEN_FILE.iter().zip(POPEN_PID.iter()) {
        if !fp.is_null() && slot.load(Ordering::Acquire) == fp {
            let pid = spid.load(Ordering::Acquire);
            slot.store(core::ptr::null_mut(), Ordering::Release);
            unsafe { libc::fclose(fp) };
            return reap(pid);
        }
    }
    match PCLOSE.get() {
        Some(f) => unsafe { f(fp) },
        None => fail(libc::ENOSYS),
    }
}
