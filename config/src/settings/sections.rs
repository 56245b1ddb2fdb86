//! The sections of [`Settings`](super::Settings) (`[tls]`, `[http]`, `[sfu]`, `[limits]`,
//! `[joining]`, `[ice]`): each a struct whose `Default` is the documented default.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use aula_relay::sfu::SfuConfig;

use serde::{Deserialize, Serialize};

use crate::Topology;

/// The `[ice]` section: TURN credentials live briefly (`turn.max_credential_lifetime_secs`) and
/// are renewed over the signaling connection while the person is in the class, so a removed
/// person's relay access ends soon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct IceSettings {
    /// How long before they expire a connected person gets new TURN credentials (an
    /// `ice_servers` message), in seconds; below `turn.max_credential_lifetime_secs`. Default 120.
    pub renew_before_secs: u64,
}

impl Default for IceSettings {
    fn default() -> Self {
        IceSettings {
            renew_before_secs: 120,
        }
    }
}

/// The `[tls]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TlsSettings {
    /// Serve HTTPS and WSS on `tls.listen` (plain HTTP stays on `listen`). Default `false`.
    pub enabled: bool,
    /// Address for HTTPS and WSS. Default `127.0.0.1:8443`.
    pub listen: SocketAddr,
    /// PEM file with the school's certificate chain (leaf first). Default: none, in which case a
    /// development certificate is generated in `dev_cert_dir`.
    pub cert: Option<PathBuf>,
    /// PEM file with the private key of `cert`. Default: none. Give both `cert` and `key`, or neither.
    pub key: Option<PathBuf>,
    /// Where the self-signed development certificate is generated and reused. Default `certs`.
    pub dev_cert_dir: PathBuf,
}

impl Default for TlsSettings {
    fn default() -> Self {
        TlsSettings {
            enabled: false,
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8443),
            cert: None,
            key: None,
            dev_cert_dir: PathBuf::from("certs"),
        }
    }
}

/// The `[http]` section: limits of the HTTP and HTTPS listeners and of the admin API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HttpSettings {
    /// Seconds a connection has to send a request's headers (also the keep-alive wait for the
    /// next request). Default 10.
    pub header_read_timeout_secs: u64,
    /// Seconds a connection may go without any byte read or written before it is closed. A live
    /// WebSocket is never idle that long (the server pings it every `limits.ping_interval_secs`).
    /// Default 120.
    pub connection_idle_secs: u64,
    /// Open connections (HTTP, HTTPS and WebSocket) one IP address may hold. Sized for a whole
    /// school behind one NAT address. Default 2000.
    pub max_connections_per_ip: usize,
    /// Open connections over all addresses; lowered at start to fit under the open-file limit.
    /// Default 16384.
    pub max_connections: usize,
    /// Failed admin-key attempts one IP may make per minute before it gets 429. Default 10.
    pub auth_failures_per_min: u32,
    /// With `open_class_creation`: classes one IP may create without the admin key per hour.
    /// Default 30.
    pub open_creation_per_ip_per_hour: u32,
    /// With `open_class_creation`: no class is created without the admin key while this many
    /// classes exist. Default 200.
    pub open_creation_max_classes: usize,
    /// Seconds an `Idempotency-Key` of `POST /api/v1/classes` is remembered. Default 86400.
    pub idempotency_key_ttl_secs: u64,
    /// Most `Idempotency-Key`s remembered (the oldest are forgotten first). Default 10000.
    pub idempotency_keys_max: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            header_read_timeout_secs: 10,
            connection_idle_secs: 120,
            max_connections_per_ip: 2000,
            max_connections: 16384,
            auth_failures_per_min: 10,
            open_creation_per_ip_per_hour: 30,
            open_creation_max_classes: 200,
            idempotency_key_ttl_secs: 24 * 3600,
            idempotency_keys_max: 10_000,
        }
    }
}

