//! Redacted reads: the agent reads `REDACTED_BY_POLICY` where a secret was.
//!
//! # Mechanism
//! After a read-only open has been allowed (`eval::checked_read`), [`after_read_open`] decides
//! whether the program gets the real file or a redacted copy:
//! - the path's decision is `redact` (a `redact` file rule such as `~/.aws/credentials`): the
//!   whole file is read (raw `pread`, up to [`RULE_CAP`]; larger: the open is refused), every
//!   detector finding *and* the value of every `key = value` / `KEY=VALUE` / `key: value` line
//!   whose key looks secret ([`secret_key`]) is replaced, and the result goes into a sealed
//!   memfd that is `dup3`ed over the program's fd (same number, same close-on-exec flag). Every
//!   read path (`read`, `pread`, `readv`, stdio, `mmap`, `fstat`'s size) then sees the same
//!   bytes. The file on disk never changes;
//! - otherwise, for a regular file inside the content scope (the policy's `[secrets] scope`
//!   minus `[secrets] exclude`, by default the workspace and `HOME` minus dependency, build,
//!   cache and VCS-object trees; `/proc/<pid>/environ` always), the first [`SCAN_CAP`] bytes
//!   are read (files larger than that pass unscanned), the keyword prefilter runs, and only on
//!   a hit the detectors (built-ins plus the policy's `[[secret]]`s, entropy floors included).
//!   Findings: each detector's decision applies (policy `[[secret]] decision`): `redact` → the
//!   memfd copy, `deny` → the open fails with `EACCES`, `audit` → recorded only;
//! - `/proc/<pid>/environ`: values of variables the policy's `[env] strip` names, of
//!   `guard_secrets::DEFAULT_SECRET_ENV_KEYS`, and detector findings in values are redacted
//!   (the guard's own `GUARD_*` variables are kept).
//!
//! Reads outside the scope cost a few comparisons on the name already computed (no syscall; the
//! policy's scope globs are precompiled once per process by shape). Inside it, a file this
//! process found clean is not rescanned while its device, inode, size, mtime and ctime are
//! unchanged (one `fstat`), and a redacted copy is kept (sealed memfd at a high fd) and reopened
//! for the next open of the same file version instead of rescanning: by name before the open
//! ([`open_kept`]: a `stat` of the path, and the program gets a new descriptor of the copy at
//! the flags it asked for; the file itself is not opened), or after it when the name differs
//! (`dup3`ed over the program's fd). The `stat` family is made to agree with the copy (see "What `stat` reports" below; GNU `cp` then copies the redacted
//! text). Monitor mode records what would be redacted or refused and hands over the real file.
//!
//! Writes: a write-class open (`O_WRONLY`, `O_RDWR`, `O_APPEND`, `O_TRUNC`, `O_CREAT`, `fopen`
//! "w"/"a"/"r+", `creat`) of a path whose *read* decision is `redact`, or of an existing file in
//! the content scope whose content a read would redact (or refuse), is refused with `EACCES`
//! ([`write_refused`]; the content check reuses the clean-file cache, so an unchanged clean
//! file costs one `open`+`fstat`): the program could otherwise read the secrets through an
//! `O_RDWR` fd, and it must never write into the copy believing it changed the file. Nothing is
//! lost: the file is untouched and the program is told so.
//!
//! # Records
//! Each redaction (the first open of a file version in a process; reopens served from the kept
//! copy are not recorded again) sends one audit event (action `read`, decision `redact`, the
//! file, the rule) whose reason names the detectors and counts (`redacted 2 secrets:
//! aws-access-key-id x1, key-value x1`), never a secret byte.
//!
//! # Fork safety
//! The detector set is built lazily per process and tagged with the pid; a process that finds
//! a set built by another pid (it was forked) builds its own and never touches the inherited one
//! (regexes compile on first use behind `OnceLock`s and keep a mutex-guarded cache: either could
//! be held forever by a thread that does not exist in the child). The inherited one is leaked.
//! The kept copies, the clean-file cache and the fd table are plain data and fds, valid in the
//! child as they are; the inherited `/proc/self/fd` directory fd names the parent's directory,
//! which serves the same memfds while the parent lives (every reopened object is checked to be
//! the recorded memfd), and once that fails the child opens its own. The reopen paths
//! allocate nothing (a vfork child may open files), and locks are try-locks taken only on the
//! redact path: a busy one is a miss, never a wait.

use crate::eval::{self, Outcome};
use crate::raw::{self, Buf};
use crate::state;
use core::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use guard_proto::{Decision, Ruleset};
use guard_secrets::{Detectors, Finding, REDACTED, Scope};

/// Largest file a `redact` rule's copy is made of; larger ones are refused (fail closed).
pub const RULE_CAP: usize = 64 << 20;
/// Content detection reads at most this much; larger files pass unscanned.
pub const SCAN_CAP: usize = 4 << 20;

struct PerProcess {
    pid: i32,
    detectors: Detectors,
}

static DETECTORS: AtomicPtr<PerProcess> = AtomicPtr::new(core::ptr::null_mut());

/// The builtin detectors with the policy's `[[secret]]` entries applied: an entry with a
/// builtin id replaces that detector (regex, keywords, decision, entropy floor: the compiled
/// ruleset carries them all), one with a new id is added. The policy compiler stores that set
/// precompiled in the ruleset (keyword tables included), which is mapped here instead of
/// rebuilt (~0.13 M instructions instead of ~2.4 M); without a valid image it is built from the
/// ruleset's entries. Regexes compile on first use either way.
fn build(rs: Option<Ruleset<'static>>) -> Detectors {
    match rs {
        Some(rs) => Detectors::for_ruleset(&rs),
        None => Detectors::builtin(),
    }
}

/// This process's detector set (built on first use, rebuilt after a fork).
fn detectors() -> &'static Detectors {
    let pid = raw::getpid();
    let cur = DETECTORS.load(Ordering::Acquire);
    // SAFETY: published pointers are never freed (a stale one is leaked, not dropped).
    if let Some(p) = unsafe { cur.as_ref() }
        && p.pid == pid
    {
        return &p.detectors;
    }
    let fresh = Box::into_raw(Box::new(PerProcess {
        pid,
        detectors: build(state::ruleset().copied()),
    }));
    match DETECTORS.compare_exchange(cur, fresh, Ordering::AcqRel, Ordering::Acquire) {
        // SAFETY: just published, never freed.
        Ok(_) => unsafe { &(*fresh).detectors },
        Err(other) => {
            // SAFETY: `other` was published by another thread of this process (or is null).
            match unsafe { other.as_ref() } {
                Some(p) if p.pid == pid => {
                    // SAFETY: `fresh` was never shared.
                    drop(unsafe { Box::from_raw(fresh) });
                    &p.detectors
                }
                // A racing stale pointer: keep ours unpublished but alive.
                _ => unsafe { &(*fresh).detectors },
            }
        }
    }
}

fn env_var(key: &[u8]) -> &'static [u8] {
    // SAFETY: libc's environment block; the value outlives this call in practice (programs
    // do not free their environment strings while opening files).
    unsafe { state::env_lookup(state::environ_ptr(), key) }.unwrap_or(&[])
}

/// Whether reads of `path` are scanned by content (pure: no syscall, no allocation): the
/// policy's `[secrets] scope` minus `[secrets] exclude` (`Ruleset::in_secret_scope`);
/// `/proc/<pid>/environ` always. Without a ruleset (not normally reached: nothing is redacted
/// then), guard-secrets' built-in scope over `HOME` and `GUARD_WORKSPACE`.
pub fn in_content_scope(path: &[u8]) -> bool {
    if is_proc_environ(path) {
        return true;
    }
    // Git's index is binary (paths and hashes, no file content) and large in big repositories;
    // every git command reads it.
    if path.ends_with(b"/.git/index") {
        return false;
    }
    match state::ruleset() {
        Some(rs) => crate::content_scope::in_scope(rs, path),
        None => Scope::new(env_var(b"HOME"), env_var(b"GUARD_WORKSPACE")).contains(path),
    }
}

