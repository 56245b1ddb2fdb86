//! Which peer addresses a relay may send to (secure defaults against CVE-2020-26262-style abuse).
//!
//! A peer is judged in this order:
//!
//! 1. **IPv6 forms that embed an IPv4 address** are judged by the embedded address: IPv4-mapped
//!    `::ffff:a.b.c.d` (treated as the IPv4 address itself), SIIT `::ffff:0:a.b.c.d`, 6to4
//!    `2002:AABB:CCDD::/48`, the well-known NAT64 prefix `64:ff9b::/96` and Teredo
//!    `2001:0::/32` (its server and its client address). Such a peer is refused when the embedded
//!    address is refused or is one of the relay's own. IPv4-compatible `::a.b.c.d` (deprecated)
//!    and the local-use NAT64 prefix `64:ff9b:1::/48` (its layout is the operator's choice, so
//!    the embedded address cannot be read reliably) are always refused.
//! 2. **The relay's own host** — its advertised address, every address of its interfaces and the
//!    whole loopback range — is reachable only on ports that hold a live allocation of this relay
//!    (two relayed browsers talk relay to relay) and on exact `allow_peer_addrs`. A permission to
//!    such an address is granted when the address is the advertised one or otherwise allowed by
//!    the rules below, but data to any other port is refused (403 for ChannelBind, dropped and
//!    counted for Send and ChannelData). An `allow_peers` rule never opens other ports of the host.
//! 3. **Exact `allow_peer_addrs`** (`ip:port`, e.g. Aula's SFU on a LAN address) are reachable on
//!    exactly that port.
//! 4. **The default policy** refuses: unspecified and `0.0.0.0/8`, loopback, private
//!    (RFC 1918, `fc00::/7`), shared `100.64.0.0/10`, link-local (`169.254.0.0/16` with the
//!    cloud metadata address, `fe80::/10`), deprecated site-local `fec0::/10`, multicast,
//!    broadcast, `192.0.0.0/24` (IETF protocol assignments), `198.18.0.0/15` (benchmarking) and
//!    `240.0.0.0/4` (reserved). Everything else is allowed — including the documentation ranges
//!    (`192.0.2.0/24`, `198.51.100.0/24`, `203.0.113.0/24`, `2001:db8::/32`), which route nowhere.
//!    An `allow_peers` CIDR lets a refused range through (except the relay's own host, above).

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

/// Whether the default policy (rules 1 and 4 of the module docs, without allow rules or the
/// relay's own addresses) refuses `ip` as a peer. Only the tests ask this alone.
#[cfg(test)]
pub fn denied_by_default(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => denied_v4(v4),
        IpAddr::V6(v6) => {
            denied_v6(v6)
                || match embedded_v4(v6) {
                    Embedded::None => false,
                    Embedded::Refused => true,
                    Embedded::V4(a, b) => denied_v4(a) || b.is_some_and(denied_v4),
                }
        }
    }
}

/// The IPv4 address(es) an IPv6 address carries (IPv4-mapped is handled by [`canonical`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Embedded {
    /// A plain IPv6 address.
    None,
    /// A form that is always refused: IPv4-compatible `::/96`, local-use NAT64 `64:ff9b:1::/48`.
    Refused,
    /// Judged by these addresses (Teredo carries two: its server and its client).
    V4(Ipv4Addr, Option<Ipv4Addr>),
}

fn v4_of(hi: u16, lo: u16) -> Ipv4Addr {
    Ipv4Addr::from(((hi as u32) << 16) | lo as u32)
}

fn embedded_v4(ip: Ipv6Addr) -> Embedded {
    let s = ip.segments();
    if ip.is_loopback() {
        // `::1` is loopback, judged as such.
        Embedded::None
    } else if s[0..6] == [0, 0, 0, 0, 0, 0] {
        // IPv4-compatible (deprecated), `::` included.
        Embedded::Refused
    } else if s[0..6] == [0, 0, 0, 0, 0xffff, 0] {
        // SIIT (RFC 6145) `::ffff:0:a.b.c.d`.
        Embedded::V4(v4_of(s[6], s[7]), None)
    } else if s[0..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        // Well-known NAT64 prefix (RFC 6052).
        Embedded::V4(v4_of(s[6], s[7]), None)
    } else if s[0..3] == [0x64, 0xff9b, 1] {
        // Local-use NAT64 (RFC 8215): the operator picks the prefix length inside it.
        Embedded::Refused
    } else if s[0] == 0x2002 {
        // 6to4 (RFC 3056): `2002:AABB:CCDD::/48`.
        Embedded::V4(v4_of(s[1], s[2]), None)
    } else if s[0] == 0x2001 && s[1] == 0 {
        // Teredo (RFC 4380): server address, then the client's, obfuscated (inverted).
        Embedded::V4(v4_of(s[2], s[3]), Some(v4_of(!s[6], !s[7])))
    } else {
        Embedded::None
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
        || (s[0] & 0xFE00) == 0xFC00 // fc00::/7 unique local (AWS metadata fd00:ec2::254 too)
        || (s[0] & 0xFFC0) == 0xFE80 // fe80::/10 link-local
        || (s[0] & 0xFFC0) == 0xFEC0 // fec0::/10 deprecated site-local
}

/// The peer-address policy of one server.
#[derive(Debug, Clone, Default)]
pub struct PeerFilter {
    allow: Vec<Cidr>,
    /// The relay's advertised addresses: permissions to them are always granted (relay to relay).
    advertised: Vec<IpAddr>,
    /// The addresses of the host's interfaces (refreshed by the I/O layer).
    local: Vec<IpAddr>,
    /// Exact peers allowed although their address is internal, e.g. the SFU beside the relay.
    exact: Vec<SocketAddr>,
}

/// What the policy says about a peer IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A public address or one an allow rule names.
    Allow,
    /// The relay's own host or an exact allowance's address: a permission may be installed, but
    /// data only reaches live relay ports and exact `ip:port` allowances
    /// ([`PeerFilter::restricted_port_allowed`]).
    Restricted,
    /// Refused.
    Deny,
}

