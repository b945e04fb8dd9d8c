//! `guardctl run`: the launcher.
//!
//! Compiles (or reuses) the session's ruleset, starts the session broker on a private socket,
//! becomes a child subreaper (so a double-forked descendant is reparented to us, not to init,
//! and stays inside the session), runs the command with `LD_PRELOAD=libguard.so` and the
//! `GUARD_*` variables, forwards signals to it, reaps orphans, and exits with the command's
//! status (128+signal when it was killed). Launcher failures exit 2 without running anything,
//! like `main` documents; a command that cannot be executed gives 127 (not found) or 126.

use crate::broker::event::{SessionInfo, compact_utc, hostname, rfc3339_ms};
use crate::broker::store::Store;
use crate::broker::{Broker, Summary, spill};
use crate::state::Dirs;
use clap::Args;
use guard_policy::{CompileContext, Policy};
use std::ffi::{OsStr, OsString};
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, SystemTime};

// `eprintln!` that never panics: with `2>&1 | head` the pipe may be gone when the summary is
// written, and a panic (abort) there would replace the command's exit status.
macro_rules! eprintln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

#[derive(Args)]
pub struct RunArgs {
    /// Policy file (repeatable; the first one's [policy] settings win). Default: the embedded default policy.
    #[arg(long = "policy", value_name = "FILE")]
    pub policy: Vec<PathBuf>,
    /// Agent name recorded in every audit event (default: the command's basename).
    #[arg(long)]
    pub agent: Option<String>,
    /// Model name recorded in every audit event.
    #[arg(long, default_value = "unknown")]
    pub model: String,
    /// Override the policy's mode.
    #[arg(long, value_parser = ["enforce", "monitor"])]
    pub mode: Option<String>,
    /// The command to run, after `--`.
    #[arg(last = true, required = true)]
    pub command: Vec<OsString>,
}

/// Signals relayed to the command. SIGCHLD is waited for too, to reap.
const FORWARDED: [libc::c_int; 7] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
];

/// How long the broker waits for late events after the command exits.
const DRAIN_QUIET: Duration = Duration::from_millis(100);
const DRAIN_MAX: Duration = Duration::from_secs(1);

/// Longest socket path `sockaddr_un` takes (108 bytes with the NUL).
const MAX_SOCKET_PATH: usize = 107;

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("guardctl run: {msg}");
    ExitCode::from(2)
}

