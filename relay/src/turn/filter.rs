//! Which peer addresses a relay may send to (secure defaults against CVE-2020-26262-style abuse).
//!
//! By default a peer is refused when its address is loopback, unspecified, private (RFC 1918,
//! 100.64.0.0/10 shared, fc00::/7), link-local (169.254.0.0/16 incl. the cloud metadata address
//! 169.254.169.254, fe80::/10), multicast, broadcast, or another reserved/documentation range,
//! IPv4-mapped and NAT64-free IPv6 forms included. An `allow_peers` CIDR lets such a range
//! through. The relay's own advertised address is never refused for permissions (two relayed
//! browsers talk relay to relay), but data to it is only relayed to ports in the relay range, so
//! other services on the relay host stay unreachable.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

/// An IP network in CIDR notation, e.g. `127.0.0.0/8` or `fd00::/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

/// A CIDR string that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid CIDR {0:?}: expected ADDRESS/PREFIX such as 127.0.0.0/8 or fd00::/8")]
pub struct CidrError(pub String);

impl Cidr {
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Cidr> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(Cidr { addr, prefix })
    }

    /// Whether `ip` is inside (an IPv4-mapped IPv6 address matches an IPv4 network).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - self.prefix)
                };
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - self.prefix)
                };
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = CidrError;
    fn from_str(s: &str) -> Result<Cidr, CidrError> {
        let err = || CidrError(s.to_string());
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.trim().parse().map_err(|_| err())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p.trim().parse::<u8>().map_err(|_| err())?,
            None => max,
        };
        Cidr::new(
            canonical(addr),
            if addr.is_ipv4() || !is_mapped(addr) {
                prefix
            } else {
                prefix.saturating_sub(96)
            },
        )
        .ok_or_else(err)
    }
}

fn is_mapped(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some())
}

/// IPv4-mapped IPv6 (`::ffff:a.b.c.d`) becomes IPv4; everything else is unchanged.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// Whether the default policy refuses `ip` as a peer.
pub fn denied_by_default(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => denied_v4(v4),
        IpAddr::V6(v6) => denied_v6(v6),
    }
}

fn denied_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    ip.is_unspecified()
        || o[0] == 0 // 0.0.0.0/8 "this network"
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local() // 169.254/16, incl. 169.254.169.254 metadata
        || ip.is_multicast()
        || ip.is_broadcast()
        || (o[0] == 100 && (o[1] & 0xC0) == 64) // 100.64.0.0/10 shared (CGNAT)
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // 192.0.0.0/24 IETF protocol assignments
        || (o[0] == 198 && (o[1] & 0xFE) == 18) // 198.18.0.0/15 benchmarking
        || o[0] >= 240 // 240.0.0.0/4 reserved
}

fn denied_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (s[0] & 0xFE00) == 0xFC00 // fc00::/7 unique local
        || (s[0] & 0xFFC0) == 0xFE80 // fe80::/10 link-local
        || (s[0] & 0xFFC0) == 0xFEC0 // fec0::/10 deprecated site-local
        // ::/96 IPv4-compatible (deprecated) could smuggle v4 addresses
        || (s[0..6] == [0, 0, 0, 0, 0, 0])
        // 64:ff9b::/96 NAT64 of an internal v4 address
        || (s[0..6] == [0x64, 0xff9b, 0, 0, 0, 0]
            && denied_v4(Ipv4Addr::new(
                (s[6] >> 8) as u8,
                s[6] as u8,
                (s[7] >> 8) as u8,
                s[7] as u8,
            )))
    // Metadata services on IPv6 (AWS fd00:ec2::254 is in fc00::/7 already).
}

/// The peer-address policy of one server.
#[derive(Debug, Clone, Default)]
pub struct PeerFilter {
    allow: Vec<Cidr>,
    own: Vec<IpAddr>,
    /// Exact peers allowed although their address is internal, e.g. the SFU beside the relay.
    exact: Vec<SocketAddr>,
}