impl PeerFilter {
    /// `allow` rules widen the default policy; `advertised` are the relay's advertised addresses.
    pub fn new(allow: Vec<Cidr>, advertised: Vec<IpAddr>) -> PeerFilter {
        PeerFilter {
            allow,
            advertised: advertised.into_iter().map(canonical).collect(),
            local: Vec::new(),
            exact: Vec::new(),
        }
    }

    /// Also allows exactly these `ip:port` peers, although their address is internal or the
    /// relay's own.
    pub fn with_exact(mut self, exact: Vec<SocketAddr>) -> PeerFilter {
        self.exact = exact
            .into_iter()
            .map(|a| SocketAddr::new(canonical(a.ip()), a.port()))
            .collect();
        self
    }

    /// Sets the addresses of the host's interfaces (they are the relay's own too).
    pub fn set_local_addresses(&mut self, local: Vec<IpAddr>) {
        self.local = local.into_iter().map(canonical).collect();
    }

    /// Whether `peer` is one of the exact allowances.
    pub fn exact_allows(&self, peer: SocketAddr) -> bool {
        let ip = canonical(peer.ip());
        self.exact
            .iter()
            .any(|a| a.ip() == ip && a.port() == peer.port())
    }

    /// Whether `ip` reaches the relay's own host: advertised, an interface's or loopback.
    pub fn is_own(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        ip.is_loopback() || self.advertised.contains(&ip) || self.local.contains(&ip)
    }

    /// Whether data may go to `peer` under a [`Verdict::Restricted`] permission: a port of the
    /// relay's own host that holds a live allocation (`live_port`), or an exact allowance.
    pub fn restricted_port_allowed(
        &self,
        peer: SocketAddr,
        live_port: impl Fn(u16) -> bool,
    ) -> bool {
        (self.is_own(peer.ip()) && live_port(peer.port())) || self.exact_allows(peer)
    }

    fn allowed_by_rule(&self, ip: IpAddr) -> bool {
        self.allow.iter().any(|c| c.contains(ip))
    }

    /// Whether an embedded IPv4 address is refused (denied and not allowed, or the relay's own).
    fn refuses_embedded(&self, v4: Ipv4Addr) -> bool {
        let ip = IpAddr::V4(v4);
        (denied_v4(v4) && !self.allowed_by_rule(ip)) || self.is_own(ip)
    }

