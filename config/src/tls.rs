//! TLS for HTTPS and WSS: a rustls server configuration (ring provider, ALPN `http/1.1`) built from a
//! school's PEM certificate chain and key, or, when none is configured, from a self-signed
//! development certificate for `localhost`, `127.0.0.1` and `::1`.
//!
//! The development certificate is generated with rcgen into `tls.dev_cert_dir` as `dev-cert.pem` and
//! `dev-key.pem` (the key with mode 0600 on Unix) on first use and reused afterwards; delete both
//! files to get a new one. Browsers will warn about it: it is for development, never for a school.
//! Every error names the file involved.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

use crate::settings::TlsSettings;

/// File name of the development certificate inside `dev_cert_dir`.
pub const DEV_CERT_FILE: &str = "dev-cert.pem";
/// File name of the development certificate's private key inside `dev_cert_dir`.
pub const DEV_KEY_FILE: &str = "dev-key.pem";
/// Names the development certificate is valid for.
pub const DEV_CERT_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];
/// The ALPN protocol offered by [`server_config`].
pub const ALPN_HTTP1: &[u8] = b"http/1.1";

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read (missing, unreadable).
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A file is not valid PEM.
    #[error("cannot parse PEM in {}: {message}", path.display())]
    Pem { path: PathBuf, message: String },
    /// The certificate file holds no certificate.
    #[error("no certificate found in {}", .0.display())]
    NoCertificate(PathBuf),
    /// The key file holds no private key (PKCS#8, PKCS#1 or SEC1).
    #[error("no private key found in {}", .0.display())]
    NoPrivateKey(PathBuf),
    /// rustls refused the pair (unsupported key type, key does not match the certificate, ...).
    #[error("the certificate {} and key {} cannot be used", cert.display(), key.display())]
    Rejected {
        cert: PathBuf,
        key: PathBuf,
        source: rustls::Error,
    },
    /// The development certificate could not be generated.
    #[error("cannot generate the development certificate")]
    Generate(#[from] rcgen::Error),
    /// A file could not be written.
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The certificate and key files in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// Whether they were generated just now (a new development certificate).
    pub generated: bool,
}

/// The server configuration for `[tls]` settings: the school's `cert`/`key` when both are set,
/// otherwise the development certificate in `dev_cert_dir` (generated on first use). ALPN
/// `http/1.1`.
pub fn server_config(tls: &TlsSettings) -> Result<Arc<ServerConfig>, TlsError> {
    server_config_with_alpn(tls, vec![ALPN_HTTP1.to_vec()])
}

/// Like [`server_config`] with other ALPN protocols (empty: no ALPN, e.g. for TURN over TLS, whose
/// clients may offer none or `stun.turn`).
pub fn server_config_with_alpn(
    tls: &TlsSettings,
    alpn: Vec<Vec<u8>>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let files = cert_files(tls)?;
    let mut config = load_server_config(&files.cert, &files.key)?;
    config.alpn_protocols = alpn;
    Ok(Arc::new(config))
}

/// Which files `tls` selects: the school's pair, or the development pair (generated if missing).
pub fn cert_files(tls: &TlsSettings) -> Result<CertFiles, TlsError> {
    match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => Ok(CertFiles {
            cert: cert.clone(),
            key: key.clone(),
            generated: false,
        }),
        _ => ensure_dev_cert(&tls.dev_cert_dir),
    }
}

/// A server configuration (ring provider, safe default protocol versions, no client auth, no ALPN)
/// from a PEM certificate chain and a PEM private key.
pub fn load_server_config(cert: &Path, key: &Path) -> Result<ServerConfig, TlsError> {
    let chain = load_cert_chain(cert)?;
    let private_key = load_private_key(key)?;
    let rejected = |source| TlsError::Rejected {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        source,
    };
    ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(rejected)?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)
        .map_err(rejected)
}

/// Every certificate in a PEM file, in order (leaf first).
pub fn load_cert_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, e))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(path.to_path_buf()));
    }
    Ok(chain)
}

