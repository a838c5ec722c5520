//! Native HTTPS (`[server] tls_cert`, `tls_key`): the PEM files become a rustls
//! server configuration, and each accepted connection's handshake (`server.rs` serves
//! it with hyper's HTTP/1 + HTTP/2 connection builder).
//! SIGHUP swaps in a fresh configuration: connections already open keep theirs,
//! new handshakes get the new certificate.

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;

const CERT_KEY: &str = "server.tls_cert";
const KEY_KEY: &str = "server.tls_key";

/// A client that opens a connection and never finishes its handshake must not
/// hold a task (and, at shutdown, the drain) forever.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the certificate chain and its private key are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Why the certificate and key cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(
        "cannot read {path}: {source}; check the path and that the user running tocsin may read it",
        path = .path.display()
    )]
    Unreadable {
        config_key: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} is damaged PEM ({source}); copy the file again, whole, from \"-----BEGIN\" to \"-----END\"",
        path = .path.display()
    )]
    Malformed {
        config_key: &'static str,
        path: PathBuf,
        source: pem::Error,
    },
    #[error(
        "{path} holds no certificate (no \"-----BEGIN CERTIFICATE-----\" block); point server.tls_cert at the PEM certificate chain, the server's certificate first (convert a DER file with `openssl x509 -inform DER -in FILE -out cert.pem`)",
        path = .path.display()
    )]
    NoCertificate { path: PathBuf },
    #[error(
        "{path} holds no private key (no \"-----BEGIN … PRIVATE KEY-----\" block); point server.tls_key at the PEM private key of the certificate (convert a DER file with `openssl pkey -inform DER -in FILE -out key.pem`)",
        path = .path.display()
    )]
    NoKey { path: PathBuf },
    #[error(
        "the private key in {key} does not match the certificate in {cert}; install the key the certificate was issued for, or the certificate issued for this key",
        key = .key.display(),
        cert = .cert.display()
    )]
    Mismatch { cert: PathBuf, key: PathBuf },
    #[error(
        "{path} cannot be used: {source}; use an RSA, ECDSA (P-256, P-384) or Ed25519 certificate and key in PEM",
        path = .path.display()
    )]
    Refused {
        config_key: &'static str,
        path: PathBuf,
        source: rustls::Error,
    },
}

impl TlsError {
    /// The configuration key whose file is at fault.
    pub fn config_key(&self) -> &'static str {
        match self {
            Self::Unreadable { config_key, .. }
            | Self::Malformed { config_key, .. }
            | Self::Refused { config_key, .. } => config_key,
            Self::NoCertificate { .. } => CERT_KEY,
            Self::NoKey { .. } | Self::Mismatch { .. } => KEY_KEY,
        }
    }
}

/// Reads the files and builds the server configuration (ring provider, TLS 1.2
/// and 1.3, HTTP/2 and HTTP/1.1 offered by ALPN).
pub fn load(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = certificates(&files.cert)?;
    let key = private_key(&files.key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let refused_by = |config_key, path: &Path| {
        let path = path.to_path_buf();
        move |source| TlsError::Refused {
            config_key,
            path,
            source,
        }
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(refused_by(KEY_KEY, &files.key))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|source| match source {
            rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
                TlsError::Mismatch {
                    cert: files.cert.clone(),
                    key: files.key.clone(),
                }
            }
            rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented => {
                refused_by(CERT_KEY, &files.cert)(source)
            }
            other => refused_by(KEY_KEY, &files.key)(other),
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let chain = CertificateDer::pem_file_iter(path)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|error| pem_error(CERT_KEY, path, error))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(chain)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|error| match error {
        pem::Error::NoItemsFound => TlsError::NoKey {
            path: path.to_path_buf(),
        },
        other => pem_error(KEY_KEY, path, other),
    })
}

fn pem_error(config_key: &'static str, path: &Path, error: pem::Error) -> TlsError {
    let path = path.to_path_buf();
    match error {
        pem::Error::Io(source) => TlsError::Unreadable {
            config_key,
            path,
            source,
        },
        source => TlsError::Malformed {
            config_key,
            path,
            source,
        },
    }
}

/// The server configuration new handshakes use.
pub struct Certificates {
    current: ArcSwap<ServerConfig>,
}

