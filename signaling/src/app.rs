//! The application state every handler shares, behind `Arc<App>`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::hub::{ConnId, Effect};
use crate::ice::IceProvider;
use crate::state::{Core, SharedCore};
use crate::store::Store;
use crate::token::TokenKey;
use crate::ws::ConnLimits;

/// Renders the Prometheus exposition for `/metrics` (the recorder is installed by the binary).
pub type MetricsRender = Arc<dyn Fn() -> String + Send + Sync>;

pub struct App {
    /// The class hub and every connection's outbox.
    pub core: SharedCore,
    /// Persistent class records (shared with the SQLite account store).
    pub store: Arc<Mutex<Store>>,
    /// Staff accounts, their sessions and setup links.
    pub accounts: Arc<dyn crate::accounts::AccountStore>,
    /// The `[accounts]` settings: session and setup-link lifetimes, password rules, throttles.
    pub accounts_config: aula_config::settings::AccountsSettings,
    /// Whether cookies get `Secure`: the server's public URL is `https`.
    pub secure_cookies: bool,
    /// Failed sign-ins per IP address.
    pub sign_in_per_ip: crate::throttle::IpThrottle,
    /// Failed sign-ins per account (by the email given, so unknown emails are throttled alike).
    pub sign_in_per_account: crate::throttle::KeyedThrottle<String>,
    pub tokens: TokenKey,
    pub admin_key: String,
    /// A second bearer token that may read `/metrics`.
    pub metrics_token: Option<String>,
    /// Failed admin-key attempts per IP.
    pub auth_failures: crate::throttle::IpThrottle,
    /// Classes created without the admin key, per IP (with `open_class_creation`).
    pub open_creations: crate::throttle::IpThrottle,
    /// No class is created without the admin key while this many exist.
    pub open_creation_max_classes: usize,
    /// How long and how many `Idempotency-Key`s of class creation are kept.
    pub idempotency: IdempotencyLimits,
    pub ice: IceProvider,
    pub conn_limits: ConnLimits,
    /// Base URL for the links in API answers, without a trailing slash.
    pub public_url: String,
    pub allowed_origins: Vec<String>,
    pub open_class_creation: bool,
    /// The topology of a class created without one.
    pub default_topology: crate::protocol::Topology,
    pub token_ttl_secs: u64,
    pub metrics: Option<MetricsRender>,
    /// Fired on SIGINT/SIGTERM: every connection closes with "going away".
    pub shutdown: CancellationToken,
    /// Tracks connection tasks so shutdown can wait for their close frames.
    pub tracker: TaskTracker,
    pub(crate) next_conn: AtomicU64,
    /// The SFU, when the server runs one.
    pub sfu: Option<aula_relay::sfu::SfuHandle>,
    /// Days a lesson's attendance is kept (`[attendance] retention_days`; 0: none is kept).
    pub attendance_retention_days: u32,
    /// Per-address limits on joins and class-code lookups.
    pub join_limits: crate::per_ip::JoinLimits,
    /// Staff single sign-on, when `[oidc]` is configured.
    pub sso: Option<crate::oidc::Sso>,
}

/// The bounds of the stored `Idempotency-Key`s.
#[derive(Debug, Clone, Copy)]
pub struct IdempotencyLimits {
    pub ttl_secs: u64,
    pub max_keys: usize,
}

impl App {
    pub fn next_conn_id(&self) -> ConnId {
        self.next_conn.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Applies the hub's effects under the lock the caller holds, and starts its SFU calls.
    pub fn apply(self: &Arc<Self>, core: &mut Core, effects: Vec<Effect>) {
        self.apply_for(core, effects, None);
    }

    /// [`App::apply`] for effects of a client message that carried `ref`: an SFU call that
    /// fails later answers with an error carrying the same `ref`, as every refusal does.
    pub fn apply_for(
        self: &Arc<Self>,
        core: &mut Core,
        effects: Vec<Effect>,
        reference: Option<serde_json::Value>,
    ) {
        for request in core.apply(effects) {
            crate::sfu_bridge::spawn(self.clone(), request, reference.clone());
        }
    }
}

/// Wall-clock milliseconds since the Unix epoch: the time the I/O layer passes to the hub.
pub fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
