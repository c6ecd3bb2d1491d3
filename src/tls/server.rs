//! What the daemon's own listener presents to its clients (`[http]
//! cert_file` and `key_file`): a certificate chain and its private key,
//! PEM, read and checked when the config is loaded (at start and on every
//! reload), so a renewed certificate is taken by a reload.
//!
//! The key is a secret: a file any user may read is refused, and, like the
//! credential files of `config::credential`, one over [`KEY_MAX`] bytes (a
//! wrong path to a log or a device) is refused unread.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::ServerConfig;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The longest key file read: a PEM key is a few KiB at most.
pub const KEY_MAX: u64 = 64 * 1024;
/// The longest certificate file read (a chain of a few certificates).
const CERT_MAX: u64 = 1024 * 1024;

/// Which of the two files an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Cert,
    Key,
}

/// Why the listener's certificate or key cannot be used; the text names
/// the file.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("cannot read {}", .path.display())]
    Read {
        part: Part,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is over {} KiB, not a PEM {}", .path.display(), .max / 1024, .what)]
    TooLarge {
        part: Part,
        path: PathBuf,
        max: u64,
        what: &'static str,
    },
    #[error("{} may be read by any user (mode {mode:04o}): make it 0600 or 0640 (chmod o-r)", .path.display())]
    WorldReadable { path: PathBuf, mode: u32 },
    #[error("{} holds no {what} (expected PEM `{label}`)", .path.display())]
    Missing {
        part: Part,
        path: PathBuf,
        what: &'static str,
        label: &'static str,
    },
    #[error("{} is not PEM: {reason}", .path.display())]
    NotPem {
        part: Part,
        path: PathBuf,
        reason: String,
    },
    #[error("the key in {} cannot serve the certificate in {}: {reason}", .key.display(), .cert.display())]
    Unusable {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
}

impl IdentityError {
    /// The file the error is about: the certificate or the key.
    pub fn part(&self) -> Part {
        match self {
            IdentityError::Read { part, .. }
            | IdentityError::TooLarge { part, .. }
            | IdentityError::Missing { part, .. }
            | IdentityError::NotPem { part, .. } => *part,
            IdentityError::WorldReadable { .. } | IdentityError::Unusable { .. } => Part::Key,
        }
    }
}

/// A certificate chain and the private key of its first certificate, read
/// and checked to belong together.
#[derive(Clone)]
pub struct ServerIdentity {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// Each certificate, DER, the server's own first.
    certs: Vec<Vec<u8>>,
    /// The private key (never shown).
    key: Arc<PrivateKeyDer<'static>>,
}

impl PartialEq for ServerIdentity {
    fn eq(&self, other: &Self) -> bool {
        (&self.cert_file, &self.key_file, &self.certs)
            == (&other.cert_file, &other.key_file, &other.certs)
            && self.key.secret_der() == other.key.secret_der()
    }
}

impl Eq for ServerIdentity {}

impl fmt::Debug for ServerIdentity {
    /// Never shows the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ServerIdentity({}, {} certificates; key {})",
            self.cert_file.display(),
            self.certs.len(),
            self.key_file.display()
        )
    }
}

impl ServerIdentity {
    /// Reads `cert_file` and `key_file` and checks that the key is private
    /// to its owner and group and matches the first certificate.
    pub fn load(cert_file: &Path, key_file: &Path) -> Result<ServerIdentity, IdentityError> {
        let cert_bytes = read_capped(cert_file, Part::Cert, CERT_MAX, "certificate")?;
        let certs = CertificateDer::pem_slice_iter(&cert_bytes)
            .map(|c| c.map(|c| c.to_vec()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| not_pem(Part::Cert, cert_file, e))?;
        if certs.is_empty() {
            return Err(IdentityError::Missing {
                part: Part::Cert,
                path: cert_file.to_path_buf(),
                what: "certificate",
                label: "BEGIN CERTIFICATE",
            });
        }
        private_to_owner(key_file)?;
        let key_bytes = read_capped(key_file, Part::Key, KEY_MAX, "key")?;
        let key = match PrivateKeyDer::from_pem_slice(&key_bytes) {
            Ok(k) => Arc::new(k),
            Err(rustls::pki_types::pem::Error::NoItemsFound) => {
                return Err(IdentityError::Missing {
                    part: Part::Key,
                    path: key_file.to_path_buf(),
                    what: "private key",
                    label: "BEGIN PRIVATE KEY",
                })
            }
            Err(e) => return Err(not_pem(Part::Key, key_file, e)),
        };
        let identity = ServerIdentity {
            cert_file: cert_file.to_path_buf(),
            key_file: key_file.to_path_buf(),
            certs,
            key,
        };
        identity.server_config()?;
        Ok(identity)
    }

    /// The TLS server setup that presents this identity: TLS 1.2 and 1.3,
    /// HTTP/1.1, with the crypto reqwest uses (aws-lc-rs).
    pub fn server_config(&self) -> Result<ServerConfig, IdentityError> {
        self.server_config_for(None)
    }

    /// The same, and, with `clients`, mutual TLS: every client must
    /// present a certificate chained to one of its roots (the centre's
    /// `client_ca_file`); who it names is the caller's to check.
    pub fn server_config_for(
        &self,
        clients: Option<&super::CaFile>,
    ) -> Result<ServerConfig, IdentityError> {
        let unusable = |e: rustls::Error| IdentityError::Unusable {
            cert: self.cert_file.clone(),
            key: self.key_file.clone(),
            reason: e.to_string(),
        };
        let (certs, key) = self.chain_and_key();
        let builder = ServerConfig::builder_with_provider(super::provider())
            .with_safe_default_protocol_versions()
            .map_err(unusable)?;
        let builder = match clients {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let verifier = WebPkiClientVerifier::builder_with_provider(
                    Arc::new(ca.roots().map_err(unusable)?),
                    super::provider(),
                )
                .build()
                .map_err(|e| unusable(rustls::Error::General(e.to_string())))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder.with_single_cert(certs, key).map_err(unusable)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }

    /// The certificates, first the own, and the private key, as rustls
    /// takes them: to serve with, or to present as a client.
    pub fn chain_and_key(&self) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let certs = self
            .certs
            .iter()
            .map(|c| CertificateDer::from(c.clone()))
            .collect();
        (certs, self.key.clone_key())
    }
}

fn not_pem(part: Part, path: &Path, e: rustls::pki_types::pem::Error) -> IdentityError {
    IdentityError::NotPem {
        part,
        path: path.to_path_buf(),
        reason: format!("{e:?}"),
    }
}

fn read_capped(
    path: &Path,
    part: Part,
    max: u64,
    what: &'static str,
) -> Result<Vec<u8>, IdentityError> {
    use std::io::Read;
    let read = |source| IdentityError::Read {
        part,
        path: path.to_path_buf(),
        source,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(read)?
        .take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(read)?;
    if bytes.len() as u64 > max {
        return Err(IdentityError::TooLarge {
            part,
            path: path.to_path_buf(),
            max,
            what,
        });
    }
    Ok(bytes)
}

/// Refuses a key file that every user may read.
fn private_to_owner(path: &Path) -> Result<(), IdentityError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|source| IdentityError::Read {
            part: Part::Key,
            path: path.to_path_buf(),
            source,
        })?
        .permissions()
        .mode()
        & 0o7777;
    match mode & 0o004 {
        0 => Ok(()),
        _ => Err(IdentityError::WorldReadable {
            path: path.to_path_buf(),
            mode,
        }),
    }
}
