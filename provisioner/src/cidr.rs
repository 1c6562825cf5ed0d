//! IPv4 CIDR blocks: parsing, containment and overlap, for validating the cluster file.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// An IPv4 network such as `10.42.0.0/16` (the address is the network address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cidr {
    addr: Ipv4Addr,
    prefix: u8,
}

impl Cidr {
    /// Its prefix length.
    pub fn prefix(self) -> u8 {
        self.prefix
    }

    fn mask(self) -> u32 {
        if self.prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(self.prefix)) }
    }

    fn first(self) -> u32 {
        u32::from(self.addr)
    }

    fn last(self) -> u32 {
        self.first() | !self.mask()
    }

    /// Whether `ip` lies in this network.
    pub fn contains(self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == self.first()
    }

    /// Whether `other` lies entirely in this network.
    pub fn covers(self, other: Cidr) -> bool {
        other.prefix >= self.prefix && self.contains(other.addr)
    }

    /// Whether the two networks share any address.
    pub fn overlaps(self, other: Cidr) -> bool {
        self.covers(other) || other.covers(self)
    }

    /// Whether AWS reserves `ip` in a subnet with this block: the first four addresses and the
    /// last one.
    pub fn aws_reserved(self, ip: Ipv4Addr) -> bool {
        let n = u32::from(ip);
        n < self.first().saturating_add(4) || n == self.last()
    }
}

/// Why a string is not a CIDR block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    /// No `/prefix` part, or not an IPv4 address, or a prefix above 32.
    #[error("`{0}` is not an IPv4 CIDR block like 10.0.0.0/16")]
    Syntax(String),
    /// Bits set after the prefix (`10.0.0.1/16`).
    #[error("`{given}` has host bits set; the network is {network}")]
    HostBits {
        /// What was written.
        given: String,
        /// What was meant, probably.
        network: String,
    },
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let syntax = || CidrError::Syntax(s.to_string());
        let (addr, prefix) = s.split_once('/').ok_or_else(syntax)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| syntax())?;
        let prefix: u8 = prefix.parse().map_err(|_| syntax())?;
        if prefix > 32 {
            return Err(syntax());
        }
        let candidate = Cidr { addr, prefix };
        let network = Cidr { addr: Ipv4Addr::from(u32::from(addr) & candidate.mask()), prefix };
        if network != candidate {
            return Err(CidrError::HostBits { given: s.to_string(), network: network.to_string() });
        }
        Ok(candidate)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_prints() {
        assert_eq!(c("10.42.0.0/16").to_string(), "10.42.0.0/16");
        assert_eq!(c("0.0.0.0/0").to_string(), "0.0.0.0/0");
        assert!(matches!("10.42.0.1/16".parse::<Cidr>(), Err(CidrError::HostBits { network, .. }) if network == "10.42.0.0/16"));
        assert!("10.42.0.0".parse::<Cidr>().is_err());
        assert!("10.42.0.0/33".parse::<Cidr>().is_err());
        assert!("ten/8".parse::<Cidr>().is_err());
    }

    #[test]
    fn containment_and_overlap() {
        let vpc = c("10.42.0.0/16");
        assert!(vpc.covers(c("10.42.1.0/24")));
        assert!(!vpc.covers(c("10.43.1.0/24")));
        assert!(c("10.42.1.0/24").overlaps(c("10.42.1.128/25")));
        assert!(!c("10.42.1.0/24").overlaps(c("10.42.2.0/24")));
        assert!(c("10.42.1.0/24").contains("10.42.1.10".parse().unwrap()));
    }

    #[test]
    fn aws_reserved_addresses() {
        let s = c("10.42.1.0/24");
        for ip in ["10.42.1.0", "10.42.1.1", "10.42.1.2", "10.42.1.3", "10.42.1.255"] {
            assert!(s.aws_reserved(ip.parse().unwrap()), "{ip}");
        }
        assert!(!s.aws_reserved("10.42.1.4".parse().unwrap()));
    }
}
