//! The `ice_servers` each peer gets: Aula's STUN and TURN URLs with credentials bound to the peer.

use aula_relay::credentials;

use crate::protocol::IceServer;

/// Where the relay is reachable and how to mint its credentials.
#[derive(Debug, Clone, Default)]
pub struct IceProvider {
    /// `host:port` of TURN over UDP and TCP, as browsers should dial it. None: no relay.
    pub turn_addr: Option<String>,
    /// `host:port` of TURN over TLS, when enabled.
    pub turns_addr: Option<String>,
    /// The TURN REST API secret shared with the relay.
    pub secret: String,
    /// How long minted credentials stay valid.
    pub ttl_secs: u64,
}

impl IceProvider {
    /// The ICE servers for `identity` (e.g. `class/peer`), valid from `now_unix`.
    pub fn for_peer(&self, identity: &str, now_unix: u64) -> Vec<IceServer> {
        let Some(turn) = &self.turn_addr else {
            return Vec::new();
        };
        let creds = credentials::mint(&self.secret, identity, now_unix, self.ttl_secs);
        let mut urls = vec![
            format!("turn:{turn}?transport=udp"),
            format!("turn:{turn}?transport=tcp"),
        ];
        if let Some(turns) = &self.turns_addr {
            urls.push(format!("turns:{turns}?transport=tcp"));
        }
        vec![
            IceServer {
                urls: vec![format!("stun:{turn}")],
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
            turn_addr: Some("192.0.2.1:3478".into()),
            turns_addr: Some("relay.example.org:443".into()),
            secret: "s".into(),
            ttl_secs: 3600,
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
    }
}