fn is_proc_environ(path: &[u8]) -> bool {
    path.strip_prefix(b"/proc/")
        .and_then(|r| r.strip_suffix(b"/environ"))
        .is_some_and(|mid| {
            mid == b"self"
                || mid == b"thread-self"
                || (!mid.is_empty() && mid.iter().all(u8::is_ascii_digit))
                || mid.split(|c| *c == b'/').count() == 3 // <pid>/task/<tid>
        })
}

/// Called after a read-only open succeeded with fd `fd` naming `path`, `verdict` being the
/// decision taken for the path. Returns false when the open must be refused (`EACCES`; the
/// caller closes the fd).
pub fn after_read_open(fd: i32, path: &[u8], verdict: Option<Outcome>) -> bool {
    after_read_open_known(fd, path, verdict, None)
}

/// `after_read_open` given `path`'s content-scope answer when the caller already has it (the
/// open fast path's memo lookup answers verdict and scope at once).
pub fn after_read_open_known(
    fd: i32,
    path: &[u8],
    verdict: Option<Outcome>,
    scope: Option<bool>,
) -> bool {
    let by_rule = verdict.is_some_and(|o| o.enforce == Decision::Redact);
    if !by_rule && !scope.unwrap_or_else(|| in_content_scope(path)) {
        return true;
    }
    // A scope answer from the memo means a name the open fast path took, never under /proc.
    let environ = scope.is_none() && is_proc_environ(path);
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    if !raw::fstat(fd, &mut st) {
        return !by_rule;
    }
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return true;
    }
    if !by_rule && !environ && clean_cached(&st) {
        return true;
    }
    let monitor = state::ruleset().is_some_and(|r| r.monitor_mode());
    // A copy whose name's verdict was plain (allow, or the `redact` rule itself) may be handed
    // out by name (`open_kept`); an `audit` verdict must reach the evaluator (and record) on
    // every open.
    let plain = verdict
        .is_none_or(|o| !o.degraded && matches!(o.enforce, Decision::Allow | Decision::Redact));
    let kept_name: &[u8] = if plain && !environ { path } else { &[] };
    if !environ && !monitor && reuse_copy(fd, &st, by_rule, kept_name) {
        return true;
    }
    let size = st.st_size.max(0) as usize;
    let cap = if by_rule { RULE_CAP } else { SCAN_CAP };
    if size > cap {
        if by_rule {
            let o = outcome(Decision::Deny, verdict);
            eval::emit(
                "read",
                path,
                &o,
                false,
                "file under a redact rule is too large to redact; refused",
            );
            return false;
        }
        return true;
    }
    // procfs files report size 0: read until EOF (bounded by the cap).
    let Some(content) = read_all(fd, if size == 0 { cap } else { size + 1 }.min(cap)) else {
        // O_PATH fds cannot be read and give nothing away.
        return !by_rule || raw::errno() == libc::EBADF;
    };
    let det = detectors();
    if !by_rule && !environ && !det.might_contain_secret(&content) {
        mark_clean(&st);
        return true;
    }
    let mut spans: Vec<(usize, usize)> = Vec::new();
    let mut counts: Vec<(&str, u32)> = Vec::new();
    let mut strictest = Decision::Allow;
    if environ {
        environ_spans(det, &content, &mut spans, &mut counts);
        if !spans.is_empty() {
            strictest = Decision::Redact;
        }
    } else {
        let findings = det.scan(&content);
        for f in &findings {
            note(&mut counts, f.detector);
            strictest = strictest.max(f.decision);
            if f.decision >= Decision::Redact {
                spans.push((f.start, f.end));
            }
        }
        if by_rule {
            let mut kv = Vec::new();
            key_value_spans(&content, &mut kv);
            for (s, e) in kv {
                // A value a detector already found is counted once, under the detector.
                if !spans.iter().any(|&(a, b)| a < e && s < b) {
                    spans.push((s, e));
                    note(&mut counts, "key-value");
                }
            }
            strictest = strictest.max(Decision::Redact);
        }
    }
    if counts.is_empty() && !by_rule {
        if !environ {
            mark_clean(&st);
        }
        return true;
    }
    let decision = if strictest == Decision::Deny {
        Decision::Deny
    } else if strictest >= Decision::Redact {
        Decision::Redact
    } else {
        Decision::Audit
    };
    let mut why = Buf::<512>::new();
    describe(&mut why, decision, &counts);
    let o = outcome(decision, verdict);
    let o = if monitor {
        Outcome::from_verdict(decision, o.rule, false, true)
    } else {
        o
    };
    eval::emit("read", path, &o, false, raw::utf8_prefix(why.as_bytes()));
    if monitor || decision == Decision::Audit {
        return true;
    }
    if decision == Decision::Deny {
        return false;
    }
    let out = apply(&content, &mut spans);
    let Some((mem_dev, mem_ino)) = substitute(fd, &out) else {
        return false;
    };
    track_fd(fd, &st, mem_dev, mem_ino);
    if !environ {
        remember_copy(fd, &st, by_rule, kept_name);
    }
    true
}

/// Redacted copies (under a `redact` rule or by content detection), kept as an fd ≥
/// `KEEP_FD_MIN` (close-on-exec) for the reopen of an unchanged file, so that a tool reading
/// its config again and again pays neither a scan nor a new memfd:
/// - [`open_kept`], before the program's open: the path names a kept copy's file (same name,
///   and the `stat` of the path gives its device, inode, size, mtime and ctime), so the copy is
///   reopened directly at the caller's flags and the file itself is never opened. Per open:
///   `newfstatat(path)`, `openat(/proc/self/fd dir, "N")`, `fstat` (the reopened object is the
///   recorded memfd), and `fcntl(F_SETFL)` unless the caller asked for `O_NONBLOCK`;
/// - otherwise, after the real open ([`after_read_open`]): the same reopen `dup3`ed over the
///   program's fd (`reuse_copy`).
///
/// Either way the program's fd is a new open file description (its own offset). The reopened
/// object is checked to be the recorded memfd (device, inode), so a program that closed our fd
/// and reused the number gets no stale copy. Guarded by a try-lock (never waited on:
/// contention, or a lock inherited across fork, is a miss).
const COPY_SLOTS: usize = 8;
const KEEP_FD_MIN: usize = 512;
const SEALS: i32 = libc::F_SEAL_WRITE | libc::F_SEAL_GROW | libc::F_SEAL_SHRINK | libc::F_SEAL_SEAL;
/// Longest name a copy is served by before the open (longer ones take the path after it).
const KEPT_NAME_MAX: usize = 256;

#[derive(Clone, Copy)]
struct KeptCopy {
    key: [u64; 5],
    /// Made under a `redact` rule (key-value lines redacted too): a copy made by content
    /// detection alone must not serve a path under a rule.
    by_rule: bool,
    fd: i32,
    /// `fd` in decimal, NUL-terminated: the name of the copy in `/proc/self/fd`.
    fd_name: FdName,
    dev: u64,
    ino: u64,
    /// The name the copy was made for, when its verdict there was plain (`allow`, or the
    /// `redact` rule): a symlink-free absolute name (the fast path's lexical name, which
    /// `openat2(RESOLVE_NO_SYMLINKS)` opened, or the slow path's resolved one). Empty: none.
    name: [u8; KEPT_NAME_MAX],
    name_len: usize,
}

impl KeptCopy {
    fn name(&self) -> &[u8] {
        &self.name[..self.name_len.min(KEPT_NAME_MAX)]
    }
}

/// A non-negative fd in decimal with a NUL (at most 10 digits).
type FdName = [u8; 12];

fn fd_name(fd: i32) -> FdName {
    let mut digits = raw::Buf::<11>::new();
    raw::push_num(&mut digits, fd.max(0) as u64);
    let mut out = [0u8; 12];
    let d = digits.as_bytes();
    out[..d.len()].copy_from_slice(d);
    out
}

