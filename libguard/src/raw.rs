//! Raw system calls (inline `syscall`/`svc`, no libc symbol), a fixed-capacity byte buffer, and
//! errno access.
//!
//! libguard exports `open`, `syscall`, `connect`... so any libc call that reaches one of those
//! names from inside the library would re-enter its own hooks. Everything the library does for
//! itself goes through these wrappers instead, which also makes them safe in vfork children.

use core::ffi::c_char;

/// A raw syscall: returns the kernel's value (`-errno` on failure).
#[cfg(target_arch = "x86_64")]
#[inline]
pub unsafe fn sys6(n: libc::c_long, a: [usize; 6]) -> isize {
    let ret: isize;
    // SAFETY: the x86_64 Linux syscall ABI; rcx and r11 are clobbered by the instruction.
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") n as isize => ret,
            in("rdi") a[0], in("rsi") a[1], in("rdx") a[2],
            in("r10") a[3], in("r8") a[4], in("r9") a[5],
            lateout("rcx") _, lateout("r11") _,
            options(nostack)
        );
    }
    ret
}

#[cfg(target_arch = "aarch64")]
#[inline]
pub unsafe fn sys6(n: libc::c_long, a: [usize; 6]) -> isize {
    let ret: isize;
    // SAFETY: the aarch64 Linux syscall ABI.
    unsafe {
        core::arch::asm!(
            "svc 0",
            in("x8") n,
            inlateout("x0") a[0] as isize => ret,
            in("x1") a[1], in("x2") a[2], in("x3") a[3], in("x4") a[4], in("x5") a[5],
            options(nostack)
        );
    }
    ret
}

#[inline]
pub unsafe fn sys(n: libc::c_long, a0: usize, a1: usize, a2: usize, a3: usize) -> isize {
    unsafe { sys6(n, [a0, a1, a2, a3, 0, 0]) }
}

pub fn errno() -> i32 {
    // SAFETY: glibc's per-thread errno slot is always valid.
    unsafe { *libc::__errno_location() }
}

pub fn set_errno(e: i32) {
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = e }
}

pub fn getpid() -> i32 {
    unsafe { sys(libc::SYS_getpid, 0, 0, 0, 0) as i32 }
}

pub fn getppid() -> i32 {
    unsafe { sys(libc::SYS_getppid, 0, 0, 0, 0) as i32 }
}

pub fn gettid() -> i32 {
    unsafe { sys(libc::SYS_gettid, 0, 0, 0, 0) as i32 }
}

pub fn write_all(fd: i32, mut b: &[u8]) {
    while !b.is_empty() {
        let r = unsafe {
            sys(
                libc::SYS_write,
                fd as usize,
                b.as_ptr() as usize,
                b.len(),
                0,
            )
        };
        if r == -(libc::EINTR as isize) {
            continue;
        }
        if r <= 0 {
            return;
        }
        b = b.get(r as usize..).unwrap_or(&[]);
    }
}

pub fn close(fd: i32) {
    unsafe { sys(libc::SYS_close, fd as usize, 0, 0, 0) };
}

/// `openat` of a NUL-terminated path; returns the fd or `-errno`. This library's own opens
/// (judged already, or its spill files): under the kernel layer's filter a write-class one
/// carries the session value and passes without a broker round trip (`seccomp::bypass`).
pub fn openat(dirfd: i32, path: *const c_char, flags: i32, mode: u32) -> i32 {
    unsafe {
        sys6(
            libc::SYS_openat,
            [
                dirfd as isize as usize,
                path as usize,
                flags as usize,
                mode as usize,
                0,
                crate::seccomp::bypass(),
            ],
        ) as i32
    }
}

pub fn fstat(fd: i32, st: &mut libc::stat) -> bool {
    unsafe {
        sys(
            libc::SYS_fstat,
            fd as usize,
            st as *mut libc::stat as usize,
            0,
            0,
        ) == 0
    }
}

/// Whether `path` (relative to `dirfd`) names a directory itself, not through a final
/// symlink (`fstatat` with `AT_SYMLINK_NOFOLLOW`). False when it cannot be stat'ed.
pub fn is_dir_nofollow(dirfd: i32, path: *const c_char) -> bool {
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    let r = unsafe {
        sys(
            libc::SYS_newfstatat,
            dirfd as isize as usize,
            path as usize,
            &mut st as *mut libc::stat as usize,
            libc::AT_SYMLINK_NOFOLLOW as usize,
        )
    };
    r == 0 && st.st_mode & libc::S_IFMT == libc::S_IFDIR
}

