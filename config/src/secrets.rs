//! Secrets the server generates on first run and keeps in its data dir (admin key, token and
//! TURN secrets), so links and credentials stay valid across restarts without configuration.

use std::io::Write;
use std::path::{Path, PathBuf};

/// A secret file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} secret file {}", path.display())]
pub struct SecretError {
    action: &'static str,
    path: PathBuf,
    source: std::io::Error,
}

/// A new random secret: 32 bytes, hex encoded.
pub fn generate() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// Reads `dir/name`, or creates it (mode 0600) with a fresh secret. Returns the secret and
/// whether it was just created.
pub fn load_or_create(dir: &Path, name: &str) -> Result<(String, bool), SecretError> {
    let path = dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(s) if !s.trim().is_empty() => return Ok((s.trim().to_string(), false)),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(SecretError {
                action: "read",
                path,
                source,
            })
        }
    }
    let err = |source| SecretError {
        action: "write",
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(err)?;
    let secret = generate();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&path).map_err(err)?;
    file.write_all(secret.as_bytes()).map_err(err)?;
    Ok((secret, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_reused() {
        let dir = std::env::temp_dir().join(format!("aula-secrets-{}", generate()));
        let (a, created) = load_or_create(&dir, "admin_key").unwrap();
        assert!(created);
        assert_eq!(a.len(), 64);
        let (b, created) = load_or_create(&dir, "admin_key").unwrap();
        assert!(!created);
        assert_eq!(a, b);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("admin_key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
