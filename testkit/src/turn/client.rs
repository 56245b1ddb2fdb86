//! A small TURN client over UDP, TCP or TLS, built on the relay's own codec, for tests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aula_relay::credentials;
use aula_relay::turn::stun::{self, attr, code, method, Class, Framing, Message, MessageWriter};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use super::{unix_now, SECRET, TIMEOUT};
use crate::net::tcp_connect_from;

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

enum Conn {
    Udp(UdpSocket, SocketAddr),
    Stream(Box<dyn Stream>, Vec<u8>),
}

impl Conn {
    async fn send(&mut self, pkt: &[u8]) {
        match self {
            Conn::Udp(s, to) => {
                s.send_to(pkt, *to).await.unwrap();
            }
            Conn::Stream(s, _) => {
                s.write_all(pkt).await.unwrap();
                s.flush().await.unwrap();
            }
        }
    }

    async fn recv(&mut self) -> Option<Vec<u8>> {
        tokio::time::timeout(TIMEOUT, self.recv_inner())
            .await
            .ok()
            .flatten()
    }

    async fn recv_inner(&mut self) -> Option<Vec<u8>> {
        match self {
            Conn::Udp(s, _) => {
                let mut buf = vec![0u8; 65536];
                let (n, _) = s.recv_from(&mut buf).await.ok()?;
                buf.truncate(n);
                Some(buf)
            }
            Conn::Stream(s, pending) => loop {
                if let Some(f) = stun::framing(pending) {
                    let n = match f {
                        Framing::Stun(n) => n,
                        Framing::ChannelData(_, n) => 4 + stun::pad4(n),
                        Framing::Invalid => panic!("invalid framing from server"),
                    };
                    if pending.len() >= n {
                        let frame: Vec<u8> = pending.drain(..n).collect();
                        return Some(frame);
                    }
                }
                let mut buf = [0u8; 4096];
                let n = s.read(&mut buf).await.ok()?;
                if n == 0 {
                    return None;
                }
                pending.extend_from_slice(&buf[..n]);
            },
        }
    }

    fn is_stream(&self) -> bool {
        matches!(self, Conn::Stream(..))
    }
}

/// Data received from a peer through the relay.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    Data(SocketAddr, Vec<u8>),
    Channel(u16, Vec<u8>),
}

pub struct Client {
    conn: Conn,
    pub username: String,
    pub password: String,
    realm: Option<String>,
    nonce: Option<Vec<u8>>,
    tid: u64,
    /// Data that arrived while waiting for a response.
    queued: Vec<Incoming>,
}

impl Client {
    pub async fn udp(server: SocketAddr) -> Client {
        let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        Client::new(Conn::Udp(s, server))
    }

    /// A UDP client whose socket is bound to `ip` (e.g. another 127.0.0.x, a different client
    /// address for per-IP quotas).
    pub async fn udp_from(ip: std::net::IpAddr, server: SocketAddr) -> Client {
        let s = UdpSocket::bind(SocketAddr::new(ip, 0)).await.unwrap();
        Client::new(Conn::Udp(s, server))
    }

    pub async fn tcp(server: SocketAddr) -> Client {
        let s = TcpStream::connect(server).await.unwrap();
        Client::new(Conn::Stream(Box::new(s), Vec::new()))
    }

    /// A TCP client connecting from `ip`.
    pub async fn tcp_from(ip: std::net::IpAddr, server: SocketAddr) -> Client {
        Client::new(Conn::Stream(
            Box::new(tcp_connect_from(ip, server).await),
            Vec::new(),
        ))
    }

    pub async fn tls(
        server: SocketAddr,
        root: rustls::pki_types::CertificateDer<'static>,
    ) -> Client {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(root).unwrap();
        let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let tcp = TcpStream::connect(server).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let s = tokio_rustls::TlsConnector::from(Arc::new(cfg))
            .connect(name, tcp)
            .await
            .unwrap();
        Client::new(Conn::Stream(Box::new(s), Vec::new()))
    }