impl Certificates {
    /// Reads the files; an error names the file and the key that points at it.
    pub fn load(files: &TlsFiles) -> Result<Self, TlsError> {
        Ok(Self {
            current: ArcSwap::new(load(files)?),
        })
    }

    /// Reads the files again and swaps them in, or keeps the running ones and
    /// says why.
    pub fn reload(&self, files: &TlsFiles) -> Result<(), TlsError> {
        self.current.store(load(files)?);
        Ok(())
    }

    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.current.load_full())
    }
}

/// Why an accepted connection got no TLS session (logged at debug: the client's
/// doing, not the server's).
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("the TLS handshake took over {} s", HANDSHAKE_TIMEOUT.as_secs())]
    TimedOut,
    #[error("TLS handshake failed (is the client using http://?): {0}")]
    Failed(#[from] std::io::Error),
}

/// The TLS handshake on an accepted connection, bounded by [`HANDSHAKE_TIMEOUT`].
pub async fn handshake(
    acceptor: &tokio_rustls::TlsAcceptor,
    stream: TcpStream,
) -> Result<tokio_rustls::server::TlsStream<TcpStream>, HandshakeError> {
    Ok(
        tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream))
            .await
            .map_err(|_| HandshakeError::TimedOut)??,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate and its key, written to `dir` as `NAME.crt`/`NAME.key`.
    fn pair(dir: &Path, name: &str) -> TlsFiles {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let files = TlsFiles {
            cert: dir.join(format!("{name}.crt")),
            key: dir.join(format!("{name}.key")),
        };
        std::fs::write(&files.cert, made.cert.pem()).unwrap();
        std::fs::write(&files.key, made.signing_key.serialize_pem()).unwrap();
        files
    }

    #[test]
    fn a_matching_pair_offers_http2_and_http1() {
        let dir = tempfile::tempdir().unwrap();
        let config = load(&pair(dir.path(), "a")).unwrap();
        assert_eq!(
            config.alpn_protocols,
            [b"h2".to_vec(), b"http/1.1".to_vec()]
        );
    }

    #[test]
    fn each_bad_pair_blames_the_right_key() {
        let dir = tempfile::tempdir().unwrap();
        let a = pair(dir.path(), "a");
        let b = pair(dir.path(), "b");
        let blame = |cert: &Path, key: &Path| {
            let error = load(&TlsFiles {
                cert: cert.into(),
                key: key.into(),
            })
            .unwrap_err();
            (error.config_key(), error.to_string())
        };
        let (key, message) = blame(&a.cert, &b.key);
        assert_eq!(key, "server.tls_key");
        assert!(
            message.contains("does not match the certificate"),
            "{message}"
        );
        let (key, message) = blame(&a.key, &a.key);
        assert_eq!(key, "server.tls_cert");
        assert!(message.contains("holds no certificate"), "{message}");
        let (key, message) = blame(&a.cert, &a.cert);
        assert_eq!(key, "server.tls_key");
        assert!(message.contains("holds no private key"), "{message}");
        let (key, message) = blame(&dir.path().join("missing.crt"), &a.key);
        assert_eq!(key, "server.tls_cert");
        assert!(message.contains("cannot read"), "{message}");
        let (key, message) = blame(&a.cert, dir.path());
        assert_eq!(key, "server.tls_key");
        assert!(message.contains("cannot read"), "{message}");
        std::fs::write(&b.cert, "-----BEGIN CERTIFICATE-----\nAAAA\n").unwrap();
        let (key, message) = blame(&b.cert, &b.key);
        assert_eq!(key, "server.tls_cert");
        assert!(message.contains("damaged PEM"), "{message}");
    }

    #[test]
    fn a_refused_reload_keeps_the_running_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let a = pair(dir.path(), "a");
        let b = pair(dir.path(), "b");
        let certificates = Certificates::load(&a).unwrap();
        let running = certificates.current.load_full();
        let mismatched = TlsFiles {
            cert: a.cert.clone(),
            key: b.key.clone(),
        };
        assert!(certificates.reload(&mismatched).is_err());
        assert!(Arc::ptr_eq(&running, &certificates.current.load_full()));
        certificates.reload(&b).unwrap();
        assert!(!Arc::ptr_eq(&running, &certificates.current.load_full()));
    }
}