pub fn run(args: RunArgs) -> ExitCode {
    let Some(program) = args.command.first().cloned() else {
        return fail("no command given (usage: guardctl run [OPTIONS] -- CMD...)");
    };
    let dirs = match Dirs::resolve() {
        Ok(d) => d,
        Err(e) => return fail(e),
    };
    if let Err(e) = dirs.ensure_state() {
        return fail(format_args!(
            "state directory {}: {e}",
            dirs.state.display()
        ));
    }
    if let Err(e) = dirs.ensure_run() {
        return fail(format_args!("socket directory {}: {e}", dirs.run.display()));
    }
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            return fail(format_args!(
                "cannot locate guardctl itself (/proc/self/exe): {e}"
            ));
        }
    };
    let lib = match locate_libguard(&exe) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let workspace = match std::env::current_dir().and_then(|d| d.canonicalize()) {
        Ok(d) => d,
        Err(e) => return fail(format_args!("cannot resolve the current directory: {e}")),
    };
    let home = std::env::var("HOME").unwrap_or_default();
    let ctx = CompileContext {
        policy_dir: guard_policy::policy_dir_for(&args.policy, &home),
        home,
        workspace: workspace.to_string_lossy().into_owned(),
        state_dir: dirs.state.to_string_lossy().into_owned(),
        guard_lib: lib.to_string_lossy().into_owned(),
        guard_exe: exe.to_string_lossy().into_owned(),
    };
    let ruleset = match prepare_ruleset(&args.policy, &ctx, args.mode.as_deref(), &dirs.rulesets())
    {
        Ok(p) => p,
        Err(Prepare::Policy(msg)) => {
            // Already `file:line:col: problem`; print it bare so editors can jump to it.
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
        Err(Prepare::Store(e)) => {
            return fail(format_args!(
                "cannot store the compiled ruleset in {}: {e}",
                dirs.rulesets().display()
            ));
        }
    };

    let now = SystemTime::now();
    let session = format!("{}-{}", compact_utc(now), std::process::id());
    let agent = args.agent.clone().unwrap_or_else(|| {
        Path::new(&program)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| program.to_string_lossy().into_owned())
    });
    let info = SessionInfo {
        session: session.clone(),
        agent: agent.clone(),
        model: args.model.clone(),
        host: hostname(),
    };
    let log_path = dirs.sessions().join(format!("{session}.jsonl"));
    let log = match OpenOptions::new()
        .append(true)
        .create_new(true)
        .mode(0o600)
        .open(&log_path)
    {
        Ok(f) => f,
        Err(e) => {
            return fail(format_args!(
                "cannot create the audit log {}: {e}",
                log_path.display()
            ));
        }
    };
    // Events that cannot be sent wait here (libguard's spill files) until a broker ingests them.
    let spill_dir = dirs.state.join("spill").join(&session);
    if let Err(e) = spill::create_dir(&spill_dir) {
        eprintln!(
            "guard: warning: cannot create the spill directory {}: {e}; events that cannot be sent are only counted",
            spill_dir.display()
        );
    }
    // A running `guardctl serve` is this session's broker (events and asks); else we are.
    let attached = crate::cmd_serve::running(&dirs);
    let socket = match &attached {
        Some(s) => s.clone(),
        None => dirs.run.join(format!("{session}.sock")),
    };
    if socket.as_os_str().len() > MAX_SOCKET_PATH {
        return fail(format_args!(
            "socket path {} is longer than {MAX_SOCKET_PATH} bytes; set GUARD_STATE_DIR or XDG_RUNTIME_DIR to a shorter directory",
            socket.display()
        ));
    }
    let listener = if attached.is_none() {
        let _ = fs::remove_file(&socket);
        let l = match UnixListener::bind(&socket) {
            Ok(l) => l,
            Err(e) => return fail(format_args!("cannot listen on {}: {e}", socket.display())),
        };
        let _ = fs::set_permissions(&socket, fs::Permissions::from_mode(0o600));
        Some(l)
    } else {
        None
    };

    // Block the relayed signals before any thread exists, so that every thread inherits the
    // mask and they all reach the main loop's sigtimedwait instead of killing us.
    let waitset = signal_set();
    // SAFETY: `waitset` is a valid, initialised signal set.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &waitset, std::ptr::null_mut()) };

    let db = dirs.sessions().join("audit.db");
    let broker = match listener {
        Some(listener) => {
            match Broker::start_session(listener, log, &db, info.clone(), spill_dir.clone()) {
                Ok(b) => {
                    b.supervise_with(ruleset.clone());
                    Some(b)
                }
                Err(e) => return fail(format_args!("cannot start the broker: {e}")),
            }
        }
        // `serve` appends to the log we created (so it exists from the start).
        None => {
            drop(log);
            None
        }
    };
    append_index(
        &dirs,
        &serde_json::json!({
            "event": "start",
            "session": session,
            "ts": rfc3339_ms(now),
            "agent": agent,
            "model": args.model,
            "pid": std::process::id(),
            "cwd": workspace.to_string_lossy(),
            "command": args.command.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>(),
            "log": log_path.to_string_lossy(),
            "ruleset": ruleset.to_string_lossy(),
            // `serve` reads this record to accept the session's events (its registration).
            "broker": if attached.is_some() { "serve" } else { "session" },
        }),
    );

    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes one integer argument.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) } != 0 {
        eprintln!(
            "guard: warning: cannot become a child subreaper: {}",
            io::Error::last_os_error()
        );
    }

    let mut cmd = Command::new(&program);
    cmd.args(&args.command[1..])
        .env(
            "LD_PRELOAD",
            ld_preload(&lib, std::env::var_os("LD_PRELOAD").as_deref()),
        )
        .env("GUARD_SOCKET", &socket)
        .env("GUARD_SPILL_DIR", &spill_dir)
        .env("GUARD_RULESET", &ruleset)
        .env("GUARD_SESSION", &session)
        .env("GUARD_AGENT", &agent)
        .env("GUARD_MODEL", &args.model)
        .env("GUARD_WORKSPACE", &workspace)
        .env(
            "GUARD_PROTECT",
            protect_list(&dirs, &args.policy, &lib, &exe, &ruleset),
        )
        .env("UV_USE_IO_URING", "0");
    // An attached session's asks go to `serve` too; else our own broker answers them.
    match &attached {
        Some(shared) => {
            cmd.env("GUARD_ASK_SOCKET", shared);
        }
        None => {
            cmd.env_remove("GUARD_ASK_SOCKET");
        }
    }
    // The command must not inherit our blocked set (std keeps the parent's mask across exec).
    let unblock = waitset;
    // SAFETY: the closure runs between fork and exec and only calls pthread_sigmask, which is
    // async-signal-safe; `unblock` is a plain copied value.
    unsafe {
        cmd.pre_exec(move || {
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &unblock, std::ptr::null_mut());
            Ok(())
        });
    }
    let status = match cmd.spawn() {
        Ok(child) => supervise(child.id() as libc::pid_t, &waitset),
        Err(e) => {
            eprintln!(
                "guardctl run: cannot run {}: {e}",
                program.to_string_lossy()
            );
            if e.kind() == io::ErrorKind::NotFound {
                127
            } else {
                126
            }
        }
    };

    let summary = match broker {
        Some(b) => {
            let s = b.finish(DRAIN_QUIET, DRAIN_MAX);
            let _ = fs::remove_file(&socket);
            s
        }
        None => end_attached(&socket, &info, &log_path, &db, &spill_dir),
    };
    reap_all(-1, &mut None);
    spill::remove_dir_if_empty(&spill_dir);
    append_index(
        &dirs,
        &serde_json::json!({
            "event": "end",
            "session": session,
            "ts": rfc3339_ms(SystemTime::now()),
            "status": status,
            "events": summary.events,
            "dropped": summary.dropped,
            "rejected_connections": summary.rejected_connections,
            "spilled": summary.spilled,
            "log": log_path.to_string_lossy(),
        }),
    );
    eprintln!(
        "guard: session {session}: {} events ({} dropped), audit log {}",
        summary.events,
        summary.dropped,
        log_path.display()
    );
    ExitCode::from(status)
}

