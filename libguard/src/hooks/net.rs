//! Network hooks: `connect` for AF_INET/AF_INET6 (Unix sockets are local IPC and pass), and
//! `getaddrinfo`, which feeds the address→name table so connect rules can match host names.

use super::Real;
use crate::eval::connect_denied;
use crate::raw::set_errno;
use crate::state::Inside;
use core::ffi::{c_char, c_int};
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use libc::{addrinfo, sockaddr, socklen_t};

type ConnectFn = unsafe extern "C" fn(c_int, *const sockaddr, socklen_t) -> c_int;
type GaiFn = unsafe extern "C" fn(
    *const c_char,
    *const c_char,
    *const addrinfo,
    *mut *mut addrinfo,
) -> c_int;

static CONNECT: Real<ConnectFn> = Real::new(c"connect");
static GETADDRINFO: Real<GaiFn> = Real::new(c"getaddrinfo");

pub fn resolve_all() {
    CONNECT.resolve();
    GETADDRINFO.resolve();
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
        set_errno(libc::EACCES);
        return -1;
    }
    match CONNECT.get() {
        Some(f) => unsafe { f(fd, addr, len) },
        None => {
            set_errno(libc::ENOSYS);
            -1
        }
    }
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