struct CopyCache {
    busy: core::sync::atomic::AtomicBool,
    next: core::cell::UnsafeCell<usize>,
    slots: core::cell::UnsafeCell<[Option<KeptCopy>; COPY_SLOTS]>,
}

// SAFETY: `slots`/`next` are only touched while `busy` is held (try-lock).
unsafe impl Sync for CopyCache {}

static COPIES: CopyCache = CopyCache {
    busy: core::sync::atomic::AtomicBool::new(false),
    next: core::cell::UnsafeCell::new(0),
    slots: core::cell::UnsafeCell::new([None; COPY_SLOTS]),
};

/// Hashes of the last components of the kept copies' names (0: none), readable without the
/// lock: [`open_kept`]'s rejection of every other open costs a scan of the caller's string and
/// eight loads, no syscall. Written under the copies' lock.
static KEPT_LAST: [AtomicU64; COPY_SLOTS] = [const { AtomicU64::new(0) }; COPY_SLOTS];

fn last_component(p: &[u8]) -> &[u8] {
    p.rsplit(|c| *c == b'/').next().unwrap_or(p)
}

/// FNV-1a, never 0.
fn name_hash(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, c| {
        (h ^ u64::from(*c)).wrapping_mul(0x0100_0000_01b3)
    }) | 1
}

fn with_copies<R>(
    f: impl FnOnce(&mut [Option<KeptCopy>; COPY_SLOTS], &mut usize) -> R,
) -> Option<R> {
    if COPIES
        .busy
        .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        return None;
    }
    // SAFETY: the try-lock above is held.
    let r = unsafe { f(&mut *COPIES.slots.get(), &mut *COPIES.next.get()) };
    COPIES.busy.store(false, Ordering::Release);
    Some(r)
}

fn fcntl(fd: i32, cmd: i32, arg: usize) -> isize {
    unsafe { raw::sys(libc::SYS_fcntl, fd as usize, cmd as usize, arg, 0) }
}

/// Whether a copy may be served by `name` (absolute, short enough, never under `/proc`, whose
/// names the lexical rewrite changes).
fn recordable(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= KEPT_NAME_MAX
        && name.first() == Some(&b'/')
        && !name.starts_with(b"/proc/")
}

/// Keeps the copy now at `fd` (made of the file whose `stat` is `st`) for later opens; `name`
/// as in [`KeptCopy::name`] (empty: reopened only after a real open).
fn remember_copy(fd: i32, st: &libc::stat, by_rule: bool, name: &[u8]) {
    let mut mst: libc::stat = unsafe { core::mem::zeroed() };
    if !raw::fstat(fd, &mut mst) {
        return;
    }
    let kept = fcntl(fd, libc::F_DUPFD_CLOEXEC, KEEP_FD_MIN);
    if kept < 0 {
        return;
    }
    let name = if recordable(name) { name } else { &[] };
    let mut c = KeptCopy {
        key: clean_key(st),
        by_rule,
        fd: kept as i32,
        fd_name: fd_name(kept as i32),
        dev: mst.st_dev,
        ino: mst.st_ino,
        name: [0; KEPT_NAME_MAX],
        name_len: name.len(),
    };
    c.name[..name.len()].copy_from_slice(name);
    let stored = with_copies(|slots, next| {
        // The same file version, or an older version of the same name (its copy is stale).
        let i = slots
            .iter()
            .position(|s| {
                s.is_some_and(|s| {
                    s.by_rule == by_rule
                        && (s.key == c.key || (!name.is_empty() && s.name() == name))
                })
            })
            .unwrap_or(*next % COPY_SLOTS);
        *next = next.wrapping_add(1);
        if let Some(old) = slots[i].replace(c) {
            close_if_ours(&old);
        }
        // The number was free, so any other entry naming it is stale (the program closed that
        // copy's fd): drop it without closing.
        for (j, s) in slots.iter_mut().enumerate() {
            if j != i && s.is_some_and(|s| s.fd == c.fd) {
                *s = None;
                KEPT_LAST[j].store(0, Ordering::Relaxed);
            }
        }
        KEPT_INOS[i].store(c.key[1], Ordering::Relaxed);
        ANY_KEPT.store(true, Ordering::Relaxed);
        let last = if name.is_empty() {
            0
        } else {
            name_hash(last_component(name))
        };
        KEPT_LAST[i].store(last, Ordering::Relaxed);
    });
    if stored.is_none() {
        raw::close(kept as i32);
    }
}

/// The flags [`open_kept`] reproduces on a reopened copy: read-only, `O_CLOEXEC` and
/// `O_NONBLOCK` as asked; `O_NOFOLLOW` is honoured by the `stat` (which does not follow a last
/// symlink) and `O_NOCTTY` means nothing for a regular file. Anything else (`O_PATH`,
/// `O_DIRECTORY`, `O_DIRECT`, `O_NOATIME`, `O_SYNC`, `O_ASYNC`, ...) takes the general path.
const KEPT_OPEN_FLAGS: i32 =
    libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_LARGEFILE | libc::O_NOFOLLOW | libc::O_NOCTTY;

/// Before a read-only open of (`dirfd`, `path`) with `flags`: when the path names the file of a
/// kept copy (the copy's name, and the path's `stat` is the copy's file version), returns a new
/// descriptor of the copy (the lowest free number, like the open it replaces) without opening
/// the file. `None`: take the general path (which rescans a changed file). The verdict is the
/// one the copy was made under: memoised when file verdicts depend only on the path
/// (`allow_cache::enabled`), otherwise evaluated again (only `allow` for a content copy and
/// `redact` for a rule's copy are served here). A `stat` that follows a symlink in a directory
/// component can only land on the same file version the copy was made from under this name, so
/// nothing is handed out that was not handed out before.
pub fn open_kept(dirfd: i32, path: *const core::ffi::c_char, flags: i32) -> Option<i32> {
    // Until this process keeps a copy (most never do), one load answers.
    if path.is_null() || flags & !KEPT_OPEN_FLAGS != 0 || !ANY_KEPT.load(Ordering::Relaxed) {
        return None;
    }
    let kept: [u64; COPY_SLOTS] = core::array::from_fn(|i| KEPT_LAST[i].load(Ordering::Relaxed));
    if kept.iter().all(|k| *k == 0) {
        return None;
    }
    // SAFETY: a NUL-terminated string from the caller of `open`.
    let p = unsafe { raw::cstr(path) };
    let last = last_component(p);
    if last.is_empty() || !kept.contains(&name_hash(last)) {
        return None;
    }
    let g = state::Inside::enter()?;
    let path_only = crate::allow_cache::enabled();
    let absolute = p.first() == Some(&b'/');
    // A cwd-relative name is stat'ed as the absolute name it is judged under, as the open fast
    // path opens it (`path::Anchor`).
    let mut anchor = crate::path::Anchor::empty();
    if !anchor.fill(dirfd, p) {
        return None;
    }
    let stat_path = anchor.kernel_name(path);
    let cwd = &anchor.cwd;
    // A kept name is clean and absolute (and never under /proc), so an absolute path equal to
    // one is its own lexical name: no cleaning needed. So is `cwd/name` for a single plain
    // component in a clean current directory (what `lexical_in` would build, compared in two
    // pieces without building it). Other spellings are made lexical.
    let joined =
        !absolute && dirfd == libc::AT_FDCWD && plain_component(p) && joinable(cwd.as_bytes());
    let mut lex = crate::path::PathBuf::new();
    if !absolute && !joined && !crate::path::lexical_in(dirfd, p, cwd.as_bytes(), &mut lex) {
        return None;
    }
    let (head, tail): (&[u8], &[u8]) = if absolute {
        (p, &[])
    } else if joined {
        (cwd.as_bytes(), p)
    } else {
        (lex.as_bytes(), &[])
    };
    // The name first (no syscall): other files of the same last name cost no `stat`.
    let found = with_copies(|slots, _| {
        slots
            .iter()
            .flatten()
            .find(|s| s.name_len > 0 && name_is(s.name(), head, tail))
            .map(|s| (s.key, s.fd_name, s.dev, s.ino, s.by_rule))
    })??;
    let (kept_key, fd_name, dev, ino, by_rule) = found;
    // The `stat` runs outside the library, like the open it stands for (it may wait on a slow
    // file system, and hooks called from a signal handler meanwhile must still be evaluated).
    drop(g);
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    let r = unsafe {
        raw::sys(
            libc::SYS_newfstatat,
            dirfd as isize as usize,
            stat_path as usize,
            &mut st as *mut libc::stat as usize,
            libc::AT_SYMLINK_NOFOLLOW as usize,
        )
    };
    // Another version of the file (or not a regular file any more): the general path scans it.
    if r != 0 || st.st_mode & libc::S_IFMT != libc::S_IFREG || clean_key(&st) != kept_key {
        return None;
    }
    let _g = state::Inside::enter()?;
    if !path_only {
        if joined && !(lex.push(cwd.as_bytes()) && lex.push(b"/") && lex.push(p)) {
            return None;
        }
        let name = if absolute { p } else { lex.as_bytes() };
        let envl = eval::CEnv(state::environ_ptr());
        let ctx = guard_proto::Context {
            env: &envl,
            cwd: cwd.as_bytes(),
            agent: state::cfg().agent.as_bytes(),
        };
        let o = eval::evaluate(
            &guard_proto::Action::File {
                path: name,
                access: guard_proto::FileAccess::Read,
            },
            &ctx,
        );
        let served = match o.enforce {
            Decision::Redact => by_rule,
            Decision::Allow => !by_rule,
            _ => false,
        };
        if !served || o.degraded {
            return None;
        }
    }
    let nfd = reopen_kept(
        &fd_name,
        dev,
        ino,
        flags & (libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_LARGEFILE),
    )?;
    track_fd(nfd, &st, dev, ino);
    Some(nfd)
}

