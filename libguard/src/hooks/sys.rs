//! The `syscall()` hook (its variadic export is in csrc/shim.c): the raw-syscall doors that
//! programs use to get around libc wrappers. `openat2` has no glibc wrapper at all; libuv calls
//! `io_uring_setup` here, and io_uring would carry file I/O past every hook, so it fails with
//! ENOSYS (libuv then falls back to its thread pool).

use super::{Real, eacces, exec, file, net};
use crate::raw::set_errno;
use core::ffi::{c_char, c_int, c_long, c_uint};
use guard_proto::FileAccess;

type SyscallFn = unsafe extern "C" fn(c_long, ...) -> c_long;
static SYSCALL: Real<SyscallFn> = Real::new(c"syscall");

pub fn resolve_all() {
    SYSCALL.resolve();
}

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn libguard_syscall(
    n: c_long,
    a1: c_long,
    a2: c_long,
    a3: c_long,
    a4: c_long,
    a5: c_long,
    a6: c_long,
) -> c_long {
    let path = |a: c_long| a as usize as *const c_char;
    let deny = match n {
        libc::SYS_io_uring_setup => {
            set_errno(libc::ENOSYS);
            return -1;
        }
        libc::SYS_execve => {
            return unsafe {
                exec::libguard_execve(path(a1), a2 as usize as *const _, a3 as usize as *const _)
            } as c_long;
        }
        libc::SYS_execveat => {
            return unsafe {
                exec::execveat(
                    a1 as c_int,
                    path(a2),
                    a3 as usize as *const _,
                    a4 as usize as *const _,
                    a5 as c_int,
                )
            } as c_long;
        }
        #[cfg(target_arch = "x86_64")]
        libc::SYS_open => {
            file::denied(libc::AT_FDCWD, path(a1), file::access_of_flags(a2 as c_int))
        }
        #[cfg(target_arch = "x86_64")]
        libc::SYS_creat => file::denied(libc::AT_FDCWD, path(a1), FileAccess::Write),
        libc::SYS_openat => file::denied(a1 as c_int, path(a2), file::access_of_flags(a3 as c_int)),
        libc::SYS_openat2 => {
            let how = a3 as usize as *const OpenHow;
            if !how.is_null() && (a4 as usize) >= core::mem::size_of::<OpenHow>() {
                let flags = unsafe { core::ptr::read_unaligned(how) }.flags as c_int;
                file::denied(a1 as c_int, path(a2), file::access_of_flags(flags))
            } else {
                false
            }
        }
        #[cfg(target_arch = "x86_64")]
        libc::SYS_unlink | libc::SYS_rmdir => {
            file::denied(libc::AT_FDCWD, path(a1), FileAccess::Delete)
        }
        libc::SYS_unlinkat => file::denied(a1 as c_int, path(a2), FileAccess::Delete),
        #[cfg(target_arch = "x86_64")]
        libc::SYS_rename => {
            file::rename_denied(libc::AT_FDCWD, path(a1), libc::AT_FDCWD, path(a2), 0)
        }
        libc::SYS_renameat | libc::SYS_renameat2 => {
            let flags = if n == libc::SYS_renameat2 {
                a5 as c_uint
            } else {
                0
            };
            file::rename_denied(a1 as c_int, path(a2), a3 as c_int, path(a4), flags)
        }
        libc::SYS_connect => {
            net::denied(a2 as usize as *const libc::sockaddr, a3 as libc::socklen_t)
        }
        libc::SYS_link => {
            super::link::link_denied(libc::AT_FDCWD, path(a1), libc::AT_FDCWD, path(a2), 0)
        }
        libc::SYS_linkat => {
            super::link::link_denied(a1 as c_int, path(a2), a3 as c_int, path(a4), a5 as c_int)
        }
        libc::SYS_symlink => super::link::create_denied(libc::AT_FDCWD, path(a2)),
        libc::SYS_symlinkat => super::link::create_denied(a2 as c_int, path(a3)),
        libc::SYS_mkdir => super::link::create_denied(libc::AT_FDCWD, path(a1)),
        libc::SYS_mkdirat => super::link::create_denied(a1 as c_int, path(a2)),
        libc::SYS_sendto => {
            a5 != 0 && net::denied(a5 as usize as *const libc::sockaddr, a6 as libc::socklen_t)
        }
        libc::SYS_sendmsg => unsafe { net::msg_denied(a2 as usize as *const libc::msghdr) },
        libc::SYS_sendmmsg => unsafe {
            net::mmsg_denied(a2 as usize as *const libc::mmsghdr, a3 as libc::c_uint)
        },
        _ => false,
    };
    if deny {
        return eacces();
    }
    let r = match SYSCALL.get() {
        Some(f) => unsafe { f(n, a1, a2, a3, a4, a5, a6) },
        None => crate::hooks::libc_ret(unsafe {
            crate::raw::sys6(
                n,
                [
                    a1 as usize,
                    a2 as usize,
                    a3 as usize,
                    a4 as usize,
                    a5 as usize,
                    a6 as usize,
                ],
            )
        }) as c_long,
    };
    // The current directory may have changed: the memo of it must not be trusted (`cwd_cache`).
    if matches!(
        n,
        libc::SYS_chdir | libc::SYS_fchdir | libc::SYS_chroot | libc::SYS_unshare
    ) {
        crate::cwd_cache::invalidate();
    }
    r
}