/// Ends a session attached to `serve`: asks it to store what is left (connections, spill
/// files) and report the totals. When no `serve` answers (killed and not restarted), ingests the
/// spill files into the session's store ourselves, under the same exclusive lock on the log that
/// `serve` holds while it writes it, so the two never interleave records.
fn end_attached(
    serve: &Path,
    info: &SessionInfo,
    log_path: &Path,
    db: &Path,
    spill_dir: &Path,
) -> Summary {
    // The processes' last events may still be on their way to `serve`.
    std::thread::sleep(DRAIN_QUIET);
    if let Some(mut c) = crate::cmd_approve::Control::connect(&serve.to_path_buf())
        && let Some((true, body)) = c.request("end-session", 0, false)
        && let Ok(v) = serde_json::from_str::<serde_json::Value>(&body)
    {
        return Summary {
            events: v["events"].as_u64().unwrap_or(0),
            dropped: v["dropped"].as_u64().unwrap_or(0),
            spilled: v["spilled"].as_u64().unwrap_or(0),
            ..Summary::default()
        };
    }
    eprintln!(
        "guard: the shared broker (guardctl serve) is gone; storing this session's spilled events"
    );
    let file = match OpenOptions::new()
        .read(true)
        .append(true)
        .mode(0o600)
        .open(log_path)
    {
        Ok(f) => f,
        Err(e) => {
            eprintln!("guard: {}: {e}", log_path.display());
            return Summary::default();
        }
    };
    if !crate::broker::lock_exclusive(&file, Duration::from_secs(2)) {
        eprintln!(
            "guard: {} is held by a restarted serve; it will ingest the spill files",
            log_path.display()
        );
        return Summary::default();
    }
    let mut store = match Store::open(file, Some(db), &info.session) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("guard: {}: {e}", log_path.display());
            return Summary::default();
        }
    };
    let mut counts = store.stored_counts();
    let got = spill::ingest_dir(spill_dir, info, Duration::from_millis(300));
    counts.client_dropped += got.events.iter().map(|e| e.dropped_before).sum::<u64>();
    let spilled = got.events.len() as u64;
    if let Err(e) = store.write_batch(&got.events, counts) {
        eprintln!("guard: {}: {e}", log_path.display());
    }
    store.finish(counts);
    Summary {
        events: store.events(),
        dropped: counts.broker_dropped + counts.client_dropped,
        spilled,
        ..Summary::default()
    }
}