    fn new(conn: Conn) -> Client {
        let c = credentials::mint(SECRET, "student-1", unix_now(), 600);
        Client {
            conn,
            username: c.username,
            password: c.password,
            realm: None,
            nonce: None,
            tid: rand_seed(),
            queued: Vec::new(),
        }
    }

    pub fn with_credentials(mut self, username: String, password: String) -> Client {
        self.username = username;
        self.password = password;
        self
    }

    pub fn with_identity(mut self, identity: &str) -> Client {
        let c = credentials::mint(SECRET, identity, unix_now(), 600);
        self.username = c.username;
        self.password = c.password;
        self
    }

    fn next_tid(&mut self) -> [u8; 12] {
        self.tid = self.tid.wrapping_mul(6364136223846793005).wrapping_add(1);
        let mut t = [0u8; 12];
        t[..8].copy_from_slice(&self.tid.to_be_bytes());
        t
    }

    fn key(&self) -> [u8; 16] {
        stun::long_term_key(
            &self.username,
            self.realm.as_deref().unwrap_or(""),
            &self.password,
        )
    }

    /// Sends a request (authenticating after a 401/438 challenge) and returns the final
    /// response bytes.
    pub async fn request(&mut self, m: u16, add: impl Fn(&mut MessageWriter<'_>)) -> Vec<u8> {
        for _ in 0..3 {
            let tid = self.next_tid();
            let mut buf = Vec::new();
            {
                let mut w = MessageWriter::new(&mut buf, m, Class::Request, &tid);
                add(&mut w);
                if let (Some(realm), Some(nonce)) = (self.realm.clone(), self.nonce.clone()) {
                    w.attr(attr::USERNAME, self.username.as_bytes())
                        .attr(attr::REALM, realm.as_bytes())
                        .attr(attr::NONCE, &nonce);
                    w.integrity(&self.key());
                }
                w.fingerprint();
            }
            self.conn.send(&buf).await;
            let resp = self.response(&tid).await;
            let msg = Message::parse(&resp).expect("valid response");
            match msg.error_code() {
                Some(code::UNAUTHORIZED) | Some(code::STALE_NONCE) if msg.nonce().is_some() => {
                    let retry = self.nonce.is_none() || msg.error_code() == Some(code::STALE_NONCE);
                    self.realm = msg.realm().map(str::to_string);
                    self.nonce = msg.nonce().map(<[u8]>::to_vec);
                    if retry {
                        continue;
                    }
                    return resp;
                }
                _ => return resp,
            }
        }
        panic!("authentication loop");
    }

    async fn response(&mut self, tid: &[u8; 12]) -> Vec<u8> {
        loop {
            let pkt = self.conn.recv().await.expect("response before timeout");
            if let Some(inc) = parse_incoming(&pkt) {
                self.queued.push(inc);
                continue;
            }
            let msg = Message::parse(&pkt).expect("valid STUN from server");
            if msg.transaction_id() == tid {
                return pkt;
            }
        }
    }

    /// Allocates; `Ok(relayed address)` or `Err(error code)`.
    pub async fn allocate(&mut self) -> Result<SocketAddr, u16> {
        self.allocate_family(1).await
    }

    /// Allocates a relayed address of REQUESTED-ADDRESS-FAMILY `family` (1 IPv4, 2 IPv6).
    pub async fn allocate_family(&mut self, family: u8) -> Result<SocketAddr, u16> {
        let resp = self
            .request(method::ALLOCATE, |w| {
                w.attr(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
                if family != 1 {
                    w.attr(attr::REQUESTED_ADDRESS_FAMILY, &[family, 0, 0, 0]);
                }
            })
            .await;
        let msg = Message::parse(&resp).unwrap();
        match msg.class() {
            Class::Success => {
                assert!(msg.verify_integrity(&self.key()), "response integrity");
                Ok(msg.xor_address(attr::XOR_RELAYED_ADDRESS).unwrap())
            }
            _ => Err(msg.error_code().unwrap()),
        }
    }

    pub async fn refresh(&mut self, lifetime: u32) -> Result<u32, u16> {
        let resp = self
            .request(method::REFRESH, |w| {
                w.u32_attr(attr::LIFETIME, lifetime);
            })
            .await;
        let msg = Message::parse(&resp).unwrap();
        match msg.class() {
            Class::Success => Ok(msg.u32_attr(attr::LIFETIME).unwrap()),
            _ => Err(msg.error_code().unwrap()),
        }
    }

    pub async fn create_permission(&mut self, peer: SocketAddr) -> Result<(), u16> {
        let resp = self
            .request(method::CREATE_PERMISSION, |w| {
                w.xor_address(attr::XOR_PEER_ADDRESS, &peer);
            })
            .await;
        result(&resp)
    }

    pub async fn channel_bind(&mut self, channel: u16, peer: SocketAddr) -> Result<(), u16> {
        let resp = self
            .request(method::CHANNEL_BIND, |w| {
                w.u32_attr(attr::CHANNEL_NUMBER, (channel as u32) << 16)
                    .xor_address(attr::XOR_PEER_ADDRESS, &peer);
            })
            .await;
        result(&resp)
    }

    pub async fn binding(&mut self) -> SocketAddr {
        let tid = self.next_tid();
        let mut buf = Vec::new();
        MessageWriter::new(&mut buf, method::BINDING, Class::Request, &tid).fingerprint();
        self.conn.send(&buf).await;
        let resp = self.response(&tid).await;
        Message::parse(&resp)
            .unwrap()
            .xor_address(attr::XOR_MAPPED_ADDRESS)
            .unwrap()
    }

    pub async fn send_indication(&mut self, peer: SocketAddr, data: &[u8]) {
        let tid = self.next_tid();
        let mut buf = Vec::new();
        MessageWriter::new(&mut buf, method::SEND, Class::Indication, &tid)
            .xor_address(attr::XOR_PEER_ADDRESS, &peer)
            .attr(attr::DATA, data);
        self.conn.send(&buf).await;
    }

    pub async fn send_channel(&mut self, channel: u16, data: &[u8]) {
        let mut buf = vec![0u8; 4];
        stun::write_channel_header(&mut buf, channel, data.len());
        buf.extend_from_slice(data);
        if self.conn.is_stream() {
            buf.resize(stun::pad4(buf.len()), 0);
        }
        self.conn.send(&buf).await;
    }

    /// Next relayed packet, or `None` after the timeout.
    pub async fn recv(&mut self) -> Option<Incoming> {
        if !self.queued.is_empty() {
            return Some(self.queued.remove(0));
        }
        loop {
            let pkt = self.conn.recv().await?;
            if let Some(inc) = parse_incoming(&pkt) {
                return Some(inc);
            }
        }
    }

    /// Like [`Client::recv`] with a short wait, for "nothing arrives" checks.
    pub async fn recv_within(&mut self, d: Duration) -> Option<Incoming> {
        tokio::time::timeout(d, self.recv()).await.ok().flatten()
    }
}

fn parse_incoming(pkt: &[u8]) -> Option<Incoming> {
    match stun::framing(pkt)? {
        Framing::ChannelData(ch, n) => Some(Incoming::Channel(ch, pkt[4..4 + n].to_vec())),
        Framing::Stun(_) => {
            let msg = Message::parse(pkt).ok()?;
            if msg.class() == Class::Indication && msg.method() == method::DATA {
                Some(Incoming::Data(
                    msg.xor_address(attr::XOR_PEER_ADDRESS)?,
                    msg.get(attr::DATA)?.to_vec(),
                ))
            } else {
                None
            }
        }
        Framing::Invalid => None,
    }
}

fn result(resp: &[u8]) -> Result<(), u16> {
    let msg = Message::parse(resp).unwrap();
    match msg.class() {
        Class::Success => Ok(()),
        _ => Err(msg.error_code().unwrap()),
    }
}

fn rand_seed() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}