/// One path component that `lexical_in` keeps as it is (not empty, `.` or `..`; no `/`).
fn plain_component(p: &[u8]) -> bool {
    !p.is_empty() && p != b"." && p != b".." && !p.contains(&b'/')
}

/// A current directory that `lexical_in` extends by `/name` unchanged: absolute, not the root
/// (no trailing `/`), and not under `/proc` (whose names it rewrites). The remembered current
/// directory is the kernel's `getcwd`, already free of `.`, `..` and doubled slashes.
fn joinable(cwd: &[u8]) -> bool {
    cwd.len() > 1
        && cwd.first() == Some(&b'/')
        && cwd.last() != Some(&b'/')
        && cwd != b"/proc"
        && !cwd.starts_with(b"/proc/")
}

/// Whether `name` is `head` (`tail` empty) or `head/tail`.
fn name_is(name: &[u8], head: &[u8], tail: &[u8]) -> bool {
    if tail.is_empty() {
        return name == head;
    }
    name.len() == head.len() + 1 + tail.len()
        && name.starts_with(head)
        && name.get(head.len()) == Some(&b'/')
        && name.ends_with(tail)
}

/// After the real open of `fd` (file `st`): the kept copy of that file version, if any,
/// `dup3`ed over it. A copy kept without a name (first opened by another, or an `audit`, name)
/// takes `name` (as in [`KeptCopy::name`]), so that the next open by it skips the real open.
fn reuse_copy(fd: i32, st: &libc::stat, by_rule: bool, name: &[u8]) -> bool {
    let key = clean_key(st);
    let Some(Some(c)) = with_copies(|slots, _| {
        let i = slots
            .iter()
            .position(|s| s.is_some_and(|s| s.key == key && s.by_rule == by_rule))?;
        let s = slots[i].as_mut()?;
        if s.name_len == 0 && recordable(name) {
            s.name[..name.len()].copy_from_slice(name);
            s.name_len = name.len();
            KEPT_LAST[i].store(name_hash(last_component(name)), Ordering::Relaxed);
        }
        Some(*s)
    }) else {
        return false;
    };
    let flags = fcntl(fd, libc::F_GETFD, 0);
    if flags < 0 {
        return false;
    }
    let Some(nfd) = reopen_kept(&c.fd_name, c.dev, c.ino, libc::O_CLOEXEC) else {
        forget_copy(&key);
        return false;
    };
    let cloexec = if flags as i32 & libc::FD_CLOEXEC != 0 {
        libc::O_CLOEXEC
    } else {
        0
    };
    let ok = unsafe {
        raw::sys(
            libc::SYS_dup3,
            nfd as usize,
            fd as usize,
            cloexec as usize,
            0,
        )
    } == fd as isize;
    raw::close(nfd);
    if !ok {
        forget_copy(&key);
        return false;
    }
    track_fd(fd, st, c.dev, c.ino);
    // Recorded once per process and file version (at the first open): a tool re-reading its
    // config in a loop would otherwise flood the log with identical events.
    true
}

/// A new open file description of the kept copy whose fd is `name` (decimal; the program's offset must be its
/// own, so a dup will not do) with the flags `flags` (`O_CLOEXEC`, `O_NONBLOCK`), verified to
/// be the recorded memfd `dev`/`ino` (the program may have closed our fd and reused the
/// number; the seals need no second look: they cannot be removed, and a memfd's inode number
/// is not reused while it lives). Through the `/proc/self/fd` directory fd when there is one (`openat(dir, "N")`
/// skips resolving `/proc/self`: measured 1.5-3 µs vs 2.7-3.7 µs here), else the full path.
fn reopen_kept(name: &FdName, dev: u64, ino: u64, flags: i32) -> Option<i32> {
    let digits = &name[..name.iter().position(|c| *c == 0).unwrap_or(name.len())];
    // O_NONBLOCK always: should the program have closed our directory fd and reused the number
    // for a directory of its own holding a FIFO of that name, the open must not hang. It is
    // cleared again unless asked for (it shows in the program's F_GETFL).
    let how = libc::O_RDONLY | libc::O_NONBLOCK | flags;
    let verify = |nfd: i32| {
        let mut nst: libc::stat = unsafe { core::mem::zeroed() };
        if raw::fstat(nfd, &mut nst) && nst.st_dev == dev && nst.st_ino == ino {
            if flags & libc::O_NONBLOCK == 0 {
                fcntl(nfd, libc::F_SETFL, 0);
            }
            Some(nfd)
        } else {
            raw::close(nfd);
            None
        }
    };
    if let Some(dir) = proc_fd_dir() {
        let nfd = raw::openat(dir, name.as_ptr().cast(), how, 0);
        if nfd >= 0
            && let Some(nfd) = verify(nfd)
        {
            return Some(nfd);
        }
        // Not ours any more (the program reused the number, or this is a forked child whose
        // parent, whose directory it names, has gone): make a new one next time.
        let _ = PROC_FD_DIR.compare_exchange(dir, -1, Ordering::AcqRel, Ordering::Relaxed);
    }
    let mut link = Buf::<64>::new();
    link.push(b"/proc/self/fd/");
    link.push(digits);
    let nfd = raw::openat(libc::AT_FDCWD, link.c_ptr(), how, 0);
    if nfd < 0 {
        return None;
    }
    verify(nfd)
}

/// This process's `/proc/self/fd` as an `O_PATH` directory fd (≥ `KEEP_FD_MIN`,
/// close-on-exec); -1: none yet. Not tagged with the pid (that cost a `getpid` per reopen): a
/// forked child uses the inherited one, which names the parent's directory, and gets the same
/// memfd from the parent's table (the reopened object is verified either way); once the parent
/// has gone or changed the number, the open fails and the child opens its own.
static PROC_FD_DIR: core::sync::atomic::AtomicI32 = core::sync::atomic::AtomicI32::new(-1);

