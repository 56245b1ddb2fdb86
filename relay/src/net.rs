//! Which local address routes outwards: what the TURN relay and the SFU advertise when they listen
//! on a wildcard address and no public IP is configured.

use std::net::IpAddr;

/// The address of the interface that routes to the internet, in the family of `v4`, found
/// without sending anything (a UDP socket is only connected to a documentation address).
pub fn outward_ip(v4: bool) -> Option<IpAddr> {
    let (bind, target) = if v4 {
        ("0.0.0.0:0", "192.0.2.1:3478")
    } else {
        ("[::]:0", "[2001:db8::1]:3478")
    };
    let socket = std::net::UdpSocket::bind(bind).ok()?;
    socket.connect(target).ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_unspecified()).then_some(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outward_address_is_specific_and_of_the_asked_family() {
        // A host without a route outwards has none; one with a route gives a usable address.
        if let Some(ip) = outward_ip(true) {
            assert!(ip.is_ipv4() && !ip.is_unspecified(), "{ip}");
        }
        if let Some(ip) = outward_ip(false) {
            assert!(ip.is_ipv6() && !ip.is_unspecified(), "{ip}");
        }
    }
}
