//! Network hooks: `connect` for AF_INET/AF_INET6 (Unix sockets are local IPC and pass); the
//! other ways to reach an address without `connect` (`sendto`/`sendmsg`/`sendmmsg` with a
//! destination: UDP datagrams, and TCP Fast Open's `MSG_FASTOPEN`, which connects implicitly),
//! judged as connects to that address; and the resolvers (`getaddrinfo`, `gethostbyname*`),
//! which feed the address→name table so connect rules can match host names.

use super::{Real, eacces, enosys};
use crate::eval::connect_denied;
use crate::state::Inside;
use core::ffi::{c_char, c_int};
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use libc::{addrinfo, sockaddr, socklen_t};

type ConnectFn = unsafe extern "C" fn(c_int, *const sockaddr, socklen_t) -> c_int;
type SendtoFn = unsafe extern "C" fn(
    c_int,
    *const libc::c_void,
    libc::size_t,
    c_int,
    *const sockaddr,
    socklen_t,
) -> libc::ssize_t;
type SendmsgFn = unsafe extern "C" fn(c_int, *const libc::msghdr, c_int) -> libc::ssize_t;
type SendmmsgFn = unsafe extern "C" fn(c_int, *mut libc::mmsghdr, libc::c_uint, c_int) -> c_int;
type GhbnFn = unsafe extern "C" fn(*const c_char) -> *mut libc::hostent;
type Ghbn2Fn = unsafe extern "C" fn(*const c_char, c_int) -> *mut libc::hostent;
type GhbnRFn = unsafe extern "C" fn(
    *const c_char,
    *mut libc::hostent,
    *mut c_char,
    libc::size_t,
    *mut *mut libc::hostent,
    *mut c_int,
) -> c_int;
type Ghbn2RFn = unsafe extern "C" fn(
    *const c_char,
    c_int,
    *mut libc::hostent,
    *mut c_char,
    libc::size_t,
    *mut *mut libc::hostent,
    *mut c_int,
) -> c_int;
type GaiFn = unsafe extern "C" fn(
    *const c_char,
    *const c_char,
    *const addrinfo,
    *mut *mut addrinfo,
) -> c_int;

static CONNECT: Real<ConnectFn> = Real::new(c"connect");
static GETADDRINFO: Real<GaiFn> = Real::new(c"getaddrinfo");
static SENDTO: Real<SendtoFn> = Real::new(c"sendto");
static SENDMSG: Real<SendmsgFn> = Real::new(c"sendmsg");
static SENDMMSG: Real<SendmmsgFn> = Real::new(c"sendmmsg");
static GETHOSTBYNAME: Real<GhbnFn> = Real::new(c"gethostbyname");
static GETHOSTBYNAME2: Real<Ghbn2Fn> = Real::new(c"gethostbyname2");
static GETHOSTBYNAME_R: Real<GhbnRFn> = Real::new(c"gethostbyname_r");
static GETHOSTBYNAME2_R: Real<Ghbn2RFn> = Real::new(c"gethostbyname2_r");

pub fn resolve_all() {
    CONNECT.resolve();
    GETADDRINFO.resolve();
    SENDTO.resolve();
    SENDMSG.resolve();
    SENDMMSG.resolve();
    GETHOSTBYNAME.resolve();
    GETHOSTBYNAME2.resolve();
    GETHOSTBYNAME_R.resolve();
    GETHOSTBYNAME2_R.resolve();
}