/// `GUARD_PROTECT`: what guarded processes may never modify, whatever the policy says (see
/// libguard's `selfprotect`): the state and socket directories, the policy files, the ruleset,
/// libguard.so and guardctl, each canonicalised (libguard compares resolved names).
fn protect_list(
    dirs: &Dirs,
    policies: &[PathBuf],
    lib: &Path,
    exe: &Path,
    ruleset: &Path,
) -> OsString {
    let mut v: Vec<PathBuf> = vec![dirs.state.clone(), dirs.run.clone()];
    v.extend(policies.iter().cloned());
    v.extend([lib.to_path_buf(), exe.to_path_buf(), ruleset.to_path_buf()]);
    let mut out = OsString::new();
    for p in v {
        let p = p.canonicalize().unwrap_or(p);
        // A ':' inside a name cannot be expressed in the list; such a path stays unlisted.
        if p.as_os_str().as_bytes().contains(&b':') || !p.is_absolute() {
            continue;
        }
        if !out.is_empty() {
            out.push(":");
        }
        out.push(p.as_os_str());
    }
    out
}

enum Prepare {
    /// A policy problem, as `file:line:col: problem`.
    Policy(String),
    Store(io::Error),
}

/// Loads the policy (always: a malformed one must be refused even when a ruleset is cached),
/// then reuses `<rulesets>/<key>.rules` if it exists and still loads, else compiles it.
/// The key hashes every policy source byte (includes too), the compile context, the mode and
/// the format version, so any change gives a new file; a file that may be mapped by a running
/// session is never rewritten in place.
fn prepare_ruleset(
    files: &[PathBuf],
    ctx: &CompileContext,
    mode: Option<&str>,
    dir: &Path,
) -> Result<PathBuf, Prepare> {
    let mut policy = if files.is_empty() {
        Policy::default_policy()
    } else {
        Policy::load(files)
    }
    .map_err(|e| Prepare::Policy(e.to_string()))?;
    match mode {
        Some("monitor") => policy.set_monitor(true),
        Some("enforce") => policy.set_monitor(false),
        _ => {}
    }
    let key = cache_key(&policy, files.is_empty(), ctx, mode);
    let path = dir.join(format!("{key:016x}.rules"));
    if let Ok(existing) = fs::read(&path)
        && ruleset_loads(&existing)
    {
        return Ok(path);
    }
    // Examples are not checked here: they hold or not in the canonical context (`policy
    // check`/`test`/`compile` check them there; the embedded policy's are checked by
    // guard-policy's tests), so an unusual HOME or workspace never stops a launch. A malformed
    // policy was already refused by the load above.
    let bytes = policy
        .compile_for_launch(ctx)
        .map_err(|e| Prepare::Policy(e.to_string()))?;
    store_ruleset(&path, &bytes).map_err(Prepare::Store)?;
    Ok(path)
}

