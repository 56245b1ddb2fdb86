//! The host's own addresses: the outward address to advertise when none is configured, and the
//! interface addresses the peer filter treats as the relay's own host.

use std::net::{IpAddr, Ipv4Addr};

/// The address of the interface that routes to the internet, found without sending anything.
pub(super) fn derive_public_ip(listen: IpAddr) -> IpAddr {
    if !listen.is_unspecified() {
        return listen;
    }
    let found = crate::net::outward_ip(listen.is_ipv4());
    found.unwrap_or_else(|| {
        tracing::warn!(
            "cannot find a routable address; advertising 127.0.0.1 (set turn.public_ip)"
        );
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    })
}

/// The addresses of the host's interfaces (empty if they cannot be read), link-local ones
/// included.
pub(super) fn interface_addresses() -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = match if_addrs::get_if_addrs() {
        Ok(interfaces) => interfaces.iter().map(|i| i.ip()).collect(),
        Err(_) => Vec::new(),
    };
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_addresses_include_loopback_once_and_sorted() {
        let local = interface_addresses();
        assert!(
            local.contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)),
            "{local:?}"
        );
        assert!(local.windows(2).all(|w| w[0] < w[1]), "{local:?}");
    }
}