fn proc_fd_dir() -> Option<i32> {
    let cur = PROC_FD_DIR.load(Ordering::Acquire);
    if cur >= 0 {
        return Some(cur);
    }
    let d = raw::openat(
        libc::AT_FDCWD,
        c"/proc/self/fd".as_ptr(),
        libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        0,
    );
    if d < 0 {
        return None;
    }
    let hi = fcntl(d, libc::F_DUPFD_CLOEXEC, KEEP_FD_MIN);
    raw::close(d);
    if hi < 0 {
        return None;
    }
    let hi = hi as i32;
    match PROC_FD_DIR.compare_exchange(cur, hi, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => Some(hi),
        Err(other) => {
            raw::close(hi);
            (other >= 0).then_some(other)
        }
    }
}

/// Closes a kept copy only if its fd still is that memfd (the program may have closed it and
/// reused the number).
fn close_if_ours(c: &KeptCopy) {
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    if raw::fstat(c.fd, &mut st) && st.st_dev == c.dev && st.st_ino == c.ino {
        raw::close(c.fd);
    }
}

fn forget_copy(key: &[u64; 5]) {
    with_copies(|slots, _| {
        for (i, s) in slots.iter_mut().enumerate() {
            if s.is_some_and(|c| c.key == *key) {
                // The fd may already be someone else's: do not close it, just drop the entry.
                *s = None;
                KEPT_LAST[i].store(0, Ordering::Relaxed);
            }
        }
    });
}

/// # What `stat` reports for a redacted file
/// The program's fd is a memfd, but tools compare `fstat(fd)` with `stat(path)` (GNU `cp`:
/// "replaced while being copied" when device/inode differ). So the `fstat` family of an fd
/// holding a copy reports the *file's* identity (device, inode, mode, owner, links, times) with
/// the *copy's* size and blocks, and the `stat` family of a path whose copy this process holds
/// reports the copy's size: every view agrees with what `read` returns.
///
/// Bookkeeping, all without allocation: a bitmap of fds (below `FD_TRACK`) that were given a
/// copy, read with one relaxed load on every `fstat` (the allow path), and a small table of
/// (fd, memfd identity, file `stat`) records behind a try-lock taken only for flagged fds. A
/// record is trusted only while the fd's real `fstat` still names its memfd (the program may
/// have closed the fd and reused the number); a busy lock is a miss (the memfd's own identity
/// is reported, as without this layer). A dup of the fd is not tracked.
const FD_TRACK: usize = 1 << 16;
const FD_RECORDS: usize = 32;

static FD_FLAGS: [AtomicU64; FD_TRACK / 64] = [const { AtomicU64::new(0) }; FD_TRACK / 64];

#[derive(Clone, Copy)]
struct FdRecord {
    fd: i32,
    mem_dev: u64,
    mem_ino: u64,
    file: libc::stat,
}

struct FdTable {
    busy: core::sync::atomic::AtomicBool,
    next: core::cell::UnsafeCell<usize>,
    slots: core::cell::UnsafeCell<[Option<FdRecord>; FD_RECORDS]>,
}

// SAFETY: `slots`/`next` are only touched while `busy` is held (try-lock).
unsafe impl Sync for FdTable {}

static FDS: FdTable = FdTable {
    busy: core::sync::atomic::AtomicBool::new(false),
    next: core::cell::UnsafeCell::new(0),
    slots: core::cell::UnsafeCell::new([None; FD_RECORDS]),
};

fn with_fds<R>(f: impl FnOnce(&mut [Option<FdRecord>; FD_RECORDS], &mut usize) -> R) -> Option<R> {
    if FDS
        .busy
        .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        return None;
    }
    // SAFETY: the try-lock above is held.
    let r = unsafe { f(&mut *FDS.slots.get(), &mut *FDS.next.get()) };
    FDS.busy.store(false, Ordering::Release);
    Some(r)
}

fn fd_bit(fd: i32) -> Option<(&'static AtomicU64, u64)> {
    let i = usize::try_from(fd).ok().filter(|&i| i < FD_TRACK)?;
    Some((&FD_FLAGS[i / 64], 1u64 << (i % 64)))
}

/// Records that `fd` now holds a copy (the memfd `mem_dev`/`mem_ino`) of the file whose `stat`
/// is `file`.
fn track_fd(fd: i32, file: &libc::stat, mem_dev: u64, mem_ino: u64) {
    let Some((word, bit)) = fd_bit(fd) else {
        return;
    };
    let rec = FdRecord {
        fd,
        mem_dev,
        mem_ino,
        file: *file,
    };
    let stored = with_fds(|slots, next| {
        let i = slots
            .iter()
            .position(|s| s.is_some_and(|s| s.fd == fd))
            .unwrap_or(*next % FD_RECORDS);
        *next = next.wrapping_add(1);
        if let Some(old) = slots[i].replace(rec)
            && old.fd != fd
            && let Some((w, b)) = fd_bit(old.fd)
        {
            w.fetch_and(!b, Ordering::Relaxed);
        }
    });
    if stored.is_some() {
        word.fetch_or(bit, Ordering::Release);
    }
}

/// After a successful `fstat`-family call on `fd` filled `st`: when `fd` holds a redacted copy,
/// report the file's identity with the copy's size (see above). One relaxed load otherwise.
pub fn fix_fd_stat(fd: i32, st: &mut libc::stat) {
    let Some((word, bit)) = fd_bit(fd) else {
        return;
    };
    if word.load(Ordering::Relaxed) & bit == 0 {
        return;
    }
    let Some(Some(rec)) = with_fds(|slots, _| slots.iter().flatten().find(|r| r.fd == fd).copied())
    else {
        return;
    };
    if rec.mem_dev != st.st_dev || rec.mem_ino != st.st_ino {
        // Closed and reused: forget it.
        word.fetch_and(!bit, Ordering::Relaxed);
        return;
    }
    let (size, blocks, blksize) = (st.st_size, st.st_blocks, st.st_blksize);
    *st = rec.file;
    st.st_size = size;
    st.st_blocks = blocks;
    st.st_blksize = blksize;
}

/// The same for `statx` (fd form): identity fields from the file, size and blocks kept.
pub fn fix_fd_statx(fd: i32, stx: &mut libc::statx) {
    let Some((word, bit)) = fd_bit(fd) else {
        return;
    };
    if word.load(Ordering::Relaxed) & bit == 0 {
        return;
    }
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    if !raw::fstat(fd, &mut st) {
        return;
    }
    fix_fd_stat(fd, &mut st);
    stx.stx_ino = st.st_ino;
    stx.stx_dev_major = libc::major(st.st_dev);
    stx.stx_dev_minor = libc::minor(st.st_dev);
    stx.stx_mode = st.st_mode as u16;
    stx.stx_nlink = st.st_nlink as u32;
    stx.stx_uid = st.st_uid;
    stx.stx_gid = st.st_gid;
    stx.stx_mtime.tv_sec = st.st_mtime;
    stx.stx_mtime.tv_nsec = st.st_mtime_nsec as u32;
    stx.stx_ctime.tv_sec = st.st_ctime;
    stx.stx_ctime.tv_nsec = st.st_ctime_nsec as u32;
}

/// After a successful `stat`-family call on a path filled `st`: when this process holds a
/// redacted copy of that file version, report the copy's size and blocks. Lock-free and
/// syscall-free unless the inode is one of the kept copies' (`KEPT_INOS`).
#[inline]
pub fn fix_path_stat(st: &mut libc::stat) {
    if ANY_KEPT.load(Ordering::Relaxed) {
        fix_path_stat_kept(st);
    }
}