/// The `[sfu]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SfuSettings {
    /// Run the SFU in `aula serve`. Without it every class uses direct connections. Default `true`.
    pub enabled: bool,
    /// UDP address of the first SFU worker's media socket (every publisher and subscriber of
    /// its classes shares it); worker `i` listens on this port plus `i`. Default `0.0.0.0:3479`.
    pub listen: SocketAddr,
    /// SFU workers: threads with their own UDP socket each, the classes spread over them by
    /// load. `0`: one per CPU core. Default `0`.
    pub workers: usize,
    /// The address browsers reach the SFU by, advertised as its ICE candidate. Default: the
    /// `listen` IP if it is specific, otherwise the address of the interface routing outwards.
    pub public_ip: Option<IpAddr>,
    /// An `auto` class uses direct connections up to this many students and switches to the SFU
    /// above it. Default `4`.
    pub auto_above: usize,
    /// The topology of a class created without one (`POST /api/v1/classes` with no `topology`,
    /// and the start page): `p2p`, `sfu` or `auto`. Default `auto`.
    pub default_topology: Topology,
    /// Most subscribers one SFU worker (one core) serves at once; more are refused. Default `500`.
    pub max_subscribers: usize,
    /// Subscribers of one class one worker serves before the class spans another worker (the
    /// class's media is then handed to it in-process). Default `500`.
    pub subscribers_per_worker: usize,
    /// Most subscribers one class holds at once (never more than its members either), so one
    /// class cannot take the whole pool. Default `250`.
    pub max_subscribers_per_class: usize,
    /// Seconds a subscriber has to answer the SFU's offer and connect (a publisher: to connect
    /// after the SFU's answer); then it is dropped and its slot freed. Default `10`.
    pub offer_timeout_secs: u64,
    /// Subscribe requests one peer may make per minute (a burst of that many, then one every
    /// `60 / n` s); more get the error `rate_limited`. Default `12`.
    pub subscribes_per_minute: u32,
    /// Each log line of the SFU and its WebRTC stack (most are written per packet) may repeat
    /// this many times a second, after a burst of ten times that; the rest are dropped and
    /// counted in `aula_log_lines_suppressed_total`. Default `1`.
    pub log_lines_per_sec: u32,
    /// Peers that may publish through the SFU in one class at once (teachers and students given
    /// the floor). Default `16`.
    pub max_publishers_per_class: usize,
    /// Estimate each subscriber's downlink (transport-wide congestion control feedback) and send
    /// it the simulcast layers that fit; without it only loss moves a subscriber's layer.
    /// Default `true`.
    pub bandwidth_estimation: bool,
}

impl Default for SfuSettings {
    /// The SFU's own knobs default to `SfuConfig::default()` (the relay crate cannot see this
    /// one), so each is set in one place; the rest are what `aula serve` runs with.
    fn default() -> Self {
        let sfu = SfuConfig::default();
        SfuSettings {
            enabled: true,
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 3479),
            workers: sfu.workers,
            public_ip: None,
            auto_above: 4,
            default_topology: Topology::Auto,
            max_subscribers: sfu.max_subscribers,
            subscribers_per_worker: sfu.subscribers_per_worker,
            max_subscribers_per_class: sfu.max_subscribers_per_class,
            offer_timeout_secs: sfu.offer_timeout.as_secs(),
            subscribes_per_minute: sfu.subscribes_per_minute,
            log_lines_per_sec: 1,
            max_publishers_per_class: sfu.max_publishers_per_class,
            bandwidth_estimation: sfu.bandwidth_estimation,
        }
    }
}

impl SfuSettings {
    /// The address the SFU advertises: `public_ip`, else the `listen` IP when it is specific
    /// (`None`: the SFU uses it), else `fallback` (the TURN relay's advertised address), else
    /// the address of the interface routing outwards, else loopback.
    pub fn advertised_ip(&self, fallback: Option<IpAddr>) -> Option<IpAddr> {
        self.public_ip.or_else(|| {
            self.listen.ip().is_unspecified().then(|| {
                fallback
                    .or_else(|| aula_relay::net::outward_ip(true))
                    .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
            })
        })
    }

    /// The SFU's runtime configuration; `fallback_ip` as in [`SfuSettings::advertised_ip`].
    pub fn to_runtime(&self, fallback_ip: Option<IpAddr>) -> SfuConfig {
        SfuConfig {
            listen: self.listen,
            workers: self.workers,
            public_ip: self.advertised_ip(fallback_ip),
            max_subscribers: self.max_subscribers,
            subscribers_per_worker: self.subscribers_per_worker,
            max_subscribers_per_class: self.max_subscribers_per_class,
            offer_timeout: Duration::from_secs(self.offer_timeout_secs),
            subscribes_per_minute: self.subscribes_per_minute,
            max_publishers_per_class: self.max_publishers_per_class,
            bandwidth_estimation: self.bandwidth_estimation,
            ..SfuConfig::default()
        }
    }
}

