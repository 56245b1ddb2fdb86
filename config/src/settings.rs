//! Aula's whole configuration, and the loader that layers its sources.
//!
//! Sources, later ones overriding earlier ones:
//!
//! 1. the defaults documented on each field below (and in `aula.example.toml`);
//! 2. a TOML file: `--config FILE` (which must exist), or else `aula.toml` in the working directory
//!    when present;
//! 3. the environment: `AULA_<KEY>`, with `__` between nested keys, e.g. `AULA_LISTEN=0.0.0.0:8080`,
//!    `AULA_LIMITS__MAX_CLASS_SIZE=50`, `AULA_ALLOWED_ORIGINS=https://a.example,https://b.example`;
//! 4. explicit overrides (command-line flags) as dotted `key = value` pairs, e.g.
//!    `("limits.max_class_size", "50")`.
//!
//! Values from the environment and from overrides are strings and are converted to the field's type.
//! Lists accept either a list (in TOML) or a comma-separated string. A value that does not convert
//! fails with [`SettingsError::InvalidValue`] naming the key; an unknown key in the file, in the
//! overrides or in an `AULA_*` variable fails with [`SettingsError::UnknownKey`] (except the
//! variables of Aula's own tooling, [`TOOLING_VARS`]). Cross-field checks live in
//! [`Settings::validate`], which [`Settings::load`] runs before returning.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use config::{Config, ConfigError, Environment, File, FileFormat};
use serde::{Deserialize, Deserializer, Serialize};

use crate::Topology;

/// The configuration file read from the working directory when no `--config` is given.
pub const DEFAULT_CONFIG_FILE: &str = "aula.toml";

/// Prefix of the environment variables read by the loader (`AULA_LISTEN`, ...).
pub const ENV_PREFIX: &str = "AULA";

/// Separator between nested keys in environment variable names (`AULA_LIMITS__MAX_CLASS_SIZE`).
pub const ENV_NESTING: &str = "__";

/// `AULA_*` variables that belong to Aula's build and test tooling, not to the configuration: they
/// are neither read nor refused (a name ending in `*` is a prefix).
pub const TOOLING_VARS: &[&str] = &[
    "AULA_BIN",
    "AULA_BLESS",
    "AULA_TEST_*",
    "AULA_E2E_*",
    "AULA_FUZZ_*",
];

/// Shortest admin key accepted: a short key is guessed (the generated one has 64 characters).
pub const MIN_ADMIN_KEY_LEN: usize = 16;

