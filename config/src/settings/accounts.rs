//! The `[accounts]` section: staff accounts (admins and teachers), their sign-in sessions, the
//! one-time setup links that let a new teacher choose a password, and the sign-in throttles.

use serde::{Deserialize, Serialize};

use super::SettingsError;

/// Shortest `password_min_length` accepted (below it a password is guessed offline quickly).
pub const MIN_PASSWORD_LENGTH: usize = 8;

/// The `[accounts]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AccountsSettings {
    /// How long a sign-in lasts, in seconds; then the person signs in again. Default 43200 (12 h).
    pub session_lifetime_secs: u64,
    /// How long a setup link (`aula account add` / `reset`) may be used, in seconds.
    /// Default 86400 (24 h).
    pub setup_link_lifetime_secs: u64,
    /// Shortest password accepted, in characters (at least 8). Default 10.
    pub password_min_length: usize,
    /// Wrong passwords one account may be given per `sign_in_window_secs` before further
    /// attempts get 429 for a while (whoever makes them). Default 5.
    pub sign_in_failures_per_account: u32,
    /// Failed sign-ins one IP address may make per `sign_in_window_secs`. Default 20.
    pub sign_in_failures_per_ip: u32,
    /// The window of the two sign-in throttles, in seconds (the budget refills over it).
    /// Default 900 (15 minutes).
    pub sign_in_window_secs: u64,
}

impl Default for AccountsSettings {
    fn default() -> Self {
        AccountsSettings {
            session_lifetime_secs: 12 * 3600,
            setup_link_lifetime_secs: 24 * 3600,
            password_min_length: 10,
            sign_in_failures_per_account: 5,
            sign_in_failures_per_ip: 20,
            sign_in_window_secs: 900,
        }
    }
}

impl AccountsSettings {
    /// The section's checks; every error names its key.
    pub(crate) fn validate(&self) -> Result<(), SettingsError> {
        let positive: &[(&str, u64)] = &[
            ("accounts.session_lifetime_secs", self.session_lifetime_secs),
            (
                "accounts.setup_link_lifetime_secs",
                self.setup_link_lifetime_secs,
            ),
            (
                "accounts.sign_in_failures_per_account",
                self.sign_in_failures_per_account.into(),
            ),
            (
                "accounts.sign_in_failures_per_ip",
                self.sign_in_failures_per_ip.into(),
            ),
            ("accounts.sign_in_window_secs", self.sign_in_window_secs),
        ];
        if let Some((key, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(SettingsError::invalid(key, "must be at least 1"));
        }
        if self.password_min_length < MIN_PASSWORD_LENGTH {
            return Err(SettingsError::invalid(
                "accounts.password_min_length",
                format!(
                    "{} is below the minimum of {MIN_PASSWORD_LENGTH}",
                    self.password_min_length
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Settings;

    #[test]
    fn defaults_validate_and_bad_values_name_their_key() {
        assert!(AccountsSettings::default().validate().is_ok());
        let err = Settings::from_toml_str("[accounts]\npassword_min_length = 4\n").unwrap_err();
        assert!(
            err.to_string().contains("accounts.password_min_length"),
            "{err}"
        );
        let err = Settings::from_toml_str("[accounts]\nsession_lifetime_secs = 0\n").unwrap_err();
        assert!(
            err.to_string().contains("accounts.session_lifetime_secs"),
            "{err}"
        );
        let s = Settings::from_toml_str("[accounts]\nsession_lifetime_secs = 3600\n").unwrap();
        assert_eq!(s.accounts.session_lifetime_secs, 3600);
    }
}