fn cache_key(policy: &Policy, embedded: bool, ctx: &CompileContext, mode: Option<&str>) -> u64 {
    let mut h = Fnv::default();
    h.field(b"guard-ruleset-cache-1");
    h.field(env!("CARGO_PKG_VERSION").as_bytes());
    h.field(&guard_proto::ruleset::format::FORMAT_VERSION.to_le_bytes());
    if embedded {
        for (name, text) in Policy::embedded_files() {
            h.field(name.as_bytes());
            h.field(text.as_bytes());
        }
    } else {
        for f in policy.files() {
            h.field(f.as_os_str().as_bytes());
            // An unreadable include cannot have loaded; hash the error to stay conservative.
            match fs::read(f) {
                Ok(b) => h.field(&b),
                Err(e) => h.field(e.to_string().as_bytes()),
            }
        }
    }
    for v in [
        &ctx.home,
        &ctx.workspace,
        &ctx.state_dir,
        &ctx.policy_dir,
        &ctx.guard_lib,
        &ctx.guard_exe,
    ] {
        h.field(v.as_bytes());
    }
    h.field(mode.unwrap_or("").as_bytes());
    h.0
}

/// Whether cached bytes are a ruleset this build can load (they could be truncated or from an
/// older format). The loader wants 8-byte alignment, so check an aligned copy.
fn ruleset_loads(bytes: &[u8]) -> bool {
    let mut words = vec![0u64; bytes.len().div_ceil(8)];
    // SAFETY: the u64 buffer is at least `bytes.len()` bytes long and u8 has no alignment needs.
    let aligned =
        unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), bytes.len()) };
    aligned.copy_from_slice(bytes);
    guard_proto::Ruleset::load(aligned).is_ok()
}

/// Writes `bytes` to `path` atomically (temp file + rename), mode 0444.
pub fn store_ruleset(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let _ = fs::remove_file(&tmp);
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o444))?;
    fs::rename(&tmp, path)
}

/// FNV-1a over length-prefixed fields (so field boundaries cannot shift into each other).
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn field(&mut self, bytes: &[u8]) {
        for &b in (bytes.len() as u64).to_le_bytes().iter().chain(bytes) {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// Finds `libguard.so`: next to this binary, else `$GUARD_LIB`, else `../lib/libguard.so`.
pub fn locate_libguard(exe: &Path) -> Result<PathBuf, String> {
    let dir = exe.parent().unwrap_or(Path::new("/"));
    let mut candidates = vec![dir.join("libguard.so")];
    if let Some(v) = std::env::var_os("GUARD_LIB").filter(|v| !v.is_empty()) {
        let p = PathBuf::from(v);
        let p = if p.is_absolute() {
            p
        } else {
            std::env::current_dir().map(|d| d.join(&p)).unwrap_or(p)
        };
        candidates.push(p);
    }
    candidates.push(dir.join("../lib/libguard.so"));
    for c in &candidates {
        if c.is_file() {
            let abs = c
                .canonicalize()
                .map_err(|e| format!("{}: {e}", c.display()))?;
            // ld.so splits LD_PRELOAD on spaces and colons.
            if abs
                .as_os_str()
                .as_bytes()
                .iter()
                .any(|&b| b == b' ' || b == b':')
            {
                return Err(format!(
                    "{}: LD_PRELOAD cannot carry a path containing ' ' or ':'",
                    abs.display()
                ));
            }
            return Ok(abs);
        }
    }
    let tried: Vec<String> = candidates.iter().map(|c| c.display().to_string()).collect();
    Err(format!(
        "cannot find libguard.so (looked at {}); build it (`cargo build -p libguard`) or set GUARD_LIB to its path",
        tried.join(", ")
    ))
}

/// Our library first, then whatever was preloaded before (without a second copy of ours).
pub fn ld_preload(lib: &Path, existing: Option<&OsStr>) -> OsString {
    let mut out = OsString::from(lib);
    if let Some(existing) = existing {
        for part in existing.as_bytes().split(|&b| b == b':' || b == b' ') {
            if part.is_empty() || part == lib.as_os_str().as_bytes() {
                continue;
            }
            out.push(":");
            out.push(OsStr::from_bytes(part));
        }
    }
    out
}

fn signal_set() -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the set; sigaddset only takes valid signal numbers.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in FORWARDED {
            libc::sigaddset(&mut set, s);
        }
        libc::sigaddset(&mut set, libc::SIGCHLD);
        set
    }
}