/// Everything Aula can be configured with. See `aula.example.toml` for a commented copy.
///
/// A new section is one field here (its type: `Serialize + Deserialize + Default` with
/// `#[serde(default)]`) plus its documentation in `aula.example.toml`, which a test enforces.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Address for plain HTTP and WebSocket. Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// Base URL used in the links the server hands out (class URLs, the address printed at start),
    /// e.g. `https://aula.school.example`. Default: none, derived from `listen` (or `tls.listen`
    /// when TLS is on), e.g. `http://localhost:8080`; see [`Settings::public_url`].
    pub public_url: Option<String>,
    /// Key for the admin REST API (`Authorization: Bearer <key>`), at least 16 characters.
    /// Default: none, in which case the binary generates one in the data directory on first run
    /// and prints it that once.
    pub admin_key: Option<String>,
    /// Bearer token that may read `/metrics` besides the admin key, so Prometheus need not hold
    /// the admin key (at least 16 characters). Default: none (only the admin key).
    pub metrics_token: Option<String>,
    /// Directory for the class database and generated secrets. Default `data`.
    pub data_dir: PathBuf,
    /// Secret that signs class tokens (HS256). Default: none, in which case the binary generates one
    /// and stores it in the data directory. Changing it invalidates every link handed out.
    pub token_secret: Option<String>,
    /// Lifetime of the class links (tokens) created by the API, in seconds. Default 604800 (7 days).
    pub token_ttl_secs: u64,
    /// Whether anyone who reaches the start page may create classes without the admin key
    /// (rate-limited per IP, with a cap on classes: `[http] open_creation_*`). Default `false`:
    /// creating a class needs the admin key.
    pub open_class_creation: bool,
    /// Log output format: `"text"` or `"json"`. Default `"text"`.
    pub log_format: LogFormat,
    /// Browser origins allowed to open the WebSocket and call the API, e.g.
    /// `["https://portal.school.example"]`. Default empty: same origin only; clients that send no
    /// `Origin` header (scripts, bots) are always allowed.
    #[serde(deserialize_with = "string_or_seq")]
    pub allowed_origins: Vec<String>,
    /// Host names (`Host` header, without port) the server answers besides the host of
    /// `public_url`, IP addresses and, when listening on loopback or a wildcard address,
    /// `localhost`. Default empty. Other hosts get 421 (a DNS-rebinding guard).
    #[serde(deserialize_with = "string_or_seq")]
    pub allowed_hosts: Vec<String>,
    /// HTTPS/WSS.
    pub tls: TlsSettings,
    /// The HTTP listeners' connection limits and timeouts, and the admin API's throttles.
    pub http: HttpSettings,
    /// Per-connection and per-class limits.
    pub limits: Limits,
    /// The TURN relay (see `aula_relay::turn::TurnConfig` for every key and default).
    pub turn: aula_relay::turn::TurnConfig,
    /// The SFU that forwards a teacher's media to large classes.
    pub sfu: SfuSettings,
    /// Who gets into a class: teacher seats and per-address join limits.
    pub joining: JoinSettings,
    /// The TURN credentials handed to people in a class, and their renewal.
    pub ice: IceSettings,
}

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

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080),
            public_url: None,
            admin_key: None,
            metrics_token: None,
            data_dir: PathBuf::from("data"),
            token_secret: None,
            token_ttl_secs: 7 * 24 * 60 * 60,
            open_class_creation: false,
            log_format: LogFormat::Text,
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            tls: TlsSettings::default(),
            http: HttpSettings::default(),
            limits: Limits::default(),
            turn: Default::default(),
            sfu: SfuSettings::default(),
            joining: JoinSettings::default(),
            ice: IceSettings::default(),
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl TryFrom<String> for LogFormat {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        match value.to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("expected \"text\" or \"json\", found {value:?}")),
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
    /// UDP address of the SFU's one media socket (every publisher and subscriber shares it).
    /// Default `0.0.0.0:3479`.
    pub listen: SocketAddr,
    /// The address browsers reach the SFU by, advertised as its ICE candidate. Default: the
    /// `listen` IP if it is specific, otherwise the address of the interface routing outwards.
    pub public_ip: Option<IpAddr>,
    /// An `auto` class uses direct connections up to this many students and switches to the SFU
    /// above it. Default `4`.
    pub auto_above: usize,
    /// The topology of a class created without one (`POST /api/v1/classes` with no `topology`,
    /// and the start page): `p2p`, `sfu` or `auto`. Default `auto`.
    pub default_topology: Topology,
    /// Most subscribers the SFU serves at once (one core); more are refused. Default `500`.
    pub max_subscribers: usize,
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
    fn default() -> Self {
        SfuSettings {
            enabled: true,
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 3479),
            public_ip: None,
            auto_above: 4,
            default_topology: Topology::Auto,
            max_subscribers: 500,
            max_subscribers_per_class: 250,
            offer_timeout_secs: 10,
            subscribes_per_minute: 12,
            log_lines_per_sec: 1,
            max_publishers_per_class: 16,
            bandwidth_estimation: true,
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

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A value has the wrong type or fails a check.
    #[error("invalid value for {key}: {message}")]
    InvalidValue { key: String, message: String },
    /// A key the configuration does not have (usually a typo).
    #[error("unknown configuration key {key} (in {origin})")]
    UnknownKey { key: String, origin: String },
    /// `--config FILE` does not exist.
    #[error("configuration file {} not found", .0.display())]
    FileNotFound(PathBuf),
    /// The file is not valid TOML.
    #[error("cannot parse configuration file {}: {message}", path.display())]
    FileParse { path: PathBuf, message: String },
    /// Any other error from the `config` crate.
    #[error("configuration error: {0}")]
    Other(String),
}

impl SettingsError {
    fn invalid(key: &str, message: impl Into<String>) -> Self {
        SettingsError::InvalidValue {
            key: key.to_string(),
            message: message.into(),
        }
    }
}

/// Where [`Settings::load`] reads from. `LoadOptions::default()` is "the working directory's
/// `aula.toml` if present, the process environment, no overrides".
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `--config FILE`: read this file, which must exist. When `None`, `aula.toml` in `working_dir`
    /// is read if present.
    pub config_file: Option<PathBuf>,
    /// Directory searched for `aula.toml`. `None`: the current directory.
    pub working_dir: Option<PathBuf>,
    /// The environment to read `AULA_*` variables from. `None`: the process environment.
    pub env: Option<HashMap<String, String>>,
    /// Explicit overrides (command-line flags) as dotted key and string value, applied last.
    pub overrides: Vec<(String, String)>,
}

