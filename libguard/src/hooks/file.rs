//! File hooks: every public glibc entry point that opens, creates, truncates, deletes or renames
//! a path (glibc's internal calls do not go through the PLT, so `fopen`, `creat` and the
//! fortified `__open_2` family each need their own hook).

use super::{Real, eacces, enosys, libc_ret};
use crate::eval::file_denied;
use crate::raw::{self, set_errno};
use crate::state::Inside;
use core::ffi::{c_char, c_int, c_uint};
use guard_proto::FileAccess;
use libc::{FILE, mode_t, off_t};

type OpenFn = unsafe extern "C" fn(*const c_char, c_int, ...) -> c_int;
type OpenAtFn = unsafe extern "C" fn(c_int, *const c_char, c_int, ...) -> c_int;
type Open2Fn = unsafe extern "C" fn(*const c_char, c_int) -> c_int;
type OpenAt2Fn = unsafe extern "C" fn(c_int, *const c_char, c_int) -> c_int;
type CreatFn = unsafe extern "C" fn(*const c_char, mode_t) -> c_int;
type FopenFn = unsafe extern "C" fn(*const c_char, *const c_char) -> *mut FILE;
type FreopenFn = unsafe extern "C" fn(*const c_char, *const c_char, *mut FILE) -> *mut FILE;
type TruncFn = unsafe extern "C" fn(*const c_char, off_t) -> c_int;
type PathFn = unsafe extern "C" fn(*const c_char) -> c_int;
type UnlinkatFn = unsafe extern "C" fn(c_int, *const c_char, c_int) -> c_int;
type RenameFn = unsafe extern "C" fn(*const c_char, *const c_char) -> c_int;
type RenameatFn = unsafe extern "C" fn(c_int, *const c_char, c_int, *const c_char) -> c_int;
type Renameat2Fn =
    unsafe extern "C" fn(c_int, *const c_char, c_int, *const c_char, c_uint) -> c_int;

static OPEN: Real<OpenFn> = Real::new(c"open");
static OPEN64: Real<OpenFn> = Real::new(c"open64");
static OPENAT: Real<OpenAtFn> = Real::new(c"openat");
static OPENAT64: Real<OpenAtFn> = Real::new(c"openat64");
static OPEN_2: Real<Open2Fn> = Real::new(c"__open_2");
static OPEN64_2: Real<Open2Fn> = Real::new(c"__open64_2");
static OPENAT_2: Real<OpenAt2Fn> = Real::new(c"__openat_2");
static OPENAT64_2: Real<OpenAt2Fn> = Real::new(c"__openat64_2");
static CREAT: Real<CreatFn> = Real::new(c"creat");
static CREAT64: Real<CreatFn> = Real::new(c"creat64");
static FOPEN: Real<FopenFn> = Real::new(c"fopen");
static FOPEN64: Real<FopenFn> = Real::new(c"fopen64");
static FREOPEN: Real<FreopenFn> = Real::new(c"freopen");
static FREOPEN64: Real<FreopenFn> = Real::new(c"freopen64");
static TRUNCATE: Real<TruncFn> = Real::new(c"truncate");
static TRUNCATE64: Real<TruncFn> = Real::new(c"truncate64");
static UNLINK: Real<PathFn> = Real::new(c"unlink");
static RMDIR: Real<PathFn> = Real::new(c"rmdir");
static UNLINKAT: Real<UnlinkatFn> = Real::new(c"unlinkat");
static RENAME: Real<RenameFn> = Real::new(c"rename");
static RENAMEAT: Real<RenameatFn> = Real::new(c"renameat");
static RENAMEAT2: Real<Renameat2Fn> = Real::new(c"renameat2");