/// Relays signals and reaps until `child` exits; returns its status as an exit code.
fn supervise(child: libc::pid_t, waitset: &libc::sigset_t) -> u8 {
    let mut status = None;
    loop {
        // SAFETY: siginfo_t is plain data; all-zero is a valid value.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let timeout = libc::timespec {
            tv_sec: 0,
            tv_nsec: 100_000_000,
        };
        // SAFETY: the set, info and timeout pointers are valid for the call.
        let sig = unsafe { libc::sigtimedwait(waitset, &mut info, &timeout) };
        // A signal the kernel sent (si_code SI_KERNEL) came from the terminal to the whole
        // foreground process group, so the command already has it; relaying would double it.
        if sig > 0 && sig != libc::SIGCHLD && info.si_code != libc::SI_KERNEL {
            // SAFETY: plain kill(2) on our child's pid, which we have not reaped yet.
            unsafe { libc::kill(child, sig) };
        }
        reap_all(child, &mut status);
        if let Some(st) = status {
            return exit_code(st);
        }
    }
}

/// Reaps every exited child (our command and orphans reparented to us); records `child`'s status.
fn reap_all(child: libc::pid_t, status: &mut Option<libc::c_int>) {
    loop {
        let mut st: libc::c_int = 0;
        // SAFETY: waitpid with a valid status pointer.
        let pid = unsafe { libc::waitpid(-1, &mut st, libc::WNOHANG) };
        if pid <= 0 {
            return;
        }
        if pid == child {
            *status = Some(st);
        }
    }
}

fn exit_code(st: libc::c_int) -> u8 {
    if libc::WIFEXITED(st) {
        libc::WEXITSTATUS(st) as u8
    } else if libc::WIFSIGNALED(st) {
        128u8.saturating_add(libc::WTERMSIG(st) as u8)
    } else {
        1
    }
}

fn append_index(dirs: &Dirs, entry: &serde_json::Value) {
    let mut line = entry.to_string();
    line.push('\n');
    // One write(2) with O_APPEND: concurrent sessions never interleave within a line.
    let res = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(dirs.index())
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = res {
        eprintln!(
            "guard: warning: cannot update {}: {e}",
            dirs.index().display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ld_preload_puts_ours_first_once() {
        let lib = Path::new("/opt/g/libguard.so");
        assert_eq!(ld_preload(lib, None), "/opt/g/libguard.so");
        assert_eq!(
            ld_preload(lib, Some(OsStr::new("/a.so /opt/g/libguard.so:/b.so"))),
            "/opt/g/libguard.so:/a.so:/b.so"
        );
    }

    #[test]
    fn ruleset_store_is_atomic_and_read_only() {
        let dir = std::env::temp_dir().join(format!("guard-cache-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let p = dir.join("k.rules");
        store_ruleset(&p, b"one").unwrap();
        // Replacing a read-only file works (rename), and a mapped old copy would stay intact.
        store_ruleset(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o444
        );
        assert_eq!(
            fs::read_dir(&dir).unwrap().count(),
            1,
            "no temp files left behind"
        );
        assert!(!ruleset_loads(b"two"));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn cache_key_depends_on_context_and_mode() {
        let policy = Policy::default_policy().unwrap();
        let ctx = CompileContext::default();
        let k = cache_key(&policy, true, &ctx, None);
        assert_eq!(k, cache_key(&policy, true, &ctx, None));
        assert_ne!(k, cache_key(&policy, true, &ctx, Some("monitor")));
        let other = CompileContext {
            home: "/home/other".into(),
            ..CompileContext::default()
        };
        assert_ne!(k, cache_key(&policy, true, &other, None));
    }

    #[test]
    fn exit_codes_follow_the_shell_convention() {
        assert_eq!(exit_code(3 << 8), 3);
        assert_eq!(exit_code(libc::SIGKILL), 128 + 9);
    }
}
