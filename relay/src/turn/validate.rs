//! Checks a [`TurnConfig`] before the server starts: every refusal names its `turn.*` key, the
//! way the other settings keys do.

use super::filter::Cidr;
use super::{TurnConfig, TurnError};

impl TurnConfig {
    /// Checks the values the server cannot run with; `has_tls` says whether a TLS certificate
    /// was given (`tls_listen` needs one). [`TurnServer::start`](super::TurnServer::start)
    /// runs it first.
    pub fn validate(&self, has_tls: bool) -> Result<(), TurnError> {
        if self.secret.is_empty() {
            return Err(TurnError::invalid(
                "turn.secret",
                "the secret is empty (set it in the configuration or with --turn-secret)",
            ));
        }
        if self.relay_port_min == 0 {
            return Err(TurnError::invalid("turn.relay_port_min", "must be above 0"));
        }
        if self.relay_port_min > self.relay_port_max {
            return Err(TurnError::invalid(
                "turn.relay_port_max",
                format!(
                    "{} is below turn.relay_port_min ({}): the relay port range is empty",
                    self.relay_port_max, self.relay_port_min
                ),
            ));
        }
        let positive: &[(&'static str, u64)] = &[
            ("turn.max_lifetime_secs", self.max_lifetime_secs),
            ("turn.default_lifetime_secs", self.default_lifetime_secs),
            (
                "turn.max_connections_per_ip",
                self.max_connections_per_ip as u64,
            ),
            (
                "turn.unallocated_connection_timeout_secs",
                self.unallocated_connection_timeout_secs,
            ),
            (
                "turn.max_credential_lifetime_secs",
                self.max_credential_lifetime_secs,
            ),
            (
                "turn.max_allocations_per_class",
                self.max_allocations_per_class as u64,
            ),
            (
                "turn.max_allocations_per_ip",
                self.max_allocations_per_ip as u64,
            ),
        ];
        for &(key, value) in positive {
            if value == 0 {
                return Err(TurnError::invalid(key, "must be above 0"));
            }
        }
        if self.tls_listen.is_some() && !has_tls {
            return Err(TurnError::invalid(
                "turn.tls_listen",
                "is set but no TLS certificate was given",
            ));
        }
        self.allow_cidrs().map(drop)
    }

    /// `allow_peers` parsed.
    pub(crate) fn allow_cidrs(&self) -> Result<Vec<Cidr>, TurnError> {
        self.allow_peers
            .iter()
            .map(|s| s.parse::<Cidr>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TurnError::invalid("turn.allow_peers", e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> TurnConfig {
        TurnConfig {
            secret: "s".into(),
            ..TurnConfig::default()
        }
    }

    /// The key a refusal names, and its message.
    fn refusal(cfg: &TurnConfig, has_tls: bool) -> (&'static str, String) {
        match cfg.validate(has_tls) {
            Err(TurnError::InvalidValue { key, message }) => (key, message),
            other => panic!("expected InvalidValue, got {other:?}"),
        }
    }

    #[test]
    fn defaults_with_a_secret_are_valid() {
        valid().validate(false).unwrap();
    }

    #[test]
    fn every_refusal_names_its_key() {
        let cases: Vec<(&str, TurnConfig)> = vec![
            (
                "turn.secret",
                TurnConfig {
                    secret: String::new(),
                    ..valid()
                },
            ),
            (
                "turn.relay_port_min",
                TurnConfig {
                    relay_port_min: 0,
                    ..valid()
                },
            ),
            (
                "turn.relay_port_max",
                TurnConfig {
                    relay_port_min: 50000,
                    relay_port_max: 49999,
                    ..valid()
                },
            ),
            (
                "turn.max_lifetime_secs",
                TurnConfig {
                    max_lifetime_secs: 0,
                    ..valid()
                },
            ),
            (
                "turn.default_lifetime_secs",
                TurnConfig {
                    default_lifetime_secs: 0,
                    ..valid()
                },
            ),
            (
                "turn.max_connections_per_ip",
                TurnConfig {
                    max_connections_per_ip: 0,
                    ..valid()
                },
            ),
            (
                "turn.unallocated_connection_timeout_secs",
                TurnConfig {
                    unallocated_connection_timeout_secs: 0,
                    ..valid()
                },
            ),
            (
                "turn.max_credential_lifetime_secs",
                TurnConfig {
                    max_credential_lifetime_secs: 0,
                    ..valid()
                },
            ),
            (
                "turn.max_allocations_per_class",
                TurnConfig {
                    max_allocations_per_class: 0,
                    ..valid()
                },
            ),
            (
                "turn.max_allocations_per_ip",
                TurnConfig {
                    max_allocations_per_ip: 0,
                    ..valid()
                },
            ),
            (
                "turn.tls_listen",
                TurnConfig {
                    tls_listen: Some("127.0.0.1:5349".parse().unwrap()),
                    ..valid()
                },
            ),
            (
                "turn.allow_peers",
                TurnConfig {
                    allow_peers: vec!["10.0.0.0/8".into(), "not-a-cidr".into()],
                    ..valid()
                },
            ),
        ];
        for (key, cfg) in cases {
            let (named, message) = refusal(&cfg, false);
            assert_eq!(named, key, "{message}");
            let shown = cfg.validate(false).unwrap_err().to_string();
            assert!(
                shown.starts_with(&format!("invalid value for {key}: ")),
                "{shown}"
            );
        }
    }

    #[test]
    fn messages_say_what_is_wrong() {
        let (_, m) = refusal(
            &TurnConfig {
                relay_port_min: 50000,
                relay_port_max: 49999,
                ..valid()
            },
            false,
        );
        assert!(m.contains("49999") && m.contains("50000"), "{m}");
        let (_, m) = refusal(
            &TurnConfig {
                allow_peers: vec!["not-a-cidr".into()],
                ..valid()
            },
            false,
        );
        assert!(m.contains("not-a-cidr"), "{m}");
    }

    #[test]
    fn tls_listen_with_a_certificate_is_valid() {
        TurnConfig {
            tls_listen: Some("127.0.0.1:5349".parse().unwrap()),
            ..valid()
        }
        .validate(true)
        .unwrap();
    }
}