impl Settings {
    /// Loads and validates the configuration from the layered sources described in the module docs.
    pub fn load(options: &LoadOptions) -> Result<Settings, SettingsError> {
        let known = known_keys();
        let defaults = Config::try_from(&Settings::default()).map_err(other)?;
        let mut builder = Config::builder().add_source(defaults);

        let file = match &options.config_file {
            Some(path) if !path.is_file() => return Err(SettingsError::FileNotFound(path.clone())),
            Some(path) => Some(path.clone()),
            None => {
                let dir = options
                    .working_dir
                    .clone()
                    .unwrap_or_else(|| PathBuf::from("."));
                let path = dir.join(DEFAULT_CONFIG_FILE);
                path.is_file().then_some(path)
            }
        };
        if let Some(path) = &file {
            let text = std::fs::read_to_string(path).map_err(|e| SettingsError::FileParse {
                path: path.clone(),
                message: e.to_string(),
            })?;
            check_file_keys(&text, path, &known)?;
            builder = builder.add_source(File::from_str(&text, FileFormat::Toml));
        }

        let vars: HashMap<String, String> = match &options.env {
            Some(vars) => vars.clone(),
            None => std::env::vars().collect(),
        };
        let mut vars = config_vars(vars, &known)?;
        // A list key takes a comma-separated string (`a:1,b:2`); the `config` crate would keep it
        // one string, so it goes in as a list override, below the command-line flags.
        let lists = list_keys();
        let mut env_lists = Vec::new();
        vars.retain(|name, value| {
            let key = env_key(name);
            if lists.contains(&key) && !value.is_empty() {
                env_lists.push((key, split_list(value)));
                return false;
            }
            true
        });
        let env = Environment::with_prefix(ENV_PREFIX)
            .prefix_separator("_")
            .separator(ENV_NESTING)
            .ignore_empty(true)
            .source(Some(vars.into_iter().collect()));
        builder = builder.add_source(env);
        for (key, items) in env_lists {
            builder = builder.set_override(key, items).map_err(other)?;
        }

        for (key, value) in &options.overrides {
            if !known.contains(key.as_str()) {
                return Err(SettingsError::UnknownKey {
                    key: key.clone(),
                    origin: "command-line overrides".into(),
                });
            }
            builder = if list_keys().contains(key.as_str()) {
                let items: Vec<String> = split_list(value);
                builder.set_override(key.as_str(), items)
            } else {
                builder.set_override(key.as_str(), value.as_str())
            }
            .map_err(other)?;
        }

        let config = builder
            .build()
            .map_err(|e| map_config_error(e, file.as_deref()))?;
        let settings: Settings = config
            .try_deserialize()
            .map_err(|e| map_config_error(e, file.as_deref()))?;
        settings.validate()?;
        Ok(settings)
    }

    /// Parses a TOML document on top of the defaults (no environment, no overrides) and validates
    /// it. Unknown keys are refused.
    pub fn from_toml_str(text: &str) -> Result<Settings, SettingsError> {
        let known = known_keys();
        check_file_keys(text, Path::new("<string>"), &known)?;
        let config = Config::builder()
            .add_source(Config::try_from(&Settings::default()).map_err(other)?)
            .add_source(File::from_str(text, FileFormat::Toml))
            .build()
            .map_err(|e| map_config_error(e, None))?;
        let settings: Settings = config
            .try_deserialize()
            .map_err(|e| map_config_error(e, None))?;
        settings.validate()?;
        Ok(settings)
    }

