//! `chdir`, `fchdir`, `chroot` and `unshare`: nothing is judged here; each tells the memo of
//! the current directory (`cwd_cache.rs`) that its answer may be stale, after the call.

use super::{Real, enosys};
use core::ffi::{c_char, c_int};

type PathFn = unsafe extern "C" fn(*const c_char) -> c_int;
type FdFn = unsafe extern "C" fn(c_int) -> c_int;

static CHDIR: Real<PathFn> = Real::new(c"chdir");
static CHROOT: Real<PathFn> = Real::new(c"chroot");
static FCHDIR: Real<FdFn> = Real::new(c"fchdir");
static UNSHARE: Real<FdFn> = Real::new(c"unshare");

pub fn resolve_all() {
    CHDIR.resolve();
    CHROOT.resolve();
    FCHDIR.resolve();
    UNSHARE.resolve();
}

/// Runs the real call, then invalidates the memo (whether or not the call succeeded: a
/// failed one changed nothing, and a needless `getcwd` is all it costs).
fn then_invalidate(r: Option<c_int>) -> c_int {
    crate::cwd_cache::invalidate();
    r.unwrap_or_else(enosys)
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn chdir(path: *const c_char) -> c_int {
    then_invalidate(CHDIR.get().map(|f| unsafe { f(path) }))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn chroot(path: *const c_char) -> c_int {
    then_invalidate(CHROOT.get().map(|f| unsafe { f(path) }))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn fchdir(fd: c_int) -> c_int {
    then_invalidate(FCHDIR.get().map(|f| unsafe { f(fd) }))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn unshare(flags: c_int) -> c_int {
    then_invalidate(UNSHARE.get().map(|f| unsafe { f(flags) }))
}
