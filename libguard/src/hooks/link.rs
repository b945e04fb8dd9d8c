//! New names: hard links (`link`, `linkat`), symlinks (`symlink`, `symlinkat`) and
//! directories (`mkdir`, `mkdirat`), and their raw syscalls (through `hooks/sys.rs`). Creating
//! a name is a write of that name: a write-protected tree stays as it is.
//!
//! A hard link is a second name for the same file, and rules judge names: `ln ~/.ssh/id_rsa
//! /tmp/k` would otherwise let a later `open("/tmp/k")` read a denied key, and a link of a
//! redacted `.env` out of the content scope would hand over the secrets. So a link is refused
//! when reading, writing or deleting the source is denied, when the source is read redacted, or
//! when creating the new name is denied. With `AT_SYMLINK_FOLLOW` the source's checks run on
//! the name the symlink leads to (`file_denied` resolves it), and a redacted file reached
//! through a symlink is refused too (the source must not be a symlink to a redacted path).

use super::{Real, eacces, enosys};
use crate::eval::{file_denied, file_denied_any};
use crate::state::Inside;
use core::ffi::{c_char, c_int};
use guard_proto::FileAccess;

type LinkFn = unsafe extern "C" fn(*const c_char, *const c_char) -> c_int;
type LinkatFn = unsafe extern "C" fn(c_int, *const c_char, c_int, *const c_char, c_int) -> c_int;
type SymlinkatFn = unsafe extern "C" fn(*const c_char, c_int, *const c_char) -> c_int;
type MkdirFn = unsafe extern "C" fn(*const c_char, libc::mode_t) -> c_int;
type MkdiratFn = unsafe extern "C" fn(c_int, *const c_char, libc::mode_t) -> c_int;

static LINK: Real<LinkFn> = Real::new(c"link");
static LINKAT: Real<LinkatFn> = Real::new(c"linkat");
static SYMLINK: Real<LinkFn> = Real::new(c"symlink");
static SYMLINKAT: Real<SymlinkatFn> = Real::new(c"symlinkat");
static MKDIR: Real<MkdirFn> = Real::new(c"mkdir");
static MKDIRAT: Real<MkdiratFn> = Real::new(c"mkdirat");

pub fn resolve_all() {
    LINK.resolve();
    LINKAT.resolve();
    SYMLINK.resolve();
    SYMLINKAT.resolve();
    MKDIR.resolve();
    MKDIRAT.resolve();
}

/// True when creating the name (`dirfd`, `path`) must fail with `EACCES` (a symlink's target
/// needs no check: opening through the link is judged on the file it leads to).
pub fn create_denied(dirfd: c_int, path: *const c_char) -> bool {
    super::file::denied(dirfd, path, FileAccess::Write)
}

/// True when creating `new` as a hard link to `old` must fail with `EACCES`.
pub fn link_denied(
    olddir: c_int,
    old: *const c_char,
    newdir: c_int,
    new: *const c_char,
    flags: c_int,
) -> bool {
    if old.is_null() || new.is_null() {
        return false;
    }
    let Some(_g) = Inside::enter() else {
        return false;
    };
    // A redacted source (the policy's redact rules are judged on the lexical name).
    if crate::redact::write_refused(olddir, old) {
        return true;
    }
    if flags & libc::AT_SYMLINK_FOLLOW != 0 && is_symlink(olddir, old) {
        // The redact check above saw the symlink's own name, not the file it leads to.
        return true;
    }
    file_denied_any(
        olddir,
        old,
        &[FileAccess::Read, FileAccess::Write, FileAccess::Delete],
    ) || file_denied(newdir, new, FileAccess::Write)
}

fn is_symlink(dirfd: c_int, path: *const c_char) -> bool {
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    let r = unsafe {
        crate::raw::sys(
            libc::SYS_newfstatat,
            dirfd as isize as usize,
            path as usize,
            &mut st as *mut libc::stat as usize,
            libc::AT_SYMLINK_NOFOLLOW as usize,
        )
    };
    r == 0 && st.st_mode & libc::S_IFMT == libc::S_IFLNK
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn link(old: *const c_char, new: *const c_char) -> c_int {
    if link_denied(libc::AT_FDCWD, old, libc::AT_FDCWD, new, 0) {
        return eacces();
    }
    match LINK.get() {
        Some(f) => unsafe { f(old, new) },
        None => enosys(),
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn linkat(
    olddir: c_int,
    old: *const c_char,
    newdir: c_int,
    new: *const c_char,
    flags: c_int,
) -> c_int {
    if link_denied(olddir, old, newdir, new, flags) {
        return eacces();
    }
    match LINKAT.get() {
        Some(f) => unsafe { f(olddir, old, newdir, new, flags) },
        None => enosys(),
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn symlink(target: *const c_char, new: *const c_char) -> c_int {
    if create_denied(libc::AT_FDCWD, new) {
        return eacces();
    }
    match SYMLINK.get() {
        Some(f) => unsafe { f(target, new) },
        None => enosys(),
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn symlinkat(
    target: *const c_char,
    dirfd: c_int,
    new: *const c_char,
) -> c_int {
    if create_denied(dirfd, new) {
        return eacces();
    }
    match SYMLINKAT.get() {
        Some(f) => unsafe { f(target, dirfd, new) },
        None => enosys(),
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkdir(path: *const c_char, mode: libc::mode_t) -> c_int {
    if create_denied(libc::AT_FDCWD, path) {
        return eacces();
    }
    match MKDIR.get() {
        Some(f) => unsafe { f(path, mode) },
        None => enosys(),
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkdirat(dirfd: c_int, path: *const c_char, mode: libc::mode_t) -> c_int {
    if create_denied(dirfd, path) {
        return eacces();
    }
    match MKDIRAT.get() {
        Some(f) => unsafe { f(dirfd, path, mode) },
        None => enosys(),
    }
}