pub fn resolve_all() {
    OPEN.resolve();
    OPEN64.resolve();
    OPENAT.resolve();
    OPENAT64.resolve();
    OPEN_2.resolve();
    OPEN64_2.resolve();
    OPENAT_2.resolve();
    OPENAT64_2.resolve();
    CREAT.resolve();
    CREAT64.resolve();
    FOPEN.resolve();
    FOPEN64.resolve();
    FREOPEN.resolve();
    FREOPEN64.resolve();
    TRUNCATE.resolve();
    TRUNCATE64.resolve();
    UNLINK.resolve();
    RMDIR.resolve();
    UNLINKAT.resolve();
    RENAME.resolve();
    RENAMEAT.resolve();
    RENAMEAT2.resolve();
    FSTAT.resolve();
    FSTAT64.resolve();
    FSTATAT.resolve();
    FSTATAT64.resolve();
    STAT.resolve();
    STAT64.resolve();
    LSTAT.resolve();
    LSTAT64.resolve();
    STATX.resolve();
}

/// The access an open performs, from its flags.
pub fn access_of_flags(flags: c_int) -> FileAccess {
    let writes = (flags & libc::O_ACCMODE) != libc::O_RDONLY
        || flags & (libc::O_CREAT | libc::O_TRUNC | libc::O_APPEND) != 0
        || flags & libc::O_TMPFILE == libc::O_TMPFILE;
    if writes {
        FileAccess::Write
    } else {
        FileAccess::Read
    }
}

/// The access of an `fopen` mode string: only plain "r" (with modifiers, no "+") reads.
unsafe fn access_of_mode(mode: *const c_char) -> FileAccess {
    let m = unsafe { raw::cstr(mode) };
    if m.first() == Some(&b'r') && !m.contains(&b'+') {
        FileAccess::Read
    } else {
        FileAccess::Write
    }
}

/// Evaluates (`dirfd`, `path`) for `access`; true when the call must fail with EACCES.
pub fn denied(dirfd: c_int, path: *const c_char, access: FileAccess) -> bool {
    match Inside::enter() {
        Some(_g) => file_denied(dirfd, path, access),
        None => false,
    }
}

/// An open: first the allow fast path (`path::fast_open`, the real open done as `openat2`
/// without symlinks); when it does not apply, reads go through the two-step `checked_read` and
/// anything else is checked before. `fast_mode`: the mode for `openat2`, `None` to skip the
/// fast path (the fortified variants with `O_CREAT`, whose real function aborts the program).
fn gate_open(
    dirfd: c_int,
    path: *const c_char,
    flags: c_int,
    fast_mode: Option<c_uint>,
    call: impl FnOnce() -> c_int,
) -> c_int {
    let access = access_of_flags(flags);
    // A write-class open of a path the agent reads redacted is refused before any open, so the
    // fast path below cannot skip it.
    if access != FileAccess::Read && redact_write_refused(dirfd, path) {
        return eacces();
    }
    // Redaction of a read the fast path took: under a `redact` rule (`verdict`), or by content
    // in scope (only secrets found by content can still swap in a redacted copy).
    let after_open = |fd: c_int, name: &[u8], verdict, scope| {
        access != FileAccess::Read || redact_after_open(fd, name, verdict, scope)
    };
    // A file this process holds a redacted copy of is served from the copy without opening it.
    if access == FileAccess::Read
        && let Some(fd) = crate::redact::open_kept(dirfd, path, flags)
    {
        return fd;
    }
    if let Some(mode) = fast_mode
        && let Some(r) = crate::path::fast_open(dirfd, path, flags, mode, access, after_open)
    {
        return r;
    }
    if access == FileAccess::Read {
        return crate::eval::checked_read(dirfd, path, call, |fd| *fd, raw::close)
            .unwrap_or_else(eacces);
    }
    if denied(dirfd, path, FileAccess::Write) {
        return eacces();
    }
    call()
}

