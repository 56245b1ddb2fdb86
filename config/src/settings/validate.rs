//! Range and cross-field checks of a loaded configuration; every error names its key.

use aula_relay::turn::TurnError;

use super::{Settings, SettingsError, MIN_ADMIN_KEY_LEN};

impl Settings {
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
                "sfu.subscribers_per_worker",
                self.sfu.subscribers_per_worker as u64,
            ),
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
        self.oidc.validate()?;
        self.accounts.validate()?;
        if self.turn.enabled {
            // The relay's own checks, keyed `turn.*`, so a bad value stops the start here like
            // any other. An empty secret is generated at start and a TLS listener gets the
            // server's (or a development) certificate, so neither is refused here.
            let mut turn = self.turn.clone();
            if turn.secret.is_empty() {
                turn.secret = "generated at start".into();
            }
            if let Err(TurnError::InvalidValue { key, message }) = turn.validate(true) {
                return Err(SettingsError::invalid(key, message));
            }
        }
        Ok(())
    }
}