    /// Cross-field and range checks. Every error names the offending key.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let l = &self.limits;
        if l.max_frame_bytes < 1024 {
            return Err(SettingsError::invalid(
                "limits.max_frame_bytes",
                format!("{} is below the minimum of 1024", l.max_frame_bytes),
            ));
        }
        let j = &self.joining;
        // A slice, not an array: helpers adding keys in parallel need not agree on a count.
        let positive: &[(&str, u64)] = &[
            ("limits.messages_per_sec", l.messages_per_sec.into()),
            ("limits.send_queue_bytes", l.send_queue_bytes as u64),
            ("limits.max_class_size", l.max_class_size as u64),
            ("limits.join_deadline_secs", l.join_deadline_secs),
            ("limits.idle_timeout_secs", l.idle_timeout_secs),
            ("limits.ping_interval_secs", l.ping_interval_secs),
            ("limits.max_chat_len", l.max_chat_len as u64),
            ("limits.max_name_len", l.max_name_len as u64),
            ("limits.max_sdp_bytes", l.max_sdp_bytes as u64),
            ("limits.chat_per_sec", l.chat_per_sec.into()),
            ("limits.max_stats_reason_len", l.max_stats_reason_len as u64),
            ("limits.signal_bytes_per_sec", l.signal_bytes_per_sec.into()),
            ("limits.signal_burst_bytes", l.signal_burst_bytes.into()),
            ("token_ttl_secs", self.token_ttl_secs),
            ("joining.teacher_seats", j.teacher_seats as u64),
            (
                "joining.joins_per_ip_per_sec",
                j.joins_per_ip_per_sec.into(),
            ),
            ("joining.join_burst_per_ip", j.join_burst_per_ip.into()),
            (
                "joining.code_lookups_per_ip_per_sec",
                j.code_lookups_per_ip_per_sec.into(),
            ),
            (
                "joining.code_lookup_burst_per_ip",
                j.code_lookup_burst_per_ip.into(),
            ),
            ("sfu.max_subscribers", self.sfu.max_subscribers as u64),
            (
                "sfu.max_subscribers_per_class",
                self.sfu.max_subscribers_per_class as u64,
            ),
            ("sfu.offer_timeout_secs", self.sfu.offer_timeout_secs),
            (
                "sfu.subscribes_per_minute",
                self.sfu.subscribes_per_minute.into(),
            ),
            ("sfu.log_lines_per_sec", self.sfu.log_lines_per_sec.into()),
            (
                "sfu.max_publishers_per_class",
                self.sfu.max_publishers_per_class as u64,
            ),
        ];
        for &(key, value) in positive {
            if value == 0 {
                return Err(SettingsError::invalid(key, "must be greater than 0"));
            }
        }
        if l.burst < l.messages_per_sec {
            return Err(SettingsError::invalid(
                "limits.burst",
                format!(
                    "{} is below limits.messages_per_sec ({})",
                    l.burst, l.messages_per_sec
                ),
            ));
        }
        let lifetime = self.turn.max_credential_lifetime_secs;
        if self.ice.renew_before_secs >= lifetime {
            return Err(SettingsError::invalid(
                "ice.renew_before_secs",
                format!(
                    "{} must be below turn.max_credential_lifetime_secs ({lifetime}) or \
                     credentials lapse before they are renewed",
                    self.ice.renew_before_secs
                ),
            ));
        }
        if l.chat_burst < l.chat_per_sec {
            return Err(SettingsError::invalid(
                "limits.chat_burst",
                format!(
                    "{} is below limits.chat_per_sec ({})",
                    l.chat_burst, l.chat_per_sec
                ),
            ));
        }
        if (l.signal_burst_bytes as usize) < l.max_frame_bytes {
            return Err(SettingsError::invalid(
                "limits.signal_burst_bytes",
                format!(
                    "{} must be at least limits.max_frame_bytes ({}) so any one offer can pass",
                    l.signal_burst_bytes, l.max_frame_bytes
                ),
            ));
        }
        if l.ping_interval_secs >= l.idle_timeout_secs {
            return Err(SettingsError::invalid(
                "limits.ping_interval_secs",
                format!(
                    "{} must be below limits.idle_timeout_secs ({}) or idle clients are dropped",
                    l.ping_interval_secs, l.idle_timeout_secs
                ),
            ));
        }
        if l.max_sdp_bytes >= l.max_frame_bytes {
            return Err(SettingsError::invalid(
                "limits.max_sdp_bytes",
                format!(
                    "{} must be below limits.max_frame_bytes ({}) so an offer fits in a frame",
                    l.max_sdp_bytes, l.max_frame_bytes
                ),
            ));
        }
        if let Some(url) = &self.public_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(SettingsError::invalid(
                    "public_url",
                    format!("{url:?} must start with http:// or https://"),
                ));
            }
        }
        for (key, value) in [
            ("admin_key", &self.admin_key),
            ("metrics_token", &self.metrics_token),
            ("token_secret", &self.token_secret),
        ] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                return Err(SettingsError::invalid(
                    key,
                    "must not be empty (leave it unset to generate one)",
                ));
            }
        }
        for (key, value) in [
            ("admin_key", &self.admin_key),
            ("metrics_token", &self.metrics_token),
        ] {
            if let Some(v) = value.as_deref().filter(|v| !v.trim().is_empty()) {
                if v.chars().count() < MIN_ADMIN_KEY_LEN {
                    return Err(SettingsError::invalid(
                        key,
                        format!(
                            "{} characters is too short: use at least {MIN_ADMIN_KEY_LEN} \
                             (or leave admin_key unset to generate one)",
                            v.chars().count()
                        ),
                    ));
                }
            }
        }
        let h = &self.http;
        let positive: [(&str, u64); 9] = [
            ("http.header_read_timeout_secs", h.header_read_timeout_secs),
            ("http.connection_idle_secs", h.connection_idle_secs),
            (
                "http.max_connections_per_ip",
                h.max_connections_per_ip as u64,
            ),
            ("http.max_connections", h.max_connections as u64),
            ("http.auth_failures_per_min", h.auth_failures_per_min.into()),
            (
                "http.open_creation_per_ip_per_hour",
                h.open_creation_per_ip_per_hour.into(),
            ),
            (
                "http.open_creation_max_classes",
                h.open_creation_max_classes as u64,
            ),
            ("http.idempotency_key_ttl_secs", h.idempotency_key_ttl_secs),
            ("http.idempotency_keys_max", h.idempotency_keys_max as u64),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(SettingsError::invalid(key, "must be greater than 0"));
            }
        }
        if h.connection_idle_secs <= l.ping_interval_secs {
            return Err(SettingsError::invalid(
                "http.connection_idle_secs",
                format!(
                    "{} must be above limits.ping_interval_secs ({}) or live WebSockets are cut",
                    h.connection_idle_secs, l.ping_interval_secs
                ),
            ));
        }
        for host in &self.allowed_hosts {
            if host.is_empty() || host.contains(['/', ':', ' ']) {
                return Err(SettingsError::invalid(
                    "allowed_hosts",
                    format!("{host:?} is not a host name like aula.school.example"),
                ));
            }
        }
        for origin in &self.allowed_origins {
            let rest = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"));
            if rest.is_none_or(|host| host.is_empty() || host.contains('/')) {
                return Err(SettingsError::invalid(
                    "allowed_origins",
                    format!("{origin:?} is not an origin like https://host or http://host:port"),
                ));
            }
        }
        match (&self.tls.cert, &self.tls.key) {
            (Some(_), None) => {
                return Err(SettingsError::invalid(
                    "tls.key",
                    "missing: tls.cert is set, give the matching key too",
                ))
            }
            (None, Some(_)) => {
                return Err(SettingsError::invalid(
                    "tls.cert",
                    "missing: tls.key is set, give the matching certificate chain too",
                ))
            }
            _ => {}
        }
        Ok(())
    }

    /// The base URL for links, without a trailing slash: `public_url` if set, otherwise derived
    /// from `tls.listen` (when TLS is on) or `listen`. Loopback and unspecified addresses become
    /// `localhost`, e.g. `http://localhost:8080`.
    pub fn public_url(&self) -> String {
        if let Some(url) = &self.public_url {
            return url.trim_end_matches('/').to_string();
        }
        let (scheme, addr) = if self.tls.enabled {
            ("https", self.tls.listen)
        } else {
            ("http", self.listen)
        };
        let host = match addr.ip() {
            ip if ip.is_loopback() || ip.is_unspecified() => "localhost".to_string(),
            IpAddr::V4(ip) => ip.to_string(),
            IpAddr::V6(ip) => format!("[{ip}]"),
        };
        format!("{scheme}://{host}:{}", addr.port())
    }
}