fn fix_path_stat_kept(st: &mut libc::stat) {
    let ino = st.st_ino;
    if ino == 0 || !KEPT_INOS.iter().any(|k| k.load(Ordering::Relaxed) == ino) {
        return;
    }
    let key = clean_key(st);
    let Some(Some(c)) =
        with_copies(|slots, _| slots.iter().flatten().find(|s| s.key == key).copied())
    else {
        return;
    };
    let mut mst: libc::stat = unsafe { core::mem::zeroed() };
    if raw::fstat(c.fd, &mut mst) && mst.st_dev == c.dev && mst.st_ino == c.ino {
        st.st_size = mst.st_size;
        st.st_blocks = mst.st_blocks;
    }
}

/// The same for `statx` (path form).
#[inline]
pub fn fix_path_statx(stx: &mut libc::statx) {
    if ANY_KEPT.load(Ordering::Relaxed) {
        fix_path_statx_kept(stx);
    }
}

fn fix_path_statx_kept(stx: &mut libc::statx) {
    let ino = stx.stx_ino;
    if ino == 0 || !KEPT_INOS.iter().any(|k| k.load(Ordering::Relaxed) == ino) {
        return;
    }
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    st.st_dev = libc::makedev(stx.stx_dev_major, stx.stx_dev_minor);
    st.st_ino = stx.stx_ino;
    st.st_size = stx.stx_size as i64;
    st.st_mtime = stx.stx_mtime.tv_sec;
    st.st_mtime_nsec = i64::from(stx.stx_mtime.tv_nsec);
    st.st_ctime = stx.stx_ctime.tv_sec;
    st.st_ctime_nsec = i64::from(stx.stx_ctime.tv_nsec);
    let before = st.st_size;
    fix_path_stat(&mut st);
    if st.st_size != before {
        stx.stx_size = st.st_size as u64;
        stx.stx_blocks = st.st_blocks as u64;
    }
}

/// Original inodes of the kept copies (`COPIES`), readable without the lock: the `stat` hooks'
/// fast rejection. Written under the copies' lock.
static KEPT_INOS: [AtomicU64; COPY_SLOTS] = [const { AtomicU64::new(0) }; COPY_SLOTS];

/// Whether this process has ever kept a copy: until then every `stat` (git's 10,000 `lstat`s)
/// is answered with this one load.
static ANY_KEPT: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Files this process found clean, so that a tool opening the same unchanged file again and
/// again (a build re-reading its sources, a benchmark) scans it once. Keyed by device, inode,
/// size, mtime and ctime (any write changes ctime); a slot is trusted only when its check word
/// matches its fields, so a torn concurrent update reads as a miss. Inherited across fork as
/// plain numbers (safe).
const CLEAN_SLOTS: usize = 256;

struct Slot([AtomicU64; 6]);

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY_SLOT: Slot = Slot([const { AtomicU64::new(0) }; 6]);
static CLEAN: [Slot; CLEAN_SLOTS] = [EMPTY_SLOT; CLEAN_SLOTS];

fn clean_key(st: &libc::stat) -> [u64; 5] {
    [
        st.st_dev,
        st.st_ino,
        st.st_size as u64,
        (st.st_mtime as u64).wrapping_mul(1_000_000_000) ^ st.st_mtime_nsec as u64,
        (st.st_ctime as u64).wrapping_mul(1_000_000_000) ^ st.st_ctime_nsec as u64,
    ]
}

fn check_word(k: &[u64; 5]) -> u64 {
    k.iter().fold(0x9e37_79b9_7f4a_7c15u64, |h, v| {
        (h ^ v).wrapping_mul(0x1000_0000_01b3).rotate_left(29)
    }) | 1
}

fn slot_of(k: &[u64; 5]) -> &'static Slot {
    let i = (k[0] ^ k[1].wrapping_mul(0x9e37_79b9_7f4a_7c15)) as usize % CLEAN_SLOTS;
    &CLEAN[i]
}

/// Whether the regular file open as `fd` is one this process already scanned and found clean,
/// unchanged since (device, inode, size, mtime, ctime): what `after_read_open` answers first
/// for a plain allowed read, without entering the library (one `fstat`, a few loads; raw
/// syscall, no allocation, no hook).
pub fn known_clean(fd: i32) -> bool {
    // SAFETY: `stat` is plain integers; all-zero is a valid value.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    raw::fstat(fd, &mut st) && st.st_mode & libc::S_IFMT == libc::S_IFREG && clean_cached(&st)
}

fn clean_cached(st: &libc::stat) -> bool {
    let k = clean_key(st);
    let s = slot_of(&k);
    let got: [u64; 6] = core::array::from_fn(|i| s.0[i].load(Ordering::Acquire));
    got[..5] == k[..] && got[5] == check_word(&k)
}

fn mark_clean(st: &libc::stat) {
    let k = clean_key(st);
    let s = slot_of(&k);
    s.0[5].store(0, Ordering::Release);
    for (i, v) in k.iter().enumerate() {
        s.0[i].store(*v, Ordering::Release);
    }
    s.0[5].store(check_word(&k), Ordering::Release);
}

fn outcome(d: Decision, verdict: Option<Outcome>) -> Outcome {
    Outcome {
        enforce: d,
        effective: d,
        rule: verdict
            .filter(|o| o.enforce == Decision::Redact)
            .and_then(|o| o.rule),
        degraded: false,
        asked: None,
        builtin: None,
    }
}

fn note<'a>(counts: &mut Vec<(&'a str, u32)>, id: &'a str) {
    match counts.iter_mut().find(|c| c.0 == id) {
        Some(c) => c.1 += 1,
        None => counts.push((id, 1)),
    }
}

/// `redacted 3 secrets: aws-access-key-id x1, key-value x2` (ids and counts only).
fn describe(out: &mut Buf<512>, d: Decision, counts: &[(&str, u32)]) {
    let total: u32 = counts.iter().map(|c| c.1).sum();
    out.push_trunc(match d {
        Decision::Deny => b"refused, secrets found: ",
        Decision::Audit => b"secrets found (recorded only): ",
        _ => b"redacted ",
    });
    raw::push_num(out, total as u64);
    out.push_trunc(if total == 1 { b" secret" } else { b" secrets" });
    for (i, (id, n)) in counts.iter().enumerate() {
        out.push_trunc(if i == 0 { b": " } else { b", " });
        out.push_trunc(id.as_bytes());
        out.push_trunc(b" x");
        raw::push_num(out, *n as u64);
    }
}

/// First buffer size of [`read_all`].
const READ_CHUNK: usize = 64 << 10;

/// Reads up to `cap` bytes from offset 0 without moving the fd's offset. The buffer starts at
/// most [`READ_CHUNK`] long and doubles as the file turns out longer: callers pass the cap for
/// files whose size is unknown (procfs, an empty file), and a cap-sized buffer per open (4 or
/// 64 MiB, mapped, faulted in and unmapped) cost ~190 µs for every empty file in scope.
fn read_all(fd: i32, cap: usize) -> Option<Vec<u8>> {
    let cap = cap.max(1);
    // Not zeroed: only what the kernel wrote is ever made part of the vector. (Zeroing the
    // first 64 KiB for every empty file in scope cost ~65,000 instructions per first open.)
    let mut buf: Vec<u8> = Vec::with_capacity(cap.min(READ_CHUNK));
    loop {
        if buf.len() == buf.capacity() {
            if buf.len() >= cap {
                break;
            }
            let grow = buf.len().saturating_mul(2).min(cap) - buf.len();
            buf.reserve_exact(grow);
        }
        let room = buf.capacity() - buf.len();
        let r = unsafe {
            raw::sys6(
                libc::SYS_pread64,
                [
                    fd as usize,
                    buf.as_mut_ptr().add(buf.len()) as usize,
                    room,
                    buf.len(),
                    0,
                    0,
                ],
            )
        };
        if r == -(libc::EINTR as isize) {
            continue;
        }
        if r < 0 {
            raw::set_errno((-r) as i32);
            return None;
        }
        if r == 0 {
            break;
        }
        // SAFETY: the kernel wrote `r <= room` bytes right after the initialised part.
        unsafe { buf.set_len(buf.len() + (r as usize).min(room)) };
    }
    Some(buf)
}