    pub fn verdict(&self, ip: IpAddr) -> Verdict {
        let ip = canonical(ip);
        if ip.is_unspecified() {
            return Verdict::Deny;
        }
        if let IpAddr::V6(v6) = ip {
            match embedded_v4(v6) {
                Embedded::None => {}
                Embedded::Refused => return Verdict::Deny,
                Embedded::V4(a, b) => {
                    if self.refuses_embedded(a) || b.is_some_and(|b| self.refuses_embedded(b)) {
                        return Verdict::Deny;
                    }
                }
            }
        }
        // Embedded addresses passed above, so the address is judged as itself.
        let denied = match ip {
            IpAddr::V4(v4) => denied_v4(v4),
            IpAddr::V6(v6) => denied_v6(v6),
        };
        let open = !denied || self.allowed_by_rule(ip);
        if self.is_own(ip) {
            // Own host: never more than live relay ports and exact allowances.
            if open || self.advertised.contains(&ip) || self.exact.iter().any(|a| a.ip() == ip) {
                Verdict::Restricted
            } else {
                Verdict::Deny
            }
        } else if self.exact.iter().any(|a| a.ip() == ip) && !open {
            Verdict::Restricted
        } else if open {
            Verdict::Allow
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
        assert_eq!(f.verdict(ip("10.0.0.5")), Verdict::Restricted);
        assert!(f.exact_allows(sfu));
        assert!(f.restricted_port_allowed(sfu, |_| true));
        assert!(!f.restricted_port_allowed("10.0.0.5:22".parse().unwrap(), |_| true));
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
            "::8.8.8.8",
            "64:ff9b::a00:1",
            "64:ff9b::7f00:1",
            "64:ff9b:1::808:808",
            "64:ff9b:1:ff00::1",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::1",
            "2002:a00:1::1",
            "::ffff:0:127.0.0.1",
            "::ffff:0:a9fe:a9fe",
            // Teredo: server 65.54.227.120, client 127.0.0.1 (inverted: 80ff:fffe).
            "2001:0:4136:e378:8000:63bf:80ff:fffe",
            // Teredo: server 10.0.0.1.
            "2001:0:a00:1:8000:63bf:3fff:fdd2",
        ] {
            assert!(denied_by_default(ip(a)), "{a} should be denied");
            let f = PeerFilter::new(vec![], vec![]);
            assert_eq!(f.verdict(ip(a)), Verdict::Deny, "{a}");
        }
        for a in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "192.169.0.1",
            "192.0.2.1",
            "203.0.113.9",
            "2001:db8::1",
            "2001:4860::8888",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "::ffff:0:8.8.8.8",
            // Teredo: server 65.54.227.120, client 192.0.2.45 (inverted: 3fff:fdd2).
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        ] {
            assert!(!denied_by_default(ip(a)), "{a} should be allowed");
            let f = PeerFilter::new(vec![], vec![]);
            assert_eq!(f.verdict(ip(a)), Verdict::Allow, "{a}");
        }
    }

    #[test]
    fn embedded_forms_of_own_or_allowed_addresses() {
        let mut f = PeerFilter::new(vec!["10.0.0.0/8".parse().unwrap()], vec![ip("8.8.4.4")]);
        f.set_local_addresses(vec![ip("192.0.2.7")]);
        // Embedding the relay's own address is refused even when the address is public.
        for a in [
            "2002:808:404::1",
            "64:ff9b::808:404",
            "::ffff:0:192.0.2.7",
            "2002:c000:207::",
        ] {
            assert_eq!(f.verdict(ip(a)), Verdict::Deny, "{a}");
        }
        // An allow rule lets an embedded address through as it lets the address itself.
        assert_eq!(f.verdict(ip("2002:a00:1::1")), Verdict::Allow);
        assert_eq!(f.verdict(ip("64:ff9b::a00:1")), Verdict::Allow);
        assert_eq!(f.verdict(ip("2002:c0a8:101::1")), Verdict::Deny);
    }

    #[test]
    fn own_host_is_restricted_whatever_the_rules() {
        let mut f = PeerFilter::new(
            vec!["0.0.0.0/0".parse().unwrap(), "::/0".parse().unwrap()],
            vec![ip("203.0.113.10")],
        );
        f.set_local_addresses(vec![ip("198.51.100.7"), ip("10.0.0.5"), ip("2001:db8::7")]);
        let f = f.with_exact(vec!["10.0.0.5:3479".parse().unwrap()]);
        for a in [
            "203.0.113.10",
            "198.51.100.7",
            "10.0.0.5",
            "127.0.0.1",
            "127.3.3.3",
            "::1",
            "2001:db8::7",
        ] {
            assert_eq!(f.verdict(ip(a)), Verdict::Restricted, "{a}");
        }
        let live = |p: u16| p == 50000;
        assert!(f.restricted_port_allowed("203.0.113.10:50000".parse().unwrap(), live));
        assert!(f.restricted_port_allowed("198.51.100.7:50000".parse().unwrap(), live));
        assert!(!f.restricted_port_allowed("203.0.113.10:3478".parse().unwrap(), live));
        assert!(!f.restricted_port_allowed("127.0.0.1:25353".parse().unwrap(), live));
        assert!(f.restricted_port_allowed("10.0.0.5:3479".parse().unwrap(), live));
        assert!(!f.restricted_port_allowed("10.0.0.5:22".parse().unwrap(), live));
        // Without rules: the advertised address keeps its permission (relay to relay), other
        // internal own addresses are refused outright.
        let mut f = PeerFilter::new(vec![], vec![ip("203.0.113.10")]);
        f.set_local_addresses(vec![ip("10.0.0.5")]);
        assert_eq!(f.verdict(ip("203.0.113.10")), Verdict::Restricted);
        assert_eq!(f.verdict(ip("10.0.0.5")), Verdict::Deny);
        assert_eq!(f.verdict(ip("127.0.0.1")), Verdict::Deny);
        assert_eq!(f.verdict(ip("8.8.8.8")), Verdict::Allow);
    }

    #[test]
    fn allow_rules_and_own_address() {
        let f = PeerFilter::new(
            vec![
                "172.16.0.0/12".parse().unwrap(),
                "fd00::/8".parse().unwrap(),
            ],
            vec![ip("10.0.0.5")],
        );
        assert_eq!(f.verdict(ip("172.16.0.2")), Verdict::Allow);
        assert_eq!(f.verdict(ip("::ffff:172.16.0.2")), Verdict::Allow);
        assert_eq!(f.verdict(ip("fd12::1")), Verdict::Allow);
        assert_eq!(f.verdict(ip("10.0.0.5")), Verdict::Restricted);
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