/// Accepts a list or a comma-separated string (as environment variables and flags give it).
fn string_or_seq<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(s) => split_list(&s),
        OneOrMany::Many(v) => v,
    })
}

/// The `AULA_*` variables that configure Aula, with tooling variables dropped; any other
/// `AULA_*` variable is refused, naming it (a typo must not be silently ignored).
fn config_vars(
    vars: HashMap<String, String>,
    known: &BTreeSet<String>,
) -> Result<HashMap<String, String>, SettingsError> {
    let prefix = format!("{ENV_PREFIX}_");
    let tooling = |name: &str| {
        TOOLING_VARS.iter().any(|t| match t.strip_suffix('*') {
            Some(start) => name.starts_with(start),
            None => name == *t,
        })
    };
    let mut kept = HashMap::new();
    for (name, value) in vars {
        if !name.starts_with(&prefix) || tooling(&name) {
            continue;
        }
        if !known.contains(&env_key(&name)) {
            return Err(SettingsError::UnknownKey {
                key: name,
                origin: "the environment".into(),
            });
        }
        kept.insert(name, value);
    }
    Ok(kept)
}

/// The dotted key an `AULA_*` variable names: `AULA_TURN__ALLOW_PEERS` is `turn.allow_peers`.
fn env_key(name: &str) -> String {
    let rest = &name[ENV_PREFIX.len() + 1..];
    rest.to_lowercase().replace(ENV_NESTING, ".")
}

/// Keys whose value is a list (their default serializes to an array).
fn list_keys() -> BTreeSet<String> {
    let value = serde_json::to_value(Settings::default()).expect("settings serialize to JSON");
    let mut keys = BTreeSet::new();
    collect_keys(&value, String::new(), &mut keys);
    keys.into_iter()
        .filter(|k| {
            k.split('.')
                .try_fold(&value, |v, part| v.get(part))
                .is_some_and(serde_json::Value::is_array)
        })
        .collect()
}

fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// Every dotted key of [`Settings`] (leaves only), derived from the serialized defaults so it can
/// never drift from the types.
fn known_keys() -> BTreeSet<String> {
    let value = serde_json::to_value(Settings::default()).expect("settings serialize to JSON");
    let mut keys = BTreeSet::new();
    collect_keys(&value, String::new(), &mut keys);
    keys
}

fn collect_keys(value: &serde_json::Value, prefix: String, keys: &mut BTreeSet<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                collect_keys(v, key, keys);
            }
        }
        _ => {
            keys.insert(prefix);
        }
    }
}

/// Refuses keys in a TOML file that the configuration does not have.
fn check_file_keys(text: &str, path: &Path, known: &BTreeSet<String>) -> Result<(), SettingsError> {
    let value = text_to_table(text).map_err(|message| SettingsError::FileParse {
        path: path.to_path_buf(),
        message,
    })?;
    let mut found = BTreeSet::new();
    collect_keys(&serde_json::Value::Object(value), String::new(), &mut found);
    let sections: BTreeSet<&str> = known
        .iter()
        .filter_map(|k| k.split_once('.').map(|(s, _)| s))
        .collect();
    for key in found {
        // An empty section (`[limits]` with everything commented out) shows up as its own name.
        if !known.contains(&key) && !sections.contains(key.as_str()) {
            return Err(SettingsError::UnknownKey {
                key,
                origin: path.display().to_string(),
            });
        }
    }
    Ok(())
}