/// The fast path's `after_open` for a read-only open: redaction under a `redact` rule
/// (`verdict`) or by content in scope (`redact::after_read_open`); false refuses the open.
fn redact_after_open(
    fd: c_int,
    name: &[u8],
    verdict: Option<crate::eval::Outcome>,
    scope: Option<bool>,
) -> bool {
    // A plain allowed read the memo places outside the content scope, or of a file already
    // found clean and unchanged, needs nothing more (what `after_read_open` would answer
    // first, without entering the library).
    if verdict.is_none()
        && (scope == Some(false) || scope == Some(true) && crate::redact::known_clean(fd))
    {
        return true;
    }
    match Inside::enter() {
        Some(_g) => crate::redact::after_read_open_known(fd, name, verdict, scope),
        None => true,
    }
}

/// A write-class open of a path the agent reads redacted is refused (`redact.rs`).
fn redact_write_refused(dirfd: c_int, path: *const c_char) -> bool {
    match Inside::enter() {
        Some(_g) => crate::redact::write_refused(dirfd, path),
        None => false,
    }
}

/// The C shim's entry for open/open64/openat/openat64.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn libguard_openat(
    which: c_int,
    dirfd: c_int,
    path: *const c_char,
    flags: c_int,
    mode: c_uint,
) -> c_int {
    gate_open(dirfd, path, flags, Some(mode), || {
        let r = unsafe {
            match which {
                0 => OPEN.get().map(|f| f(path, flags, mode)),
                1 => OPEN64.get().map(|f| f(path, flags, mode)),
                2 => OPENAT.get().map(|f| f(dirfd, path, flags, mode)),
                _ => OPENAT64.get().map(|f| f(dirfd, path, flags, mode)),
            }
        };
        match r {
            Some(fd) => fd,
            None => libc_ret(raw::openat(dirfd, path, flags, mode) as isize) as c_int,
        }
    })
}

/// The fortified opens take no mode: with `O_CREAT`/`O_TMPFILE` the real function aborts the
/// program (`invalid open call`), which the slow path keeps; otherwise the fast path applies.
fn fortified_fast(flags: c_int) -> Option<c_uint> {
    let needs_mode = flags & libc::O_CREAT != 0 || flags & libc::O_TMPFILE == libc::O_TMPFILE;
    (!needs_mode).then_some(0)
}

macro_rules! open2 {
    ($name:ident, $real:ident) => {
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(path: *const c_char, flags: c_int) -> c_int {
            gate_open(
                libc::AT_FDCWD,
                path,
                flags,
                fortified_fast(flags),
                || match $real.get() {
                    Some(f) => unsafe { f(path, flags) },
                    None => enosys(),
                },
            )
        }
    };
}
open2!(__open_2, OPEN_2);
open2!(__open64_2, OPEN64_2);

macro_rules! openat2 {
    ($name:ident, $real:ident) => {
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int {
            gate_open(dirfd, path, flags, fortified_fast(flags), || {
                match $real.get() {
                    Some(f) => unsafe { f(dirfd, path, flags) },
                    None => enosys(),
                }
            })
        }
    };
}
openat2!(__openat_2, OPENAT_2);
openat2!(__openat64_2, OPENAT64_2);

/// A stream open: like `gate_open`, with `fopen`'s mode string.
fn gate_stream(
    path: *const c_char,
    mode: *const c_char,
    call: impl FnOnce() -> *mut FILE,
) -> *mut FILE {
    if mode.is_null() || path.is_null() {
        return call();
    }
    let refused = || {
        set_errno(libc::EACCES);
        core::ptr::null_mut()
    };
    if unsafe { access_of_mode(mode) } == FileAccess::Read {
        return crate::eval::checked_read(
            libc::AT_FDCWD,
            path,
            call,
            |fp| {
                if fp.is_null() {
                    -1
                } else {
                    unsafe { libc::fileno(*fp) }
                }
            },
            |fp| {
                unsafe { libc::fclose(fp) };
            },
        )
        .unwrap_or_else(refused);
    }
    if denied(libc::AT_FDCWD, path, FileAccess::Write) || redact_write_refused(libc::AT_FDCWD, path)
    {
        return refused();
    }
    call()
}