/// `readlinkat` into `out`; returns the length (no NUL) or `None`.
pub fn readlinkat(dirfd: i32, path: *const c_char, out: &mut [u8]) -> Option<usize> {
    let r = unsafe {
        sys(
            libc::SYS_readlinkat,
            dirfd as isize as usize,
            path as usize,
            out.as_mut_ptr() as usize,
            out.len(),
        )
    };
    if r < 0 || r as usize >= out.len() {
        None
    } else {
        Some(r as usize)
    }
}

/// Fixed-capacity byte buffer: all pushes are all-or-nothing and never panic. The storage is
/// left uninitialised (hooks keep several `PATH_MAX` buffers on the stack; zeroing them showed
/// up in profiles); `b[..len]` is always initialised.
pub struct Buf<const N: usize> {
    b: [core::mem::MaybeUninit<u8>; N],
    len: usize,
}

impl<const N: usize> Default for Buf<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Buf<N> {
    pub const fn new() -> Self {
        Buf {
            b: [const { core::mem::MaybeUninit::uninit() }; N],
            len: 0,
        }
    }
    pub fn clear(&mut self) {
        self.len = 0;
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: b[..len] is initialised and len <= N.
        unsafe { core::slice::from_raw_parts(self.b.as_ptr() as *const u8, self.len.min(N)) }
    }
    /// Appends `s` whole, keeping one byte free for a NUL; false (unchanged) if it does not fit.
    pub fn push(&mut self, s: &[u8]) -> bool {
        match self.len.checked_add(s.len()) {
            Some(e) if e < N => {
                // SAFETY: len + s.len() < N, and `s` cannot overlap our own storage mutably.
                unsafe {
                    core::ptr::copy(
                        s.as_ptr(),
                        (self.b.as_mut_ptr() as *mut u8).add(self.len),
                        s.len(),
                    );
                }
                self.len = e;
                true
            }
            _ => false,
        }
    }
    /// Appends as much of `s` as fits.
    pub fn push_trunc(&mut self, s: &[u8]) {
        let room = N.saturating_sub(1).saturating_sub(self.len);
        let take = s.len().min(room);
        let _ = self.push(s.get(..take).unwrap_or(&[]));
    }
    pub fn truncate(&mut self, n: usize) {
        if n < self.len {
            self.len = n;
        }
    }
    /// Replaces the contents with what `fill` writes into the whole buffer: it gets a pointer
    /// and the capacity (one byte kept for a NUL) and returns how many bytes it wrote, or a
    /// negative value (the buffer is then emptied).
    pub fn fill_with(&mut self, fill: impl FnOnce(*mut u8, usize) -> isize) -> isize {
        let cap = N.saturating_sub(1);
        let r = fill(self.b.as_mut_ptr() as *mut u8, cap);
        self.len = if r >= 0 && (r as usize) <= cap {
            r as usize
        } else {
            0
        };
        r
    }
    /// Pointer to the contents as a C string (writes the NUL; capacity always leaves room).
    pub fn c_ptr(&mut self) -> *const c_char {
        if let Some(slot) = self.b.get_mut(self.len) {
            slot.write(0);
        }
        self.b.as_ptr() as *const c_char
    }
    pub fn last(&self) -> Option<u8> {
        self.as_bytes().last().copied()
    }
}

impl<const N: usize> core::fmt::Write for Buf<N> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.push_trunc(s.as_bytes());
        Ok(())
    }
}

/// Bytes of a C string (empty for NULL).
///
/// # Safety
/// `p` must be NULL or point to a NUL-terminated string that outlives the returned slice.
pub unsafe fn cstr<'a>(p: *const c_char) -> &'a [u8] {
    if p.is_null() {
        return &[];
    }
    unsafe { core::ffi::CStr::from_ptr(p).to_bytes() }
}

/// The valid UTF-8 prefix of `b` (events carry `&str`).
pub fn utf8_prefix(b: &[u8]) -> &str {
    match core::str::from_utf8(b) {
        Ok(s) => s,
        Err(e) => core::str::from_utf8(b.get(..e.valid_up_to()).unwrap_or(&[])).unwrap_or(""),
    }
}

/// Formats a decimal number into `out`.
pub fn push_num<const N: usize>(out: &mut Buf<N>, mut v: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        if let Some(s) = tmp.get_mut(i) {
            *s = b'0' + (v % 10) as u8;
        }
        v /= 10;
        if v == 0 || i == 0 {
            break;
        }
    }
    out.push(tmp.get(i..).unwrap_or(&[]));
}