/// TOML parsed through the `config` crate into a JSON object, so no extra TOML dependency is
/// needed just to list a file's keys.
fn text_to_table(text: &str) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    let config = Config::builder()
        .add_source(File::from_str(text, FileFormat::Toml))
        .build()
        .map_err(|e| e.to_string())?;
    let value: serde_json::Value = config.try_deserialize().map_err(|e| e.to_string())?;
    match value {
        serde_json::Value::Object(map) => Ok(map),
        serde_json::Value::Null => Ok(Default::default()),
        other => Err(format!("expected a table, found {other}")),
    }
}

fn other(e: ConfigError) -> SettingsError {
    SettingsError::Other(e.to_string())
}

/// Turns the `config` crate's errors into ours, keeping the key when it knows it.
fn map_config_error(e: ConfigError, file: Option<&Path>) -> SettingsError {
    match e {
        ConfigError::Type {
            key: Some(key),
            unexpected,
            expected,
            ..
        } => SettingsError::InvalidValue {
            key,
            message: format!("found {unexpected}, expected {expected}"),
        },
        ConfigError::At {
            error,
            key: Some(key),
            ..
        } => SettingsError::InvalidValue {
            key,
            message: inner_message(*error),
        },
        ConfigError::FileParse { cause, .. } => SettingsError::FileParse {
            path: file.map(Path::to_path_buf).unwrap_or_default(),
            message: cause.to_string(),
        },
        other => SettingsError::Other(other.to_string()),
    }
}

