//! IP allowlists: a key may be limited to client addresses in a few ranges (CIDR, IPv4 and IPv6), checked against
//! the address Cloudflare reports for the client (`CF-Connecting-IP`).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// At most this many ranges per key.
pub const MAX_RANGES: usize = 32;

/// An address range: `203.0.113.0/24`, `2001:db8::/32`, or one address (`198.51.100.7` is `/32`). Stored with its
/// host bits cleared, so `10.1.2.3/8` is `10.0.0.0/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpRange {
    network: Addr,
    prefix: u8,
}

/// Why a string is not an address range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpRangeError {
    Address,
    Prefix,
}

impl fmt::Display for IpRangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Address => "not an IPv4 or IPv6 address",
            Self::Prefix => "the prefix length must be 0-32 for IPv4 and 0-128 for IPv6",
        })
    }
}

impl std::error::Error for IpRangeError {}

/// An address as bits: IPv4 in the low 32 bits (width 32), or IPv6 (width 128). An IPv4-mapped IPv6 address
/// (`::ffff:192.0.2.1`) is the IPv4 address it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Addr {
    pub bits: u128,
    pub width: u8,
}

impl Addr {
    fn canonical(self) -> Self {
        if self.width == 128 && self.bits >> 32 == 0xffff {
            Self { bits: self.bits & 0xffff_ffff, width: 32 }
        } else {
            self
        }
    }

    fn ip(self) -> IpAddr {
        match self.width {
            32 => IpAddr::V4(std::net::Ipv4Addr::from(self.bits as u32)),
            _ => IpAddr::V6(std::net::Ipv6Addr::from(self.bits)),
        }
    }
}

impl From<IpAddr> for Addr {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self { bits: u128::from(u32::from(v4)), width: 32 },
            IpAddr::V6(v6) => Self { bits: u128::from(v6), width: 128 },
        }
        .canonical()
    }
}

/// `a.b.c.d`: four decimal numbers up to 255, no leading zeros (as `std` reads them).
fn parse_v4(s: &str) -> Option<u32> {
    let mut out = 0u32;
    let mut parts = 0;
    for part in s.split('.') {
        let ok = (1..=3).contains(&part.len())
            && part.bytes().all(|b| b.is_ascii_digit())
            && !(part.len() > 1 && part.starts_with('0'));
        let n: u32 = if ok { part.parse().ok().filter(|n| *n <= 255)? } else { return None };
        out = out << 8 | n;
        parts += 1;
    }
    (parts == 4).then_some(out)
}

/// Groups of an IPv6 address on one side of `::`, the last of which may be an IPv4 address (two groups).
fn parse_groups(s: &str, last_side: bool, out: &mut Vec<u16>) -> Option<()> {
    if s.is_empty() {
        return Some(());
    }
    let parts: Vec<&str> = s.split(':').collect();
    for (i, part) in parts.iter().enumerate() {
        if last_side && i == parts.len() - 1 && part.contains('.') {
            let v4 = parse_v4(part)?;
            out.extend([(v4 >> 16) as u16, v4 as u16]);
        } else if (1..=4).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_hexdigit()) {
            out.push(u16::from_str_radix(part, 16).ok()?);
        } else {
            return None;
        }
    }
    Some(())
}

fn parse_v6(s: &str) -> Option<u128> {
    let (mut head, mut tail) = (Vec::with_capacity(8), Vec::with_capacity(8));
    match s.split_once("::") {
        Some((before, after)) => {
            parse_groups(before, false, &mut head)?;
            parse_groups(after, true, &mut tail)?;
            // `::` stands for at least one group of zeros.
            if head.len() + tail.len() > 7 {
                return None;
            }
        }
        None => {
            parse_groups(s, true, &mut head)?;
            if head.len() != 8 {
                return None;
            }
        }
    }
    let zeros = 8 - head.len() - tail.len();
    let groups = head.iter().chain(std::iter::repeat_n(&0, zeros)).chain(tail.iter());
    Some(groups.fold(0u128, |acc, g| acc << 16 | u128::from(*g)))
}

/// Reads an IPv4 or IPv6 address (no zone, no brackets): the gateway's small parser, equal to `std`'s on every
/// input (a property test compares them).
pub fn parse_addr(s: &str) -> Option<Addr> {
    if s.len() > 45 {
        return None;
    }
    let addr = if s.contains(':') {
        Addr { bits: parse_v6(s)?, width: 128 }
    } else {
        Addr { bits: u128::from(parse_v4(s)?), width: 32 }
    };
    Some(addr.canonical())
}

fn mask(width: u8, prefix: u8) -> u128 {
    match prefix {
        0 => 0,
        p => (u128::MAX << (u32::from(width) - u32::from(p))) & (u128::MAX >> (128 - u32::from(width))),
    }
}

impl IpRange {
    /// Whether `ip` is in the range (an IPv4-mapped IPv6 address counts as its IPv4 address).
    pub fn contains(&self, addr: Addr) -> bool {
        let addr = addr.canonical();
        addr.width == self.network.width && addr.bits & mask(addr.width, self.prefix) == self.network.bits
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }
}

impl FromStr for IpRange {
    type Err = IpRangeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (address, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let ip = parse_addr(address).ok_or(IpRangeError::Address)?;
        let prefix = match prefix {
            None => ip.width,
            Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u8>().ok().filter(|p| *p <= ip.width).ok_or(IpRangeError::Prefix)?
            }
            Some(_) => return Err(IpRangeError::Prefix),
        };
        let network = Addr { bits: ip.bits & mask(ip.width, prefix), width: ip.width };
        Ok(Self { network, prefix })
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network.ip(), self.prefix)
    }
}

impl Serialize for IpRange {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IpRange {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Whether a client at `client` (the text of `CF-Connecting-IP`; `None` when absent) may use a key limited to
/// `ranges`. An empty list allows every client; a limited key from an unknown or unreadable address is refused.
pub fn allowed(ranges: &[IpRange], client: Option<&str>) -> bool {
    ranges.is_empty() || client.and_then(|c| parse_addr(c.trim())).is_some_and(|a| ranges.iter().any(|r| r.contains(a)))
}