/// What the policy says about a peer IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A public address or one an allow rule names.
    Allow,
    /// The relay's own advertised address, otherwise denied: only relay ports may be reached.
    OwnAddress,
    /// Refused.
    Deny,
}

impl PeerFilter {
    /// `allow` rules widen the default policy; `own` are the relay's advertised addresses.
    pub fn new(allow: Vec<Cidr>, own: Vec<IpAddr>) -> PeerFilter {
        PeerFilter {
            allow,
            own: own.into_iter().map(canonical).collect(),
            exact: Vec::new(),
        }
    }

    /// Also allows exactly these `ip:port` peers (their addresses get the same treatment as
    /// the relay's own: permitted, but data only reaches these ports and the relay ports).
    pub fn with_exact(mut self, exact: Vec<SocketAddr>) -> PeerFilter {
        self.exact = exact
            .into_iter()
            .map(|a| SocketAddr::new(canonical(a.ip()), a.port()))
            .collect();
        self
    }

    /// Whether `peer` is one of the exact allowances.
    pub fn exact_allows(&self, peer: SocketAddr) -> bool {
        self.exact
            .contains(&SocketAddr::new(canonical(peer.ip()), peer.port()))
    }

    pub fn verdict(&self, ip: IpAddr) -> Verdict {
        let ip = canonical(ip);
        if !denied_by_default(ip) || self.allow.iter().any(|c| c.contains(ip)) {
            Verdict::Allow
        } else if self.own.contains(&ip) || self.exact.iter().any(|a| a.ip() == ip) {
            Verdict::OwnAddress
        } else {
            Verdict::Deny
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn exact_peers_are_permitted_on_their_port_only() {
        let sfu: SocketAddr = "10.0.0.5:3479".parse().unwrap();
        let f = PeerFilter::new(vec![], vec![]).with_exact(vec![sfu]);
        assert_eq!(f.verdict(ip("10.0.0.5")), Verdict::OwnAddress);
        assert!(f.exact_allows(sfu));
        assert!(!f.exact_allows("10.0.0.5:22".parse().unwrap()));
        assert_eq!(f.verdict(ip("10.0.0.6")), Verdict::Deny);
    }

    #[test]
    fn defaults_deny_internal_ranges() {
        for a in [
            "127.0.0.1",
            "127.9.9.9",
            "0.0.0.0",
            "0.1.2.3",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "169.254.0.1",
            "224.0.0.1",
            "239.255.255.250",
            "255.255.255.255",
            "100.64.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd00:ec2::254",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a00:1",
        ] {
            assert!(denied_by_default(ip(a)), "{a} should be denied");
        }
        for a in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "192.169.0.1",
            "2001:4860::8888",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(!denied_by_default(ip(a)), "{a} should be allowed");
        }
    }

    #[test]
    fn allow_rules_and_own_address() {
        let f = PeerFilter::new(
            vec!["127.0.0.0/8".parse().unwrap(), "fd00::/8".parse().unwrap()],
            vec![ip("10.0.0.5")],
        );
        assert_eq!(f.verdict(ip("127.0.0.2")), Verdict::Allow);
        assert_eq!(f.verdict(ip("::ffff:127.0.0.2")), Verdict::Allow);
        assert_eq!(f.verdict(ip("fd12::1")), Verdict::Allow);
        assert_eq!(f.verdict(ip("10.0.0.5")), Verdict::OwnAddress);
        assert_eq!(f.verdict(ip("10.0.0.6")), Verdict::Deny);
        assert_eq!(f.verdict(ip("8.8.8.8")), Verdict::Allow);
    }

    #[test]
    fn cidr_parsing() {
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("nonsense".parse::<Cidr>().is_err());
        let host: Cidr = "192.168.1.7".parse().unwrap();
        assert!(host.contains(ip("192.168.1.7")));
        assert!(!host.contains(ip("192.168.1.8")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("10.0.0.1")));
        assert!(!all.contains(ip("::1")));
        let mapped: Cidr = "::ffff:127.0.0.0/104".parse().unwrap();
        assert!(mapped.contains(ip("127.1.2.3")));
    }
}
