//! The child environment for every exec and spawn, built without `malloc` (exec hooks run in
//! vfork children): a fixed array of pointers plus a small string buffer, both owned by the
//! hook's stack frame.
//!
//! - `LD_PRELOAD` keeps this library: unchanged when the child's value already names it;
//!   prefixed with it when the caller set other libraries (their order is kept); the launch
//!   value (which names it, in its original position) when the caller removed the variable.
//! - Every `GUARD_*` variable of the launch environment is forced to its launch value, and
//!   `UV_USE_IO_URING=0` is added (io_uring would carry Node's file I/O past the hooks).
//! - Variables matching the policy's `[env] strip` are dropped (never `GUARD_*`/`LD_PRELOAD`).
//! - If the result does not fit, the exec fails with `E2BIG` rather than losing the guard.

use crate::raw::{self, Buf};
use crate::state;
use core::ffi::c_char;

pub const MAX_ENV: usize = 2048;
const STR_MAX: usize = 8192;

pub struct ChildEnv {
    pub ptrs: [*const c_char; MAX_ENV],
    strs: Buf<STR_MAX>,
}

impl Default for ChildEnv {
    fn default() -> Self {
        Self::new()
    }
}

impl ChildEnv {
    pub const fn new() -> Self {
        ChildEnv {
            ptrs: [core::ptr::null(); MAX_ENV],
            strs: Buf::new(),
        }
    }

    pub fn as_ptr(&self) -> *const *const c_char {
        self.ptrs.as_ptr()
    }
}

fn is_forced(name: &[u8]) -> bool {
    name == b"UV_USE_IO_URING" || state::GUARD_VARS.contains(&name)
}

/// Fills `out` from `src` (NULL means an empty environment). `Err(errno)` when it cannot.
///
/// # Safety
/// `src` is NULL or a NULL-terminated array of C strings that outlives `out`'s use.
pub unsafe fn build(src: *const *const c_char, out: &mut ChildEnv) -> Result<(), i32> {
    let c = state::cfg();
    let rs = state::ruleset();
    let reserve = c.inject_count + 2;
    let limit = MAX_ENV.saturating_sub(reserve);
    let mut n = 0usize;
    let mut preload_done = false;
    out.strs.clear();
    let mut push = |p: *const c_char, n: &mut usize, cap: usize| -> Result<(), i32> {
        if *n >= cap {
            return Err(libc::E2BIG);
        }
        if let Some(slot) = out.ptrs.get_mut(*n) {
            *slot = p;
        }
        *n += 1;
        Ok(())
    };
    let mut i = 0usize;
    while !src.is_null() {
        // SAFETY: NULL-terminated array.
        let p = unsafe { *src.add(i) };
        if p.is_null() {
            break;
        }
        i += 1;
        let e = unsafe { raw::cstr(p) };
        let eq = e.iter().position(|b| *b == b'=');
        let name = match eq {
            Some(k) => e.get(..k).unwrap_or(e),
            None => e,
        };
        if name == b"LD_PRELOAD" {
            if preload_done {
                continue;
            }
            preload_done = true;
            let value = eq.and_then(|k| e.get(k + 1..)).unwrap_or(b"");
            if state::preload_has(value, c.self_path.as_bytes())
                || (c.self_path.is_empty() && !value.is_empty())
            {
                push(p, &mut n, limit)?;
            } else if value.is_empty() {
                push(
                    c.preload_entry.as_bytes().as_ptr() as *const c_char,
                    &mut n,
                    limit,
                )?;
            } else {
                let start = out.strs.len();
                let ok = out.strs.push(b"LD_PRELOAD=")
                    && out.strs.push(c.self_path.as_bytes())
                    && out.strs.push(b":")
                    && out.strs.push(value)
                    && out.strs.push(b"\0");
                if !ok {
                    return Err(libc::E2BIG);
                }
                let ptr = out.strs.as_bytes().as_ptr().wrapping_add(start) as *const c_char;
                push(ptr, &mut n, limit)?;
            }
            continue;
        }
        if is_forced(name) {
            continue;
        }
        if !name.starts_with(b"GUARD_") && rs.is_some_and(|rs| rs.env_strip_matches(name)) {
            continue;
        }
        push(p, &mut n, limit)?;
    }
    if !preload_done {
        push(
            c.preload_entry.as_bytes().as_ptr() as *const c_char,
            &mut n,
            MAX_ENV - 1,
        )?;
    }
    for k in 0..c.inject_count {
        let off = c.inject_off.get(k).copied().unwrap_or(0);
        let ptr = c.inject.as_bytes().as_ptr().wrapping_add(off) as *const c_char;
        push(ptr, &mut n, MAX_ENV - 1)?;
    }
    push(core::ptr::null(), &mut n, MAX_ENV)?;
    Ok(())
}