macro_rules! creat {
    ($name:ident, $real:ident) => {
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(path: *const c_char, mode: mode_t) -> c_int {
            if denied(libc::AT_FDCWD, path, FileAccess::Write)
                || redact_write_refused(libc::AT_FDCWD, path)
            {
                return eacces();
            }
            match $real.get() {
                Some(f) => unsafe { f(path, mode) },
                None => enosys(),
            }
        }
    };
}
creat!(creat, CREAT);
creat!(creat64, CREAT64);

/// The `open` flags of an `fopen` mode that only reads and that `fdopen` reproduces exactly:
/// `r`, with `b` (ignored on POSIX) and `e` (`O_CLOEXEC`) in any order. Anything else (`m`,
/// `c`, `,ccs=`, write modes) keeps libc's own `fopen`.
fn simple_read_mode(mode: &[u8]) -> Option<c_int> {
    let (&first, rest) = mode.split_first()?;
    if first != b'r' {
        return None;
    }
    let mut flags = libc::O_RDONLY;
    for &c in rest {
        match c {
            b'b' => {}
            b'e' => flags |= libc::O_CLOEXEC,
            _ => return None,
        }
    }
    Some(flags)
}

/// `fopen` for reading through the open fast path: the file is opened by `path::fast_open`
/// (one `openat2`, the lexical verdict is the whole verdict) and wrapped with `fdopen`, which
/// for these modes builds the same stream `fopen` would. `None`: take the general path.
fn fast_fopen(path: *const c_char, mode: *const c_char) -> Option<*mut FILE> {
    if path.is_null() || mode.is_null() {
        return None;
    }
    let flags = simple_read_mode(unsafe { raw::cstr(mode) })?;
    let fd = match crate::redact::open_kept(libc::AT_FDCWD, path, flags) {
        Some(fd) => fd,
        None => crate::path::fast_open(
            libc::AT_FDCWD,
            path,
            flags,
            0,
            FileAccess::Read,
            redact_after_open,
        )?,
    };
    if fd < 0 {
        return Some(core::ptr::null_mut());
    }
    // `fdopen` wants the mode without `e` (the descriptor already has `O_CLOEXEC`).
    let fp = unsafe { libc::fdopen(fd, c"r".as_ptr()) };
    if fp.is_null() {
        let e = raw::errno();
        raw::close(fd);
        set_errno(e);
    }
    Some(fp)
}

macro_rules! fopen {
    ($name:ident, $real:ident) => {
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(path: *const c_char, mode: *const c_char) -> *mut FILE {
            if let Some(fp) = fast_fopen(path, mode) {
                return fp;
            }
            gate_stream(path, mode, || match $real.get() {
                Some(f) => unsafe { f(path, mode) },
                None => {
                    set_errno(libc::ENOSYS);
                    core::ptr::null_mut()
                }
            })
        }
    };
}
fopen!(fopen, FOPEN);
fopen!(fopen64, FOPEN64);

macro_rules! freopen {
    ($name:ident, $real:ident) => {
        /// A NULL path only changes the mode of the already open stream (passes through). A
        /// reopen refused after the open (second step of `checked_read`) leaves the stream
        /// closed, as a failed freopen does; one refused before it leaves it untouched.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(
            path: *const c_char,
            mode: *const c_char,
            stream: *mut FILE,
        ) -> *mut FILE {
            gate_stream(path, mode, || match $real.get() {
                Some(f) => unsafe { f(path, mode, stream) },
                None => {
                    set_errno(libc::ENOSYS);
                    core::ptr::null_mut()
                }
            })
        }
    };
}
freopen!(freopen, FREOPEN);
freopen!(freopen64, FREOPEN64);

macro_rules! truncate {
    ($name:ident, $real:ident) => {
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(path: *const c_char, len: off_t) -> c_int {
            if denied(libc::AT_FDCWD, path, FileAccess::Write) {
                return eacces();
            }
            match $real.get() {
                Some(f) => unsafe { f(path, len) },
                None => enosys(),
            }
        }
    };
}
truncate!(truncate, TRUNCATE);
truncate!(truncate64, TRUNCATE64);

