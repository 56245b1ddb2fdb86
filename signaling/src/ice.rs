//! The `ice_servers` each peer gets: Aula's STUN and TURN URLs with credentials bound to the peer.
//!
//! Credentials are short-lived (`[turn] max_credential_lifetime_secs`, 10 minutes by default): a
//! connection gets new ones [`IceProvider::renew_after`] its join, again and again while it
//! stays, so relay access ends soon after a person leaves or is removed.

use aula_relay::credentials;

use crate::protocol::IceServer;

/// Where the relay is reachable and how to mint its credentials.
#[derive(Debug, Clone, Default)]
pub struct IceProvider {
    /// `host:port` of STUN and TURN over UDP, as browsers should dial it. None: no relay.
    pub udp_addr: Option<String>,
    /// `host:port` of TURN over TCP.
    pub tcp_addr: Option<String>,
    /// `host:port` of TURN over TLS, when enabled.
    pub tls_addr: Option<String>,
    /// The TURN REST API secret shared with the relay.
    pub secret: String,
    /// How long minted credentials stay valid.
    pub ttl_secs: u64,
    /// How long before expiry a connected peer gets new ones.
    pub renew_before_secs: u64,
}

impl IceProvider {
    /// How long after minting a connected peer's credentials are renewed; None without a relay.
    pub fn renew_after(&self) -> Option<std::time::Duration> {
        self.udp_addr.as_ref()?;
        let secs = self.ttl_secs.saturating_sub(self.renew_before_secs).max(1);
        Some(std::time::Duration::from_secs(secs))
    }

    /// The ICE servers for `identity` (e.g. `class/peer`), valid from `now_unix`.
    pub fn for_peer(&self, identity: &str, now_unix: u64) -> Vec<IceServer> {
        let Some(udp) = &self.udp_addr else {
            return Vec::new();
        };
        let creds = credentials::mint(&self.secret, identity, now_unix, self.ttl_secs);
        let mut urls = vec![format!("turn:{udp}?transport=udp")];
        if let Some(tcp) = &self.tcp_addr {
            urls.push(format!("turn:{tcp}?transport=tcp"));
        }
        if let Some(tls) = &self.tls_addr {
            urls.push(format!("turns:{tls}?transport=tcp"));
        }
        vec![
            IceServer {
                urls: vec![format!("stun:{udp}")],
                username: None,
                credential: None,
            },
            IceServer {
                urls,
                username: Some(creds.username),
                credential: Some(creds.password),
            },
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_credentials() {
        let p = IceProvider {
            udp_addr: Some("192.0.2.1:3478".into()),
            tcp_addr: Some("192.0.2.1:3478".into()),
            tls_addr: Some("relay.example.org:443".into()),
            secret: "s".into(),
            ttl_secs: 3600,
            renew_before_secs: 600,
        };
        let servers = p.for_peer("c1/p3", 1000);
        assert_eq!(servers[0].urls, ["stun:192.0.2.1:3478"]);
        assert_eq!(
            servers[1].urls,
            [
                "turn:192.0.2.1:3478?transport=udp",
                "turn:192.0.2.1:3478?transport=tcp",
                "turns:relay.example.org:443?transport=tcp"
            ]
        );
        let user = servers[1].username.as_deref().unwrap();
        assert_eq!(user, "4600:c1/p3");
        assert_eq!(
            servers[1].credential.as_deref(),
            Some(credentials::password_for("s", user).as_str())
        );
        assert!(IceProvider::default().for_peer("x", 0).is_empty());
        assert_eq!(p.renew_after(), Some(std::time::Duration::from_secs(3000)));
        assert_eq!(IceProvider::default().renew_after(), None);
    }
}