/// The first private key in a PEM file.
pub fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::NoPrivateKey(path.to_path_buf()),
        e => pem_error(path, e),
    })
}

fn pem_error(path: &Path, e: rustls::pki_types::pem::Error) -> TlsError {
    match e {
        rustls::pki_types::pem::Error::Io(source) => TlsError::Read {
            path: path.to_path_buf(),
            source,
        },
        e => TlsError::Pem {
            path: path.to_path_buf(),
            message: e.to_string(),
        },
    }
}

/// The development certificate in `dir`: reused when both files exist, otherwise generated
/// (creating `dir`) for [`DEV_CERT_NAMES`]. Existing files are not checked here; a damaged pair
/// fails when loaded, naming the file.
pub fn ensure_dev_cert(dir: &Path) -> Result<CertFiles, TlsError> {
    let cert = dir.join(DEV_CERT_FILE);
    let key = dir.join(DEV_KEY_FILE);
    if cert.is_file() && key.is_file() {
        return Ok(CertFiles {
            cert,
            key,
            generated: false,
        });
    }
    std::fs::create_dir_all(dir).map_err(|source| TlsError::Write {
        path: dir.to_path_buf(),
        source,
    })?;

    let names: Vec<String> = DEV_CERT_NAMES.iter().map(|s| s.to_string()).collect();
    let mut params = rcgen::CertificateParams::new(names)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Aula development certificate");
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "Aula (development only)");
    let signing_key = rcgen::KeyPair::generate()?;
    let certificate = params.self_signed(&signing_key)?;

    // Key first, so a crash in between leaves no certificate without its key.
    write_atomically(&key, signing_key.serialize_pem().as_bytes(), 0o600)?;
    write_atomically(&cert, certificate.pem().as_bytes(), 0o644)?;
    tracing::warn!(
        cert = %cert.display(),
        "generated a self-signed development certificate for localhost; browsers will warn about it"
    );
    Ok(CertFiles {
        cert,
        key,
        generated: true,
    })
}

