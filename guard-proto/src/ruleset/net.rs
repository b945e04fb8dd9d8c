//! Addresses, CIDR blocks and port ranges for connect rules.

use std::net::IpAddr;

/// An address or CIDR block, as the compiler parses it from `ips = [...]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpNet {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl IpNet {
    /// Parses `10.0.0.0/8`, `fd00::/8`, `169.254.169.254`. Host bits beyond the prefix are
    /// ignored (masked at match time).
    pub fn parse(s: &str) -> Result<IpNet, String> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| format!("`{s}` is not an IP address or CIDR block"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(format!("`{s}`: prefix length must be 0..={max}")),
            },
        };
        Ok(IpNet { addr, prefix })
    }

    /// The 16-byte form stored in the ruleset: IPv4 in the first 4 bytes.
    pub fn to_bytes(&self) -> ([u8; 16], u8) {
        let mut out = [0u8; 16];
        match self.addr {
            IpAddr::V4(v4) => {
                out[..4].copy_from_slice(&v4.octets());
                (out, 4)
            }
            IpAddr::V6(v6) => {
                out.copy_from_slice(&v6.octets());
                (out, 6)
            }
        }
    }
}

/// Whether `ip` is inside the stored net (`family` 4 or 6, `prefix` bits of `net`).
pub fn net_contains(net: &[u8], family: u8, prefix: u8, ip: IpAddr) -> bool {
    // An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is the IPv4 address for policy purposes.
    let ip = match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    };
    let mut buf = [0u8; 16];
    let len = match (ip, family) {
        (IpAddr::V4(v4), 4) => {
            buf[..4].copy_from_slice(&v4.octets());
            4
        }
        (IpAddr::V6(v6), 6) => {
            buf.copy_from_slice(&v6.octets());
            16
        }
        _ => return false,
    };
    let prefix = usize::from(prefix).min(len * 8);
    let full = prefix / 8;
    let (Some(a), Some(b)) = (net.get(..full), buf.get(..full)) else {
        return false;
    };
    if a != b {
        return false;
    }
    let rem = prefix % 8;
    if rem == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rem);
    match (net.get(full), buf.get(full)) {
        (Some(x), Some(y)) => x & mask == y & mask,
        _ => false,
    }
}

/// Parses a port entry: a number or `lo-hi`.
pub fn parse_port_range(s: &str) -> Result<(u16, u16), String> {
    let bad = || format!("`{s}` is not a port or a port range (`8000-8999`)");
    match s.split_once('-') {
        Some((lo, hi)) => {
            let lo: u16 = lo.trim().parse().map_err(|_| bad())?;
            let hi: u16 = hi.trim().parse().map_err(|_| bad())?;
            if lo > hi {
                return Err(bad());
            }
            Ok((lo, hi))
        }
        None => {
            let p: u16 = s.trim().parse().map_err(|_| bad())?;
            Ok((p, p))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contains(net: &str, ip: &str) -> bool {
        let n = IpNet::parse(net).unwrap_or(IpNet {
            addr: IpAddr::from([0, 0, 0, 0]),
            prefix: 255,
        });
        let (b, f) = n.to_bytes();
        net_contains(
            &b,
            f,
            n.prefix,
            ip.parse().unwrap_or(IpAddr::from([255; 4])),
        )
    }

    #[test]
    fn cidr_v4_v6_and_mapped() {
        assert!(contains("10.0.0.0/8", "10.200.1.1"));
        assert!(!contains("10.0.0.0/8", "11.0.0.1"));
        assert!(contains("169.254.169.254", "169.254.169.254"));
        assert!(!contains("169.254.169.254", "169.254.169.253"));
        assert!(contains("172.16.0.0/12", "172.31.255.255"));
        assert!(!contains("172.16.0.0/12", "172.32.0.0"));
        assert!(contains("fd00::/8", "fd12::1"));
        assert!(!contains("fd00::/8", "fe80::1"));
        assert!(contains("10.0.0.0/8", "::ffff:10.1.2.3"));
        assert!(!contains("10.0.0.0/8", "fd00::1"));
        assert!(contains("0.0.0.0/0", "1.2.3.4"));
        assert!(IpNet::parse("10.0.0.0/33").is_err());
        assert!(IpNet::parse("nope").is_err());
    }

    #[test]
    fn ports() {
        assert_eq!(parse_port_range("80"), Ok((80, 80)));
        assert_eq!(parse_port_range("8000-8999"), Ok((8000, 8999)));
        assert!(parse_port_range("9-1").is_err());
        assert!(parse_port_range("70000").is_err());
    }
}
