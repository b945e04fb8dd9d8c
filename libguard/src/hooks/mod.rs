//! The exported entry points. Each hook: pass straight through unless the library is ready and
//! this thread is not already inside it; otherwise classify, evaluate, record, and either fail
//! with the call's natural error or call the real function (found with `dlsym(RTLD_NEXT)` and
//! cached in an `AtomicPtr`).

pub mod cwd;
pub mod exec;
pub mod file;
pub mod link;
pub mod net;
pub mod sys;
pub mod tls;

use core::ffi::{CStr, c_void};
use core::marker::PhantomData;
use core::sync::atomic::{AtomicPtr, Ordering};

/// A real libc function, resolved lazily (and eagerly at initialisation) with
/// `dlsym(RTLD_NEXT)`. `F` is the function pointer type.
pub struct Real<F> {
    p: AtomicPtr<c_void>,
    sym: &'static CStr,
    _f: PhantomData<F>,
}

impl<F: Copy> Real<F> {
    pub const fn new(sym: &'static CStr) -> Self {
        Real {
            p: AtomicPtr::new(core::ptr::null_mut()),
            sym,
            _f: PhantomData,
        }
    }

    pub fn get(&self) -> Option<F> {
        let mut p = self.p.load(Ordering::Acquire);
        if p.is_null() {
            // SAFETY: dlsym with a valid C string.
            p = unsafe { libc::dlsym(libc::RTLD_NEXT, self.sym.as_ptr()) };
            if p.is_null() {
                return None;
            }
            self.p.store(p, Ordering::Release);
        }
        if core::mem::size_of::<F>() != core::mem::size_of::<*mut c_void>() {
            return None;
        }
        // SAFETY: F is the C function pointer type of `sym` (same size, checked above).
        Some(unsafe { core::mem::transmute_copy::<*mut c_void, F>(&p) })
    }

    fn resolve(&self) {
        let _ = self.get();
    }
}

/// Resolves every real function up front, so no hook has to call `dlsym` later (in particular
/// not in a vfork child).
pub fn resolve_all() {
    cwd::resolve_all();
    file::resolve_all();
    link::resolve_all();
    exec::resolve_all();
    net::resolve_all();
    sys::resolve_all();
    tls::resolve_all();
}

/// A refused call in libc's convention: `errno = EACCES`, -1 (of the hook's return type).
pub fn eacces<T: From<i8>>() -> T {
    crate::raw::set_errno(libc::EACCES);
    T::from(-1)
}

/// A call whose real function could not be found: `errno = ENOSYS`, -1.
pub fn enosys<T: From<i8>>() -> T {
    crate::raw::set_errno(libc::ENOSYS);
    T::from(-1)
}

/// Converts a raw syscall result to the libc convention.
pub fn libc_ret(r: isize) -> isize {
    if r < 0 && r > -4096 {
        crate::raw::set_errno(-r as i32);
        -1
    } else {
        r
    }
}
