//! CIDR blocks tokens are bound to (`token_bound_cidrs`, `bound_cidrs`):
//! parsing as OpenBao does (host bits kept, bare addresses as /32 or
//! /128), matching a client address, and rendering as OpenBao echoes them.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// An address or CIDR block a role binds its tokens to, as given (host bits
/// kept: `10.1.2.3/8` stays so). A single-host block prints as the bare
/// address, the way OpenBao echoes `1.2.3.4/32` as `1.2.3.4`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BoundCidr {
    addr: IpAddr,
    prefix: u8,
}

impl BoundCidr {
    /// Parses `addr` or `addr/len` (IPv4 or IPv6).
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let bad = || {
            format!("error parsing address {s:?}: Unable to convert {s:?} to an IPv4 or IPv6 address, or a UNIX Socket")
        };
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?
            }
            Some(_) => return Err(bad()),
        };
        Ok(BoundCidr { addr, prefix })
    }

    /// Whether `ip` lies in the block (an IPv4-mapped IPv6 client address
    /// matches an IPv4 block).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_eq(
                u128::from(u32::from(net)),
                u128::from(u32::from(ip)),
                32,
                self.prefix,
            ),
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(u128::from(net), u128::from(ip), 128, self.prefix)
            }
            _ => false,
        }
    }
}

/// Whether the first `prefix` of `width` bits of `a` and `b` agree.
fn prefix_eq(a: u128, b: u128, width: u8, prefix: u8) -> bool {
    if prefix == 0 {
        return true;
    }
    let shift = u32::from(width - prefix.min(width));
    (a >> shift) == (b >> shift)
}

impl fmt::Display for BoundCidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let max = if self.addr.is_ipv4() { 32 } else { 128 };
        if self.prefix == max {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.prefix)
        }
    }
}

impl TryFrom<String> for BoundCidr {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        BoundCidr::parse(&s)
    }
}

impl From<BoundCidr> for String {
    fn from(c: BoundCidr) -> String {
        c.to_string()
    }
}