/// Replaces every span (sorted and merged here) with the placeholder.
fn apply(content: &[u8], spans: &mut [(usize, usize)]) -> Vec<u8> {
    spans.sort_unstable();
    let mut out = Vec::with_capacity(content.len());
    let mut pos = 0usize;
    let mut i = 0usize;
    while i < spans.len() {
        let (s, mut e) = spans[i];
        i += 1;
        // Overlapping or touching spans become one placeholder.
        while i < spans.len() && spans[i].0 <= e {
            e = e.max(spans[i].1);
            i += 1;
        }
        let (s, e) = (s.max(pos).min(content.len()), e.min(content.len()));
        if e <= s {
            continue;
        }
        out.extend_from_slice(content.get(pos..s).unwrap_or(&[]));
        out.extend_from_slice(REDACTED);
        pos = e;
    }
    out.extend_from_slice(content.get(pos..).unwrap_or(&[]));
    out
}

/// Words that make a key's value secret in a file under a `redact` rule.
const SECRET_WORDS: &[&[u8]] = &[
    b"password",
    b"passwd",
    b"pwd",
    b"secret",
    b"token",
    b"key",
    b"credential",
    b"auth",
    b"private",
    b"session",
    b"cookie",
    b"signature",
    b"dsn",
    b"conn",
];

/// Whether a key names a secret (ASCII case-insensitive word match).
pub fn secret_key(key: &[u8]) -> bool {
    let mut low = [0u8; 128];
    let n = key.len().min(low.len());
    for (d, s) in low.iter_mut().zip(key) {
        *d = s.to_ascii_lowercase();
    }
    let k = &low[..n];
    SECRET_WORDS
        .iter()
        .any(|w| k.windows(w.len()).any(|win| win == *w))
}

/// Spans of the values of `key = value` / `KEY=VALUE` / `key: value` lines (optionally
/// `export`ed, quoted keys and values) whose key looks secret.
pub fn key_value_spans(content: &[u8], spans: &mut Vec<(usize, usize)>) {
    let mut off = 0usize;
    for line in content.split(|c| *c == b'\n') {
        let base = off;
        off += line.len() + 1;
        let Some(sep) = line.iter().position(|c| *c == b'=' || *c == b':') else {
            continue;
        };
        let mut key = trim(&line[..sep]);
        if let Some(k) = key.strip_prefix(b"export ") {
            key = trim(k);
        }
        let key = strip_quotes(key);
        if key.is_empty()
            || key.len() > 128
            || !key
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || b"_-. ".contains(c))
            || !secret_key(key)
        {
            continue;
        }
        let rest = &line[sep + 1..];
        let lead = rest.len() - trim_start(rest).len();
        let mut v = trim(rest);
        if let Some(x) = v.strip_suffix(b",") {
            v = trim(x);
        }
        let inner = strip_quotes(v);
        let qs = if inner.len() < v.len() { 1 } else { 0 };
        if inner.is_empty() || inner == REDACTED {
            continue;
        }
        let start = base + sep + 1 + lead + qs;
        spans.push((start, start + inner.len()));
    }
}

fn trim_start(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|c| c.is_ascii_whitespace()).count();
    &b[n..]
}

fn trim(b: &[u8]) -> &[u8] {
    let b = trim_start(b);
    let n = b
        .iter()
        .rev()
        .take_while(|c| c.is_ascii_whitespace())
        .count();
    &b[..b.len() - n]
}

fn strip_quotes(b: &[u8]) -> &[u8] {
    for q in [b'"', b'\'', b'`'] {
        if b.len() >= 2 && b[0] == q && b[b.len() - 1] == q {
            return &b[1..b.len() - 1];
        }
    }
    b
}

/// Spans to redact in an environ block: values of stripped/secret keys, and findings inside
/// other values. `GUARD_*` are kept.
fn environ_spans<'a>(
    det: &'a Detectors,
    env: &[u8],
    spans: &mut Vec<(usize, usize)>,
    counts: &mut Vec<(&'a str, u32)>,
) {
    let rs = state::ruleset();
    let mut off = 0usize;
    for rec in env.split(|c| *c == 0) {
        let base = off;
        off += rec.len() + 1;
        let Some(eq) = rec.iter().position(|c| *c == b'=') else {
            continue;
        };
        let key = &rec[..eq];
        let val = &rec[eq + 1..];
        if key.starts_with(b"GUARD_") || val.is_empty() {
            continue;
        }
        let listed = rs.is_some_and(|r| r.env_strip_matches(key))
            || guard_secrets::DEFAULT_SECRET_ENV_KEYS
                .iter()
                .any(|g| guard_secrets::env_key_matches(g.as_bytes(), key));
        if listed {
            spans.push((base + eq + 1, base + rec.len()));
            note(counts, "env-strip");
            continue;
        }
        if det.might_contain_secret(rec) {
            let found: Vec<Finding<'a>> = det.scan(rec);
            for f in found {
                if f.start > eq && f.decision >= Decision::Redact {
                    spans.push((base + f.start, base + f.end));
                    note(counts, f.detector);
                }
            }
        }
    }
}

/// Puts a sealed memfd holding `data` in place of `fd` (same number and close-on-exec flag);
/// returns the memfd's device and inode.
fn substitute(fd: i32, data: &[u8]) -> Option<(u64, u64)> {
    let flags = unsafe { raw::sys(libc::SYS_fcntl, fd as usize, libc::F_GETFD as usize, 0, 0) };
    if flags < 0 {
        return None;
    }
    let name = c"guard-redacted";
    let mfd = unsafe {
        raw::sys(
            libc::SYS_memfd_create,
            name.as_ptr() as usize,
            (libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) as usize,
            0,
            0,
        )
    };
    if mfd < 0 {
        return None;
    }
    let mfd = mfd as i32;
    let seals = SEALS;
    let cloexec = if flags as i32 & libc::FD_CLOEXEC != 0 {
        libc::O_CLOEXEC
    } else {
        0
    };
    let ok = write_at(mfd, data)
        && unsafe {
            raw::sys(
                libc::SYS_fcntl,
                mfd as usize,
                libc::F_ADD_SEALS as usize,
                seals as usize,
                0,
            )
        } == 0
        && unsafe {
            raw::sys(
                libc::SYS_dup3,
                mfd as usize,
                fd as usize,
                cloexec as usize,
                0,
            )
        } == fd as isize;
    let mut mst: libc::stat = unsafe { core::mem::zeroed() };
    let ok = ok && raw::fstat(mfd, &mut mst);
    raw::close(mfd);
    ok.then_some((mst.st_dev, mst.st_ino))
}

fn write_at(fd: i32, mut data: &[u8]) -> bool {
    let mut off = 0usize;
    while !data.is_empty() {
        let r = unsafe {
            raw::sys6(
                libc::SYS_pwrite64,
                [fd as usize, data.as_ptr() as usize, data.len(), off, 0, 0],
            )
        };
        if r == -(libc::EINTR as isize) {
            continue;
        }
        if r <= 0 {
            return false;
        }
        off += r as usize;
        data = data.get(r as usize..).unwrap_or(&[]);
    }
    true
}