/// Writes `bytes` to a temporary file next to `path` (created with `mode` on Unix) and renames it
/// into place.
fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<(), TlsError> {
    let write_err = |source| TlsError::Write {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension(format!("pem.tmp{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let result = options.open(&tmp).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    if let Err(e) = result.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(write_err(e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::ServerName;
    use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConnection};

    fn dev_settings(dir: &Path) -> TlsSettings {
        TlsSettings {
            enabled: true,
            dev_cert_dir: dir.to_path_buf(),
            ..TlsSettings::default()
        }
    }

    /// Runs an in-memory handshake of a client trusting `trust` for `name` against `server`;
    /// returns the negotiated ALPN protocol.
    fn handshake(
        server: Arc<ServerConfig>,
        trust: &Path,
        name: &str,
    ) -> Result<Option<Vec<u8>>, rustls::Error> {
        let mut roots = RootCertStore::empty();
        for cert in load_cert_chain(trust).unwrap() {
            roots.add(cert).unwrap();
        }
        let mut client_config =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()?
                .with_root_certificates(roots)
                .with_no_client_auth();
        client_config.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
        let name = ServerName::try_from(name.to_string()).unwrap();
        let mut client = ClientConnection::new(Arc::new(client_config), name)?;
        let mut server = ServerConnection::new(server)?;
        for _ in 0..10 {
            let mut buf = Vec::new();
            client.write_tls(&mut buf).unwrap();
            if !buf.is_empty() {
                server.read_tls(&mut &buf[..]).unwrap();
                server.process_new_packets()?;
            }
            buf.clear();
            server.write_tls(&mut buf).unwrap();
            if !buf.is_empty() {
                client.read_tls(&mut &buf[..]).unwrap();
                client.process_new_packets()?;
            }
            if !client.is_handshaking() && !server.is_handshaking() {
                return Ok(client.alpn_protocol().map(<[u8]>::to_vec));
            }
        }
        panic!("handshake did not finish");
    }

    #[test]
    fn dev_cert_is_generated_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let certs = dir.path().join("certs");
        let first = ensure_dev_cert(&certs).unwrap();
        assert!(first.generated);
        assert_eq!(first.cert, certs.join(DEV_CERT_FILE));
        assert_eq!(first.key, certs.join(DEV_KEY_FILE));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&first.key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let pem = std::fs::read(&first.cert).unwrap();

        let second = ensure_dev_cert(&certs).unwrap();
        assert!(!second.generated);
        assert_eq!(std::fs::read(&second.cert).unwrap(), pem);
        // No temporary files left behind.
        assert_eq!(std::fs::read_dir(&certs).unwrap().count(), 2);

        // A missing half regenerates the pair.
        std::fs::remove_file(&first.key).unwrap();
        let third = ensure_dev_cert(&certs).unwrap();
        assert!(third.generated);
        assert_ne!(std::fs::read(&third.cert).unwrap(), pem);
    }

    #[test]
    fn dev_cert_serves_localhost_names_with_alpn() {
        let dir = tempfile::tempdir().unwrap();
        let settings = dev_settings(dir.path());
        let config = server_config(&settings).unwrap();
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
        let cert = dir.path().join(DEV_CERT_FILE);
        for name in DEV_CERT_NAMES {
            let alpn = handshake(config.clone(), &cert, name).unwrap();
            assert_eq!(alpn.as_deref(), Some(ALPN_HTTP1), "{name}");
        }
        assert!(handshake(config, &cert, "aula.example").is_err());
    }

    #[test]
    fn school_pair_is_loaded() {
        // A "school" pair: generated elsewhere, configured by path.
        let dir = tempfile::tempdir().unwrap();
        let generated = ensure_dev_cert(&dir.path().join("elsewhere")).unwrap();
        let settings = TlsSettings {
            cert: Some(generated.cert.clone()),
            key: Some(generated.key.clone()),
            ..dev_settings(&dir.path().join("unused"))
        };
        let files = cert_files(&settings).unwrap();
        assert_eq!(
            (files.cert, files.generated),
            (generated.cert.clone(), false)
        );
        let config = server_config(&settings).unwrap();
        assert!(
            !dir.path().join("unused").exists(),
            "no dev cert when a pair is given"
        );
        handshake(config, &generated.cert, "localhost").unwrap();

        let no_alpn = server_config_with_alpn(&settings, Vec::new()).unwrap();
        assert!(no_alpn.alpn_protocols.is_empty());
    }

    #[test]
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let good = ensure_dev_cert(dir.path()).unwrap();

        let missing = dir.path().join("missing-chain.pem");
        let err = load_server_config(&missing, &good.key).unwrap_err();
        assert!(matches!(err, TlsError::Read { .. }), "{err}");
        assert!(err.to_string().contains("missing-chain.pem"), "{err}");

        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not pem at all\n").unwrap();
        let err = load_server_config(&empty, &good.key).unwrap_err();
        assert!(matches!(err, TlsError::NoCertificate(_)), "{err}");
        assert!(err.to_string().contains("empty.pem"), "{err}");

        // The certificate file given as the key.
        let err = load_server_config(&good.cert, &good.cert).unwrap_err();
        assert!(matches!(err, TlsError::NoPrivateKey(_)), "{err}");
        assert!(err.to_string().contains(DEV_CERT_FILE), "{err}");

        // A key that does not belong to the certificate.
        let other = ensure_dev_cert(&dir.path().join("other")).unwrap();
        let err = load_server_config(&good.cert, &other.key).unwrap_err();
        assert!(matches!(err, TlsError::Rejected { .. }), "{err}");
        assert!(err.to_string().contains(DEV_CERT_FILE), "{err}");

        let truncated = dir.path().join("truncated.pem");
        let pem = std::fs::read_to_string(&good.cert).unwrap();
        std::fs::write(&truncated, &pem[..pem.len() / 2]).unwrap();
        let err = load_server_config(&truncated, &good.key).unwrap_err();
        assert!(err.to_string().contains("truncated.pem"), "{err}");
    }
}