/// The IP address and port of an inet socket address, `None` for other families.
///
/// # Safety
/// `addr` is NULL or points to `len` readable bytes.
pub unsafe fn inet_addr(addr: *const sockaddr, len: socklen_t) -> Option<(IpAddr, u16)> {
    if addr.is_null() || (len as usize) < core::mem::size_of::<libc::sa_family_t>() {
        return None;
    }
    let fam = unsafe { (*addr).sa_family } as c_int;
    if fam == libc::AF_INET && len as usize >= core::mem::size_of::<libc::sockaddr_in>() {
        let sin = unsafe { core::ptr::read_unaligned(addr as *const libc::sockaddr_in) };
        let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
        return Some((IpAddr::V4(ip), u16::from_be(sin.sin_port)));
    }
    if fam == libc::AF_INET6 && len as usize >= core::mem::size_of::<libc::sockaddr_in6>() {
        let sin6 = unsafe { core::ptr::read_unaligned(addr as *const libc::sockaddr_in6) };
        let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
        let ip = match ip.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(ip),
        };
        return Some((ip, u16::from_be(sin6.sin6_port)));
    }
    None
}

/// Shared by `connect` and `syscall(SYS_connect)`: true when the connect must fail.
pub fn denied(addr: *const sockaddr, len: socklen_t) -> bool {
    let Some((ip, port)) = (unsafe { inet_addr(addr, len) }) else {
        return false;
    };
    match Inside::enter() {
        Some(_g) => {
            super::tls::note_connect(port);
            connect_denied(ip, port)
        }
        None => false,
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    if denied(addr, len) {
        return eacces();
    }
    if crate::seccomp::is_filtered() {
        // Already judged here: let the kernel layer's filter pass it without a round trip.
        return crate::hooks::libc_ret(crate::seccomp::connect(fd, addr, len)) as c_int;
    }
    match CONNECT.get() {
        Some(f) => unsafe { f(fd, addr, len) },
        None => enosys(),
    }
}

/// `sendto` with a destination reaches that address without `connect`: a UDP datagram, or with
/// `MSG_FASTOPEN` a TCP connection. Judged like a `connect` to it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sendto(
    fd: c_int,
    buf: *const libc::c_void,
    len: libc::size_t,
    flags: c_int,
    addr: *const sockaddr,
    alen: socklen_t,
) -> libc::ssize_t {
    if !addr.is_null() && denied(addr, alen) {
        return eacces();
    }
    match SENDTO.get() {
        Some(f) => unsafe { f(fd, buf, len, flags, addr, alen) },
        None => enosys(),
    }
}

/// The destination of one `msghdr`, if it names one.
pub unsafe fn msg_denied(msg: *const libc::msghdr) -> bool {
    if msg.is_null() {
        return false;
    }
    let m = unsafe { &*msg };
    !m.msg_name.is_null() && denied(m.msg_name as *const sockaddr, m.msg_namelen)
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn sendmsg(
    fd: c_int,
    msg: *const libc::msghdr,
    flags: c_int,
) -> libc::ssize_t {
    if unsafe { msg_denied(msg) } {
        return eacces();
    }
    match SENDMSG.get() {
        Some(f) => unsafe { f(fd, msg, flags) },
        None => enosys(),
    }
}

/// Whether any message of a `sendmmsg` batch goes to a denied address.
///
/// # Safety
/// `vec` is NULL or points to `n` readable `mmsghdr`s (the kernel reads at most UIO_MAXIOV, 1024).
pub unsafe fn mmsg_denied(vec: *const libc::mmsghdr, n: libc::c_uint) -> bool {
    !vec.is_null()
        && (0..(n as usize).min(1024)).any(|i| unsafe { msg_denied(&(*vec.add(i)).msg_hdr) })
}

/// Refused as a whole when any message goes to a denied address (nothing is sent), so that a
/// batch cannot carry one forbidden datagram among allowed ones.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sendmmsg(
    fd: c_int,
    vec: *mut libc::mmsghdr,
    n: libc::c_uint,
    flags: c_int,
) -> c_int {
    if unsafe { mmsg_denied(vec, n) } {
        return eacces();
    }
    match SENDMMSG.get() {
        Some(f) => unsafe { f(fd, vec, n, flags) },
        None => enosys(),
    }
}