/// A write-class open of a path whose read decision is `redact`, or of an existing in-scope file
/// whose content a read would redact: refused (see the module doc). Returns true when the call
/// must fail with `EACCES`. The path rule is evaluated on the lexical name (pure); the content
/// check opens and (unless cached clean) scans the file.
pub fn write_refused(dirfd: i32, path: *const core::ffi::c_char) -> bool {
    let Some(rs) = state::ruleset() else {
        return false;
    };
    if path.is_null() {
        return false;
    }
    let p = unsafe { raw::cstr(path) };
    let mut cwd = crate::path::PathBuf::new();
    if !crate::path::getcwd(&mut cwd) {
        cwd.clear();
    }
    let mut lex = crate::path::PathBuf::new();
    if !crate::path::lexical_in(dirfd, p, cwd.as_bytes(), &mut lex) {
        return false;
    }
    let o = eval::with_ctx(state::environ_ptr(), |ctx| {
        eval::evaluate(
            &guard_proto::Action::File {
                path: lex.as_bytes(),
                access: guard_proto::FileAccess::Read,
            },
            ctx,
        )
    });
    if rs.monitor_mode() {
        return false;
    }
    let mut why = Buf::<512>::new();
    if o.enforce == Decision::Redact {
        why.push_trunc(b"writes to a file the agent sees redacted are refused (the copy is read-only; the file is unchanged)");
    } else if !(in_content_scope(lex.as_bytes()) && content_would_redact(dirfd, path, &mut why)) {
        return false;
    }
    let d = Outcome {
        enforce: Decision::Deny,
        effective: Decision::Deny,
        rule: o.rule.filter(|_| o.enforce == Decision::Redact),
        degraded: false,
        asked: None,
        builtin: None,
    };
    eval::emit(
        "write",
        lex.as_bytes(),
        &d,
        false,
        raw::utf8_prefix(why.as_bytes()),
    );
    true
}

/// Whether a read of the existing regular file `path` would be redacted or refused by content
/// detection (the write-class open of such a file is refused like one under a `redact` rule:
/// an `O_RDWR` fd would read the secrets, and no copy can take writes). Opens the file
/// read-only itself (raw, non-blocking: a FIFO must not hang us); a file this process found
/// clean is not rescanned (one `fstat`). Writes the event's reason to `why`.
fn content_would_redact(dirfd: i32, path: *const core::ffi::c_char, why: &mut Buf<512>) -> bool {
    let fd = raw::openat(
        dirfd,
        path,
        libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_NOCTTY,
        0,
    );
    if fd < 0 {
        // Nothing there yet (O_CREAT) or not readable: nothing to leak through this open.
        return false;
    }
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    let verdict = raw::fstat(fd, &mut st)
        && st.st_mode & libc::S_IFMT == libc::S_IFREG
        && !clean_cached(&st)
        && (st.st_size.max(0) as usize) <= SCAN_CAP
        && match read_all(fd, st.st_size.max(0) as usize + 1) {
            None => false,
            Some(content) => {
                let det = detectors();
                let findings = if det.might_contain_secret(&content) {
                    det.scan(&content)
                } else {
                    Vec::new()
                };
                if findings.is_empty() {
                    mark_clean(&st);
                }
                let mut counts: Vec<(&str, u32)> = Vec::new();
                for f in findings.iter().filter(|f| f.decision >= Decision::Redact) {
                    note(&mut counts, f.detector);
                }
                if !counts.is_empty() {
                    why.push_trunc(b"writes to a file whose reads are redacted by content detection are refused (");
                    let mut d = Buf::<512>::new();
                    describe(&mut d, Decision::Redact, &counts);
                    why.push_trunc(d.as_bytes());
                    why.push_trunc(b")");
                }
                !counts.is_empty()
            }
        };
    raw::close(fd);
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redact_kv(s: &str) -> String {
        let mut spans = Vec::new();
        key_value_spans(s.as_bytes(), &mut spans);
        String::from_utf8(apply(s.as_bytes(), &mut spans)).unwrap_or_default()
    }

    #[test]
    fn key_values_with_secret_keys_are_redacted() {
        let s = "[default]\naws_access_key_id = AKIAZZZZ\naws_secret_access_key=abc/def\nregion = eu-west-1\n";
        let r = redact_kv(s);
        assert_eq!(
            r,
            "[default]\naws_access_key_id = REDACTED_BY_POLICY\naws_secret_access_key=REDACTED_BY_POLICY\nregion = eu-west-1\n"
        );
        let r = redact_kv("export DB_PASSWORD=\"hunter2\"\nDEBUG=1\n  \"api_token\": \"x1y2\",\n");
        assert_eq!(
            r,
            "export DB_PASSWORD=\"REDACTED_BY_POLICY\"\nDEBUG=1\n  \"api_token\": \"REDACTED_BY_POLICY\",\n"
        );
    }

    #[test]
    fn non_secret_keys_and_prose_pass() {
        let s = "name = demo\nurl: http://example.com\nthis is a sentence: with a colon\n";
        assert_eq!(redact_kv(s), s);
    }

    /// Only clean-looking absolute names outside /proc are served before the open, and the
    /// prefilter hashes the last component of any spelling alike.
    #[test]
    fn kept_names() {
        assert!(recordable(b"/home/u/ws/.env"));
        assert!(!recordable(b""));
        assert!(!recordable(b".env"));
        assert!(!recordable(b"/proc/self/root/home/u/.env"));
        let long = [b'a'; KEPT_NAME_MAX + 1];
        assert!(!recordable(&long));
        assert_eq!(last_component(b"/home/u/ws/.env"), b".env");
        assert_eq!(last_component(b".env"), b".env");
        assert_eq!(last_component(b"/home/u/ws/"), b"");
        assert_eq!(
            name_hash(last_component(b"ws/.env")),
            name_hash(last_component(b"/home/u/ws/.env"))
        );
        assert_ne!(name_hash(b".env"), name_hash(b".envrc"));
        assert_ne!(name_hash(b""), 0);
    }

    /// The piecewise match of a relative name is exactly the name `lexical_in` would build,
    /// and only used where that holds.
    #[test]
    fn joined_relative_names() {
        assert!(name_is(b"/w/p/.env", b"/w/p", b".env"));
        assert!(name_is(b"/w/p/.env", b"/w/p/.env", b""));
        assert!(!name_is(b"/w/p/.env", b"/w/q", b".env"));
        assert!(!name_is(b"/w/px.env", b"/w/p", b".env"));
        assert!(!name_is(b"/w/p/.env", b"/w/p", b"env"));
        assert!(!name_is(b"/w/p/.envx", b"/w/p", b".env"));
        assert!(plain_component(b".env") && plain_component(b"..."));
        for p in [&b""[..], b".", b"..", b"a/b", b"./x", b"x/"] {
            assert!(!plain_component(p), "{p:?}");
        }
        assert!(joinable(b"/home/u/ws") && joinable(b"/procfs"));
        for c in [&b""[..], b"/", b"rel", b"/w/", b"/proc", b"/proc/self/cwd"] {
            assert!(!joinable(c), "{c:?}");
        }
        let mut cwd = crate::path::PathBuf::new();
        let mut lex = crate::path::PathBuf::new();
        assert!(cwd.push(b"/home/u/ws"));
        assert!(crate::path::lexical_in(
            libc::AT_FDCWD,
            b".env",
            cwd.as_bytes(),
            &mut lex
        ));
        assert!(name_is(lex.as_bytes(), cwd.as_bytes(), b".env"));
    }

    #[test]
    fn fd_names_are_decimal_with_a_nul() {
        for (fd, want) in [
            (0, &b"0"[..]),
            (7, b"7"),
            (512, b"512"),
            (i32::MAX, b"2147483647"),
        ] {
            let n = fd_name(fd);
            let end = n.iter().position(|c| *c == 0).unwrap_or(n.len());
            assert_eq!(&n[..end], want);
            assert!(end < n.len());
        }
    }

    #[test]
    fn proc_environ_names() {
        assert!(is_proc_environ(b"/proc/self/environ"));
        assert!(is_proc_environ(b"/proc/123/environ"));
        assert!(!is_proc_environ(b"/proc/self/cmdline"));
        assert!(!is_proc_environ(b"/home/x/environ"));
    }

    #[test]
    fn overlapping_spans_merge() {
        let mut s = vec![(2, 6), (0, 3), (8, 9)];
        assert_eq!(
            apply(b"0123456789", &mut s),
            b"REDACTED_BY_POLICY67REDACTED_BY_POLICY9".to_vec()
        );
    }
}