/// The `[limits]` section. Every limit protects the server from one misbehaving client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Largest WebSocket frame (and message) accepted, in bytes. Default 65536.
    pub max_frame_bytes: usize,
    /// Sustained messages per second a connection may send. Default 50.
    pub messages_per_sec: u32,
    /// Messages a connection may send in a burst above the sustained rate. Default 200.
    pub burst: u32,
    /// Bytes of messages queued for a connection before it counts as a slow consumer and is
    /// disconnected. Counted in bytes so a burst of small class events (a whole class raising
    /// hands) never trips it while a client that stops reading does. Default 1 MiB.
    pub send_queue_bytes: usize,
    /// Seconds a slow consumer's close frame (4004) may wait behind what its socket already holds
    /// for the client to read again; its queued messages are dropped at once. Default 10.
    pub slow_consumer_close_secs: u64,
    /// Most students in one class (teachers have `joining.teacher_seats`). Default 1000.
    pub max_class_size: usize,
    /// Seconds a new connection has to send `join`. Default 10.
    pub join_deadline_secs: u64,
    /// Seconds without any message from a client before it is disconnected. Default 60.
    pub idle_timeout_secs: u64,
    /// Seconds between the server's pings. Default 20.
    pub ping_interval_secs: u64,
    /// Seconds a dropped peer keeps its place (identity, role, raised hand) for a resume. Default 20.
    pub resume_grace_secs: u64,
    /// Longest chat message, in characters. Default 2000.
    pub max_chat_len: usize,
    /// Chat messages kept per class and sent to late joiners. Default 100.
    pub chat_history: usize,
    /// Longest display name, in characters. Default 64.
    pub max_name_len: usize,
    /// Largest SDP in an offer or answer, in bytes. Default 32768.
    pub max_sdp_bytes: usize,
    /// Chat lines one person may send per second. Default 3.
    pub chat_per_sec: u32,
    /// Chat lines one person may send in a burst above `chat_per_sec`. Default 6.
    pub chat_burst: u32,
    /// Milliseconds between two `stats` reports of one person forwarded to the teachers; a report
    /// that comes sooner waits, replacing an older waiting one. Default 1000.
    pub stats_interval_ms: u64,
    /// Longest `reason` in a `stats` link, in characters. Default 200.
    pub max_stats_reason_len: usize,
    /// Bytes per second of `offer`, `answer`, `candidate` and `stats` one connection may have
    /// forwarded to others (what one sender can put in a receiver's queue); above it the sender's
    /// messages are refused with `rate_limited`. Default 32768.
    pub signal_bytes_per_sec: u32,
    /// Bytes of those messages allowed in a burst (a teacher connecting to a whole class at once).
    /// Default 524288.
    pub signal_burst_bytes: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_bytes: 65536,
            messages_per_sec: 50,
            burst: 200,
            send_queue_bytes: 1024 * 1024,
            slow_consumer_close_secs: 10,
            max_class_size: 1000,
            join_deadline_secs: 10,
            idle_timeout_secs: 60,
            ping_interval_secs: 20,
            resume_grace_secs: 20,
            max_chat_len: 2000,
            chat_history: 100,
            max_name_len: 64,
            max_sdp_bytes: 32768,
            chat_per_sec: 3,
            chat_burst: 6,
            stats_interval_ms: 1000,
            max_stats_reason_len: 200,
            signal_bytes_per_sec: 32768,
            signal_burst_bytes: 524288,
        }
    }
}

/// The `[joining]` section: teacher seats and per-address limits on getting into classes.
///
/// The per-address limits are sized for a whole school behind one NAT address: they bound how
/// fast one address can add people, not how many it may have in a class.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct JoinSettings {
    /// Seats per class for teachers, beyond `limits.max_class_size` students. Default 10.
    pub teacher_seats: usize,
    /// New students (and other non-teacher joins) one address may add per second, sustained.
    /// Teachers and resumes are not counted. Default 10.
    pub joins_per_ip_per_sec: u32,
    /// New joins one address may make at once before the sustained rate applies. Default 500.
    pub join_burst_per_ip: u32,
    /// Class-code lookups (`POST /api/v1/join`) one address may make per second. Default 10.
    pub code_lookups_per_ip_per_sec: u32,
    /// Class-code lookups one address may make at once. Default 500.
    pub code_lookup_burst_per_ip: u32,
}

/// `[attendance]`: how long the record of who attended each lesson is kept.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AttendanceSettings {
    /// Days a lesson's attendance is kept after it ended; older records are deleted (at start
    /// and as lessons end). 0 keeps none: no attendance is stored and what is stored is deleted
    /// at start. Default 90.
    pub retention_days: u32,
}

impl Default for AttendanceSettings {
    fn default() -> Self {
        AttendanceSettings { retention_days: 90 }
    }
}

impl Default for JoinSettings {
    fn default() -> Self {
        JoinSettings {
            teacher_seats: 10,
            joins_per_ip_per_sec: 10,
            join_burst_per_ip: 500,
            code_lookups_per_ip_per_sec: 10,
            code_lookup_burst_per_ip: 500,
        }
    }
}