#[unsafe(no_mangle)]
pub unsafe extern "C" fn unlink(path: *const c_char) -> c_int {
    if denied(libc::AT_FDCWD, path, FileAccess::Delete) {
        return eacces();
    }
    match UNLINK.get() {
        Some(f) => unsafe { f(path) },
        None => enosys(),
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmdir(path: *const c_char) -> c_int {
    if denied(libc::AT_FDCWD, path, FileAccess::Delete) {
        return eacces();
    }
    match RMDIR.get() {
        Some(f) => unsafe { f(path) },
        None => enosys(),
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn unlinkat(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int {
    if denied(dirfd, path, FileAccess::Delete) {
        return eacces();
    }
    match UNLINKAT.get() {
        Some(f) => unsafe { f(dirfd, path, flags) },
        None => enosys(),
    }
}

/// A rename deletes its source and writes its target (whether or not the target exists:
/// creating a file at a protected path is a write too). `RENAME_EXCHANGE` does both to both.
pub fn rename_denied(
    olddir: c_int,
    old: *const c_char,
    newdir: c_int,
    new: *const c_char,
    flags: c_uint,
) -> bool {
    let Some(_g) = Inside::enter() else {
        return false;
    };
    // Moving a file the agent reads redacted to another name would hand it over unredacted.
    let mut deny = crate::redact::write_refused(olddir, old);
    deny |= file_denied(olddir, old, FileAccess::Delete);
    deny |= file_denied(newdir, new, FileAccess::Write);
    // A directory carries everything below it: moving `~/.aws` away, or a directory of the
    // agent's onto `~/.config/systemd/user`, must not sidestep the rules on what is inside.
    // Only a directory carries anything (one `fstatat` spares files the scan of the rules).
    deny = deny
        || raw::is_dir_nofollow(olddir, old)
            && (crate::eval::dir_move_denied(olddir, old, FileAccess::Delete)
                || crate::eval::dir_move_denied(newdir, new, FileAccess::Write));
    if flags & libc::RENAME_EXCHANGE != 0 {
        deny |= file_denied(olddir, old, FileAccess::Write);
        deny |= file_denied(newdir, new, FileAccess::Delete);
        // The target moves to the source's name as well.
        deny = deny
            || raw::is_dir_nofollow(newdir, new)
                && (crate::eval::dir_move_denied(newdir, new, FileAccess::Delete)
                    || crate::eval::dir_move_denied(olddir, old, FileAccess::Write));
    }
    deny
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rename(old: *const c_char, new: *const c_char) -> c_int {
    if rename_denied(libc::AT_FDCWD, old, libc::AT_FDCWD, new, 0) {
        return eacces();
    }
    match RENAME.get() {
        Some(f) => unsafe { f(old, new) },
        None => enosys(),
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn renameat(
    olddir: c_int,
    old: *const c_char,
    newdir: c_int,
    new: *const c_char,
) -> c_int {
    if rename_denied(olddir, old, newdir, new, 0) {
        return eacces();
    }
    match RENAMEAT.get() {
        Some(f) => unsafe { f(olddir, old, newdir, new) },
        None => enosys(),
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn renameat2(
    olddir: c_int,
    old: *const c_char,
    newdir: c_int,
    new: *const c_char,
    flags: c_uint,
) -> c_int {
    if rename_denied(olddir, old, newdir, new, flags) {
        return eacces();
    }
    match RENAMEAT2.get() {
        Some(f) => unsafe { f(olddir, old, newdir, new, flags) },
        None => enosys(),
    }
}

// The stat family: what a redacted file looks like (`redact.rs`, "What `stat` reports"). Each
// hook calls the real function and, on success, lets `redact` adjust the result: one relaxed
// load (fd form) or a few (path form) when nothing was redacted.
type FstatFn = unsafe extern "C" fn(c_int, *mut libc::stat) -> c_int;
type FstatatFn = unsafe extern "C" fn(c_int, *const c_char, *mut libc::stat, c_int) -> c_int;
type StatFn = unsafe extern "C" fn(*const c_char, *mut libc::stat) -> c_int;
type StatxFn = unsafe extern "C" fn(c_int, *const c_char, c_int, c_uint, *mut libc::statx) -> c_int;

static FSTAT: Real<FstatFn> = Real::new(c"fstat");
static FSTAT64: Real<FstatFn> = Real::new(c"fstat64");
static FSTATAT: Real<FstatatFn> = Real::new(c"fstatat");
static FSTATAT64: Real<FstatatFn> = Real::new(c"fstatat64");
static STAT: Real<StatFn> = Real::new(c"stat");
static STAT64: Real<StatFn> = Real::new(c"stat64");
static LSTAT: Real<StatFn> = Real::new(c"lstat");
static LSTAT64: Real<StatFn> = Real::new(c"lstat64");
static STATX: Real<StatxFn> = Real::new(c"statx");

/// `path` is "" and `flags` has `AT_EMPTY_PATH`: the call describes `dirfd` itself.
fn empty_path(path: *const c_char, flags: c_int) -> bool {
    flags & libc::AT_EMPTY_PATH != 0 && !path.is_null() && unsafe { *path } == 0
}

// `struct stat64` is `struct stat` on the 64-bit targets libguard supports, so the 64 variants
// share the hooks' types.
macro_rules! fstat_hook {
    ($name:ident, $real:ident) => {
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(fd: c_int, buf: *mut libc::stat) -> c_int {
            let Some(f) = $real.get() else {
                return enosys();
            };
            let r = unsafe { f(fd, buf) };
            if r == 0
                && let Some(st) = unsafe { buf.as_mut() }
            {
                crate::redact::fix_fd_stat(fd, st);
            }
            r
        }
    };
}
fstat_hook!(fstat, FSTAT);
fstat_hook!(fstat64, FSTAT64);

macro_rules! fstatat_hook {
    ($name:ident, $real:ident) => {
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(
            dirfd: c_int,
            path: *const c_char,
            buf: *mut libc::stat,
            flags: c_int,
        ) -> c_int {
            let Some(f) = $real.get() else {
                return enosys();
            };
            let r = unsafe { f(dirfd, path, buf, flags) };
            if r == 0
                && let Some(st) = unsafe { buf.as_mut() }
            {
                if empty_path(path, flags) {
                    crate::redact::fix_fd_stat(dirfd, st);
                } else {
                    crate::redact::fix_path_stat(st);
                }
            }
            r
        }
    };
}
fstatat_hook!(fstatat, FSTATAT);
fstatat_hook!(fstatat64, FSTATAT64);

macro_rules! stat_hook {
    ($name:ident, $real:ident) => {
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(path: *const c_char, buf: *mut libc::stat) -> c_int {
            let Some(f) = $real.get() else {
                return enosys();
            };
            let r = unsafe { f(path, buf) };
            if r == 0
                && let Some(st) = unsafe { buf.as_mut() }
            {
                crate::redact::fix_path_stat(st);
            }
            r
        }
    };
}
stat_hook!(stat, STAT);
stat_hook!(stat64, STAT64);
stat_hook!(lstat, LSTAT);
stat_hook!(lstat64, LSTAT64);

#[unsafe(no_mangle)]
pub unsafe extern "C" fn statx(
    dirfd: c_int,
    path: *const c_char,
    flags: c_int,
    mask: c_uint,
    buf: *mut libc::statx,
) -> c_int {
    let Some(f) = STATX.get() else {
        return enosys();
    };
    let r = unsafe { f(dirfd, path, flags, mask, buf) };
    if r == 0
        && let Some(stx) = unsafe { buf.as_mut() }
    {
        if empty_path(path, flags) {
            crate::redact::fix_fd_statx(dirfd, stx);
        } else {
            crate::redact::fix_path_statx(stx);
        }
    }
    r
}
