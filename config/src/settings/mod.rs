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
//!
//! The module is split by job: the types and their defaults here and in `sections`, the layered
//! loader in `load`, the range and cross-field checks in `validate`.

mod accounts;
mod load;
mod oidc;
mod sections;
mod validate;

#[cfg(test)]
mod oidc_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod validate_tests;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize};

pub use accounts::{AccountsSettings, MIN_PASSWORD_LENGTH};
pub use load::LoadOptions;
pub use oidc::{check_url as check_oidc_url, OidcSettings, SecretFileError};
pub use sections::{
    AttendanceSettings, HttpSettings, IceSettings, JoinSettings, Limits, SfuSettings, TlsSettings,
};

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
    /// Staff sign-in through the school's OpenID Connect provider (off unless `issuer` is set).
    pub oidc: OidcSettings,
    /// Staff accounts: sign-in sessions, setup links, password rules and sign-in throttles.
    pub accounts: AccountsSettings,
    /// How long lessons' attendance records are kept.
    pub attendance: AttendanceSettings,
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
            oidc: OidcSettings::default(),
            accounts: AccountsSettings::default(),
            attendance: AttendanceSettings::default(),
        }
    }
}

impl Settings {
    /// The base URL for links, without a trailing slash: `public_url` if set, otherwise derived
    /// from `tls.listen` (when TLS is on) or `listen`, as [`public_url`] does.
    pub fn public_url(&self) -> String {
        let (addr, tls) = match self.tls.enabled {
            true => (self.tls.listen, true),
            false => (self.listen, false),
        };
        public_url(self.public_url.as_deref(), addr, tls)
    }
}

/// The base URL for links, without a trailing slash: `configured` if given, otherwise that of
/// `addr` (`https` when `tls`), e.g. `http://localhost:8080`. A loopback address is `localhost`;
/// a wildcard one is the address that routes outwards (a link saying `localhost` would send
/// every other computer to itself), or `localhost` when there is none. The server passes the
/// address it bound (the configured port may be 0); operator tools pass the configured one.
pub fn public_url(configured: Option<&str>, addr: SocketAddr, tls: bool) -> String {
    if let Some(url) = configured {
        return url.trim_end_matches('/').to_string();
    }
    let scheme = if tls { "https" } else { "http" };
    let ip = match addr.ip() {
        ip if ip.is_unspecified() => aula_relay::net::outward_ip(ip.is_ipv4()).unwrap_or(ip),
        ip => ip,
    };
    let host = match ip {
        ip if ip.is_loopback() || ip.is_unspecified() => "localhost".to_string(),
        IpAddr::V4(ip) => ip.to_string(),
        IpAddr::V6(ip) => format!("[{ip}]"),
    };
    format!("{scheme}://{host}:{}", addr.port())
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
    pub(crate) fn invalid(key: &str, message: impl Into<String>) -> Self {
        SettingsError::InvalidValue {
            key: key.to_string(),
            message: message.into(),
        }
    }
}

/// Accepts a list or a comma-separated string (as environment variables and flags give it).
pub(crate) fn string_or_seq<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(s) => load::split_list(&s),
        OneOrMany::Many(v) => v,
    })
}