fn inner_message(e: ConfigError) -> String {
    match e {
        ConfigError::Message(m) => m,
        ConfigError::Type {
            unexpected,
            expected,
            ..
        } => format!("found {unexpected}, expected {expected}"),
        ConfigError::At { error, .. } => inner_message(*error),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(
        file: Option<&Path>,
        env: &[(&str, &str)],
        overrides: &[(&str, &str)],
        dir: &Path,
    ) -> LoadOptions {
        LoadOptions {
            config_file: file.map(Path::to_path_buf),
            working_dir: Some(dir.to_path_buf()),
            env: Some(
                env.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            overrides: overrides
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// Every leaf key with its value, for comparing whole configurations.
    fn flat(s: &Settings) -> std::collections::BTreeMap<String, serde_json::Value> {
        fn walk(
            v: serde_json::Value,
            prefix: String,
            out: &mut std::collections::BTreeMap<String, serde_json::Value>,
        ) {
            match v {
                serde_json::Value::Object(map) => {
                    for (k, v) in map {
                        let key = if prefix.is_empty() {
                            k
                        } else {
                            format!("{prefix}.{k}")
                        };
                        walk(v, key, out);
                    }
                }
                v => {
                    out.insert(prefix, v);
                }
            }
        }
        let mut out = Default::default();
        walk(serde_json::to_value(s).unwrap(), String::new(), &mut out);
        out
    }

    #[test]
    fn defaults_when_nothing_is_given() {
        let dir = tempfile::tempdir().unwrap();
        let s = Settings::load(&opts(None, &[], &[], dir.path())).unwrap();
        assert_eq!(flat(&s), flat(&Settings::default()));
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.limits.max_class_size, 1000);
        assert_eq!(s.token_ttl_secs, 604800);
        assert!(
            !s.open_class_creation,
            "class creation needs the admin key by default"
        );
        assert_eq!(s.public_url(), "http://localhost:8080");
        Settings::default().validate().unwrap();
    }

    #[test]
    fn layers_file_then_env_then_overrides() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(DEFAULT_CONFIG_FILE),
            "listen = \"0.0.0.0:9000\"\nadmin_key = \"from-file-0123456789\"\n\
             [limits]\nmax_class_size = 10\nchat_history = 5\n",
        )
        .unwrap();
        let s = Settings::load(&opts(
            None,
            &[
                ("AULA_LIMITS__MAX_CLASS_SIZE", "50"),
                ("AULA_ADMIN_KEY", "from-env-0123456789"),
                ("AULA_LOG_FORMAT", "json"),
                ("AULA_TLS__ENABLED", "true"),
                (
                    "AULA_ALLOWED_ORIGINS",
                    "https://a.example, https://b.example:8443",
                ),
                ("AULA_BIN", "/usr/bin/aula"), // unrelated: ignored
                ("OTHER_LISTEN", "1.2.3.4:5"), // no prefix: ignored
            ],
            &[
                ("admin_key", "from-flag-0123456789"),
                ("data_dir", "/tmp/aula"),
            ],
            dir.path(),
        ))
        .unwrap();
        assert_eq!(s.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(s.limits.max_class_size, 50);
        assert_eq!(s.limits.chat_history, 5);
        assert_eq!(s.admin_key.as_deref(), Some("from-flag-0123456789"));
        assert_eq!(s.data_dir, PathBuf::from("/tmp/aula"));
        assert_eq!(s.log_format, LogFormat::Json);
        assert!(s.tls.enabled);
        assert_eq!(
            s.allowed_origins,
            vec!["https://a.example", "https://b.example:8443"]
        );
        assert_eq!(s.public_url(), "https://localhost:8443");
    }

    #[test]
    fn explicit_config_file_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.toml");
        let err = Settings::load(&opts(Some(&missing), &[], &[], dir.path())).unwrap_err();
        assert!(matches!(err, SettingsError::FileNotFound(_)));
        assert!(err.to_string().contains("nope.toml"), "{err}");
    }

    #[test]
    fn explicit_config_file_replaces_working_dir_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(DEFAULT_CONFIG_FILE),
            "admin_key = \"cwd-0123456789abcdef\"\n",
        )
        .unwrap();
        let other = dir.path().join("other.toml");
        std::fs::write(&other, "public_url = \"https://aula.example/\"\n").unwrap();
        let s = Settings::load(&opts(Some(&other), &[], &[], dir.path())).unwrap();
        assert_eq!(s.admin_key, None);
        assert_eq!(s.public_url(), "https://aula.example");
    }

    #[test]
    fn invalid_value_names_the_key() {
        let dir = tempfile::tempdir().unwrap();
        for (env, key) in [
            (
                ("AULA_LIMITS__MAX_CLASS_SIZE", "lots"),
                "limits.max_class_size",
            ),
            (("AULA_LISTEN", "not an address"), "listen"),
            (("AULA_LOG_FORMAT", "xml"), "log_format"),
            (("AULA_TLS__ENABLED", "maybe"), "tls.enabled"),
        ] {
            let err = Settings::load(&opts(None, &[env], &[], dir.path())).unwrap_err();
            let text = err.to_string();
            assert!(
                text.starts_with(&format!("invalid value for {key}: ")),
                "{env:?}: {text}"
            );
        }
        let err = Settings::load(&opts(
            None,
            &[],
            &[("limits.max_class_size", "-3")],
            dir.path(),
        ))
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid value for limits.max_class_size: "),
            "{err}"
        );
        let err = Settings::from_toml_str("[limits]\nmax_class_size = \"big\"\n").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid value for limits.max_class_size: "),
            "{err}"
        );
    }

    #[test]
    fn unknown_keys_are_refused_in_files_and_overrides() {
        let err = Settings::from_toml_str("[limits]\nmax_clas_size = 3\n").unwrap_err();
        assert!(
            matches!(&err, SettingsError::UnknownKey { key, .. } if key == "limits.max_clas_size"),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        let err =
            Settings::load(&opts(None, &[], &[("limits.nope", "1")], dir.path())).unwrap_err();
        assert!(err.to_string().contains("limits.nope"), "{err}");
    }

    #[test]
    fn an_unknown_aula_variable_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let err = Settings::load(&opts(
            None,
            &[("AULA_OPEN_CLASS_CREATON", "false")],
            &[],
            dir.path(),
        ))
        .unwrap_err();
        assert!(
            matches!(&err, SettingsError::UnknownKey { key, .. } if key == "AULA_OPEN_CLASS_CREATON"),
            "{err}"
        );
        assert!(err.to_string().contains("AULA_OPEN_CLASS_CREATON"), "{err}");
        // The tooling's own variables are not configuration and are left alone.
        for var in [
            "AULA_BIN",
            "AULA_BLESS",
            "AULA_TEST_NO_INSTALL",
            "AULA_E2E_VERBOSE",
            "AULA_FUZZ_CASES",
        ] {
            Settings::load(&opts(None, &[(var, "1")], &[], dir.path()))
                .unwrap_or_else(|e| panic!("{var}: {e}"));
        }
    }

    #[test]
    fn list_keys_take_comma_separated_variables() {
        let dir = tempfile::tempdir().unwrap();
        let s = Settings::load(&opts(
            None,
            &[
                (
                    "AULA_TURN__ALLOW_PEER_ADDRS",
                    "10.0.0.5:3479, 192.168.1.9:5000",
                ),
                ("AULA_TURN__ALLOW_PEERS", "10.1.0.0/16,fd00::/8"),
                ("AULA_ALLOWED_HOSTS", "aula.school.example"),
            ],
            &[],
            dir.path(),
        ))
        .unwrap();
        assert_eq!(
            s.turn.allow_peer_addrs,
            vec![
                "10.0.0.5:3479".parse::<SocketAddr>().unwrap(),
                "192.168.1.9:5000".parse().unwrap()
            ]
        );
        assert_eq!(s.turn.allow_peers, vec!["10.1.0.0/16", "fd00::/8"]);
        assert_eq!(s.allowed_hosts, vec!["aula.school.example"]);
        // A flag still wins over the environment.
        let s = Settings::load(&opts(
            None,
            &[("AULA_ALLOWED_HOSTS", "a.example")],
            &[("allowed_hosts", "b.example,c.example")],
            dir.path(),
        ))
        .unwrap();
        assert_eq!(s.allowed_hosts, vec!["b.example", "c.example"]);
    }

    #[test]
    fn malformed_toml_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "listen = \n").unwrap();
        let err = Settings::load(&opts(Some(&path), &[], &[], dir.path())).unwrap_err();
        assert!(err.to_string().contains("bad.toml"), "{err}");
    }

    #[test]
    fn validate_names_the_key() {
        type Mutation = fn(&mut Settings);
        let cases: Vec<(Mutation, &str)> = vec![
            (|s| s.limits.send_queue_bytes = 0, "limits.send_queue_bytes"),
            (|s| s.limits.max_frame_bytes = 100, "limits.max_frame_bytes"),
            (|s| s.limits.burst = 1, "limits.burst"),
            (
                |s| s.limits.ping_interval_secs = 60,
                "limits.ping_interval_secs",
            ),
            (|s| s.limits.max_sdp_bytes = 65536, "limits.max_sdp_bytes"),
            (|s| s.token_ttl_secs = 0, "token_ttl_secs"),
            (|s| s.sfu.max_subscribers = 0, "sfu.max_subscribers"),
            (
                |s| s.sfu.max_publishers_per_class = 0,
                "sfu.max_publishers_per_class",
            ),
            (|s| s.public_url = Some("aula.example".into()), "public_url"),
            (|s| s.admin_key = Some(" ".into()), "admin_key"),
            (|s| s.admin_key = Some("k".into()), "admin_key"),
            (
                |s| s.admin_key = Some("fifteen-chars-x".into()),
                "admin_key",
            ),
            (|s| s.metrics_token = Some("short".into()), "metrics_token"),
            (
                |s| s.http.connection_idle_secs = 20,
                "http.connection_idle_secs",
            ),
            (
                |s| s.http.max_connections_per_ip = 0,
                "http.max_connections_per_ip",
            ),
            (
                |s| s.allowed_hosts = vec!["a.example:80".into()],
                "allowed_hosts",
            ),
            (
                |s| s.allowed_origins = vec!["https://a.example/path".into()],
                "allowed_origins",
            ),
            (|s| s.tls.cert = Some("c.pem".into()), "tls.key"),
            (|s| s.tls.key = Some("k.pem".into()), "tls.cert"),
        ];
        for (mutate, key) in cases {
            let mut s = Settings::default();
            mutate(&mut s);
            let err = s.validate().unwrap_err();
            assert!(
                err.to_string()
                    .starts_with(&format!("invalid value for {key}: ")),
                "{err}"
            );
        }
        let err = Settings::from_toml_str("[limits]\nsend_queue_bytes = 0\n").unwrap_err();
        assert!(err.to_string().contains("limits.send_queue_bytes"), "{err}");
    }

    #[test]
    fn public_url_derivation() {
        let mut s = Settings {
            listen: "0.0.0.0:3000".parse().unwrap(),
            ..Settings::default()
        };
        assert_eq!(s.public_url(), "http://localhost:3000");
        s.listen = "192.168.1.5:3000".parse().unwrap();
        assert_eq!(s.public_url(), "http://192.168.1.5:3000");
        s.listen = "[2001:db8::1]:3000".parse().unwrap();
        assert_eq!(s.public_url(), "http://[2001:db8::1]:3000");
    }

    #[test]
    fn example_file_parses_and_matches_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../aula.example.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let s = Settings::from_toml_str(&text).unwrap();
        assert_eq!(flat(&s), flat(&Settings::default()));
        // Every key is documented in the example (as a commented-out `key = default` line).
        for key in known_keys() {
            let leaf = key.rsplit('.').next().unwrap();
            assert!(
                text.lines()
                    .any(|l| l.trim_start().starts_with(&format!("# {leaf} = "))),
                "aula.example.toml does not document {key}"
            );
        }
        // And uncommenting every `key = value` line still gives a valid file: the defaults, plus the
        // example values shown for the keys that have no default.
        let keys = known_keys();
        let uncommented: String = text
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(rest)
                    if rest.starts_with('[')
                        || rest.split_once(" = ").is_some_and(|(k, _)| {
                            keys.iter().any(|kk| kk.rsplit('.').next() == Some(k))
                        }) =>
                {
                    rest
                }
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n");
        let s = Settings::from_toml_str(&uncommented)
            .unwrap_or_else(|e| panic!("uncommented example: {e}\n{uncommented}"));
        let (got, defaults) = (flat(&s), flat(&Settings::default()));
        for (key, default) in &defaults {
            // Keys without a default (unset options, empty lists) show an example value instead.
            let no_default = default.is_null() || default.as_array().is_some_and(Vec::is_empty);
            if !no_default {
                assert_eq!(
                    got.get(key),
                    Some(default),
                    "aula.example.toml shows a wrong default for {key}"
                );
            }
        }
    }
}