/// Remembers every address of a resolved `hostent` under `name`.
unsafe fn remember_hostent(name: *const c_char, h: *const libc::hostent) {
    if name.is_null() || h.is_null() {
        return;
    }
    let Some(_g) = Inside::enter() else {
        return;
    };
    let name = unsafe { crate::raw::cstr(name) };
    if name.parse_ip().is_some() {
        return;
    }
    let h = unsafe { &*h };
    if h.h_addr_list.is_null() {
        return;
    }
    for i in 0..256 {
        let a = unsafe { *h.h_addr_list.add(i) };
        if a.is_null() {
            break;
        }
        let ip = match (h.h_addrtype, h.h_length) {
            (libc::AF_INET, 4) => {
                let b = unsafe { core::ptr::read_unaligned(a as *const [u8; 4]) };
                IpAddr::V4(Ipv4Addr::from(b))
            }
            (libc::AF_INET6, 16) => {
                let b = unsafe { core::ptr::read_unaligned(a as *const [u8; 16]) };
                IpAddr::V6(Ipv6Addr::from(b))
            }
            _ => break,
        };
        crate::dns::remember(name, ip);
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn gethostbyname(name: *const c_char) -> *mut libc::hostent {
    let Some(f) = GETHOSTBYNAME.get() else {
        return core::ptr::null_mut();
    };
    let h = unsafe { f(name) };
    unsafe { remember_hostent(name, h) };
    h
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn gethostbyname2(name: *const c_char, af: c_int) -> *mut libc::hostent {
    let Some(f) = GETHOSTBYNAME2.get() else {
        return core::ptr::null_mut();
    };
    let h = unsafe { f(name, af) };
    unsafe { remember_hostent(name, h) };
    h
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn gethostbyname_r(
    name: *const c_char,
    ret: *mut libc::hostent,
    buf: *mut c_char,
    len: libc::size_t,
    result: *mut *mut libc::hostent,
    herr: *mut c_int,
) -> c_int {
    let Some(f) = GETHOSTBYNAME_R.get() else {
        return libc::ENOSYS;
    };
    let r = unsafe { f(name, ret, buf, len, result, herr) };
    if r == 0 && !result.is_null() {
        unsafe { remember_hostent(name, *result) };
    }
    r
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn gethostbyname2_r(
    name: *const c_char,
    af: c_int,
    ret: *mut libc::hostent,
    buf: *mut c_char,
    len: libc::size_t,
    result: *mut *mut libc::hostent,
    herr: *mut c_int,
) -> c_int {
    let Some(f) = GETHOSTBYNAME2_R.get() else {
        return libc::ENOSYS;
    };
    let r = unsafe { f(name, af, ret, buf, len, result, herr) };
    if r == 0 && !result.is_null() {
        unsafe { remember_hostent(name, *result) };
    }
    r
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn getaddrinfo(
    node: *const c_char,
    service: *const c_char,
    hints: *const addrinfo,
    res: *mut *mut addrinfo,
) -> c_int {
    let Some(f) = GETADDRINFO.get() else {
        return libc::EAI_SYSTEM;
    };
    let r = unsafe { f(node, service, hints, res) };
    if r != 0 || node.is_null() || res.is_null() {
        return r;
    }
    if let Some(_g) = Inside::enter() {
        let name = unsafe { crate::raw::cstr(node) };
        let mut p = unsafe { *res };
        let mut guard = 0;
        while !p.is_null() && guard < 256 {
            let ai = unsafe { &*p };
            if let Some((ip, _)) = unsafe { inet_addr(ai.ai_addr, ai.ai_addrlen) } {
                // A numeric "host" is not a name worth remembering.
                if name.parse_ip().is_none() {
                    crate::dns::remember(name, ip);
                }
            }
            p = ai.ai_next;
            guard += 1;
        }
    }
    r
}

trait ParseIp {
    fn parse_ip(&self) -> Option<IpAddr>;
}

impl ParseIp for [u8] {
    fn parse_ip(&self) -> Option<IpAddr> {
        core::str::from_utf8(self).ok()?.parse().ok()
    }
}
