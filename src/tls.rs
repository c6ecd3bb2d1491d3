//! Whom a TLS peer (an `ipps://` printer, an `https://` grants URL) must be
//! to be trusted. A leaf: it imports nothing from tallyd.
//!
//! - [`Trust::System`]: the system's roots, as any HTTPS client (the default).
//! - [`Trust::CaFile`]: only the certificates of a PEM file (`ca_file`). A
//!   peer's certificate must chain to one of them, name the host and be in
//!   date; a certificate that is itself in the file (a printer's self-signed
//!   one, copied there) is trusted as it is, like a pinned one.
//! - [`Trust::Pinned`]: only the one certificate with this SHA-256
//!   fingerprint (`tls_fingerprint`), as ssh's known hosts: its issuer, name
//!   and dates are not checked, since pinning the exact certificate is what
//!   makes it trusted.
//!
//! [`server_config`] is the other side: a certificate and key to serve
//! (`tallyd central`'s and the daemon's `[http]` `cert_file`, `key_file`),
//! read and checked by [`server::ServerIdentity`].
//!
//! Verification is never switched off. [`certificate_problem`] finds, in a
//! transport error, the reason a peer's certificate was refused.

pub mod server;

pub use server::ServerIdentity;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Whom a TLS peer must be.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Trust {
    /// The system's roots.
    #[default]
    System,
    /// Only the certificates of a CA file.
    CaFile(CaFile),
    /// Only the certificate with this fingerprint.
    Pinned(Fingerprint),
}

/// A PEM file of one or more certificates, read and checked.
#[derive(Clone, PartialEq, Eq)]
pub struct CaFile {
    pub path: PathBuf,
    /// Each certificate, DER.
    certs: Vec<Vec<u8>>,
}

impl fmt::Debug for CaFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CaFile({}, {} certificates)",
            self.path.display(),
            self.certs.len()
        )
    }
}

/// Why a CA file cannot be used; the text names the file.
#[derive(Debug, thiserror::Error)]
pub enum CaFileError {
    #[error("cannot read {}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not PEM: {reason}", .path.display())]
    NotPem { path: PathBuf, reason: String },
    #[error("{} holds no certificate (expected PEM `BEGIN CERTIFICATE` blocks)", .path.display())]
    NoCertificate { path: PathBuf },
    #[error("certificate {index} of {} cannot be used: {reason}", .path.display())]
    Unusable {
        path: PathBuf,
        index: usize,
        reason: String,
    },
}

impl CaFile {
    /// Reads `path` and checks that it holds PEM certificates, each usable
    /// as a trust anchor.
    pub fn load(path: &Path) -> Result<CaFile, CaFileError> {
        let path = path.to_path_buf();
        let bytes = std::fs::read(&path).map_err(|source| CaFileError::Read {
            path: path.clone(),
            source,
        })?;
        let certs = CertificateDer::pem_slice_iter(&bytes)
            .map(|c| c.map(|c| c.to_vec()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| CaFileError::NotPem {
                path: path.clone(),
                reason: format!("{e:?}"),
            })?;
        if certs.is_empty() {
            return Err(CaFileError::NoCertificate { path });
        }
        for (i, der) in certs.iter().enumerate() {
            RootCertStore::empty()
                .add(CertificateDer::from(der.as_slice()))
                .map_err(|e| CaFileError::Unusable {
                    path: path.clone(),
                    index: i + 1,
                    reason: e.to_string(),
                })?;
        }
        Ok(CaFile { path, certs })
    }

    /// How many certificates it holds.
    pub fn len(&self) -> usize {
        self.certs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }

    /// Its certificates as trust anchors.
    pub fn roots(&self) -> Result<RootCertStore, rustls::Error> {
        let mut roots = RootCertStore::empty();
        for der in &self.certs {
            roots.add(CertificateDer::from(der.as_slice()))?;
        }
        Ok(roots)
    }
}

/// A SHA-256 certificate fingerprint; shown as `sha256:AB:CD:…`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of a DER certificate.
    pub fn of(der: &[u8]) -> Fingerprint {
        Fingerprint(Sha256::digest(der).into())
    }

    /// Parses `sha256:AB:CD:…`, with or without the `sha256:` prefix (or
    /// openssl's `sha256 Fingerprint=`), with or without colons, in either
    /// case. `None` unless it is 32 bytes of hex.
    pub fn parse(text: &str) -> Option<Fingerprint> {
        let t = text.trim();
        let lower = t.to_ascii_lowercase();
        let hex = ["sha256 fingerprint=", "sha256:", "sha256="]
            .iter()
            .find_map(|p| lower.strip_prefix(p))
            .unwrap_or(&lower);
        let hex: Vec<u8> = hex.bytes().filter(|&b| b != b':').collect();
        if hex.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (byte, pair) in out.iter_mut().zip(hex.chunks(2)) {
            let pair = std::str::from_utf8(pair).ok()?;
            *byte = u8::from_str_radix(pair, 16).ok()?;
        }
        Some(Fingerprint(out))
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sha256:")?;
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// `builder` trusting whom `trust` says. The system's roots leave it as it
/// is; a CA file or a pin gives it a TLS setup of its own.
pub fn client_builder(
    trust: &Trust,
    builder: reqwest::ClientBuilder,
) -> Result<reqwest::ClientBuilder, rustls::Error> {
    client_builder_as(trust, None, builder)
}

/// The same, presenting `identity` (a certificate and its key) to servers
/// that ask for one: a site to its centre under mutual TLS.
pub fn client_builder_as(
    trust: &Trust,
    identity: Option<&ServerIdentity>,
    builder: reqwest::ClientBuilder,
) -> Result<reqwest::ClientBuilder, rustls::Error> {
    let verifier = match trust {
        Trust::System => match identity {
            None => return Ok(builder),
            Some(id) => return Ok(builder.identity(reqwest_identity(id)?)),
        },
        Trust::CaFile(ca) => Verifier::for_ca_file(ca)?,
        Trust::Pinned(pin) => Verifier::pinned(*pin),
    };
    let provider = verifier.provider.clone();
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier));
    let mut config = match identity {
        None => config.with_no_client_auth(),
        Some(id) => {
            let (certs, key) = id.chain_and_key();
            config.with_client_auth_cert(certs, key)?
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(builder.tls_backend_preconfigured(config))
}

/// `identity` as reqwest takes it with the system's roots: its files'
/// PEM, read again (they were checked when the config was loaded).
fn reqwest_identity(identity: &ServerIdentity) -> Result<reqwest::Identity, rustls::Error> {
    let unreadable = |e: std::io::Error| rustls::Error::General(e.to_string());
    let mut pem = std::fs::read(&identity.cert_file).map_err(unreadable)?;
    pem.push(b'\n');
    pem.extend(std::fs::read(&identity.key_file).map_err(unreadable)?);
    reqwest::Identity::from_pem(&pem).map_err(|e| rustls::Error::General(e.to_string()))
}

/// The crypto reqwest uses: the process default, else aws-lc-rs (reqwest's).
fn provider() -> Arc<CryptoProvider> {
    CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
}

/// Accepts a certificate with one of `exact`'s fingerprints as it is, else
/// one that `chain` (the CA file's roots, if any) verifies.
#[derive(Debug)]
struct Verifier {
    exact: Vec<Fingerprint>,
    chain: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl Verifier {
    fn pinned(pin: Fingerprint) -> Verifier {
        Verifier {
            exact: vec![pin],
            chain: None,
            provider: provider(),
        }
    }

    fn for_ca_file(ca: &CaFile) -> Result<Verifier, rustls::Error> {
        let provider = provider();
        let chain =
            WebPkiServerVerifier::builder_with_provider(Arc::new(ca.roots()?), provider.clone())
                .build()
                .map_err(|e| rustls::Error::General(e.to_string()))?;
        Ok(Verifier {
            exact: ca.certs.iter().map(|c| Fingerprint::of(c)).collect(),
            chain: Some(chain),
            provider,
        })
    }

    fn algorithms(&self) -> &WebPkiSupportedAlgorithms {
        &self.provider.signature_verification_algorithms
    }
}

/// A certificate that is not the pinned one.
#[derive(Debug, thiserror::Error)]
#[error("its fingerprint is {presented}, not the pinned {pinned}")]
struct NotPinned {
    presented: Fingerprint,
    pinned: Fingerprint,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let presented = Fingerprint::of(end_entity);
        if self.exact.contains(&presented) {
            return Ok(ServerCertVerified::assertion());
        }
        match &self.chain {
            Some(chain) => {
                chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            None => Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                rustls::OtherError(Arc::new(NotPinned {
                    presented,
                    pinned: self.exact[0],
                })),
            ))),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, self.algorithms())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, self.algorithms())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms().supported_schemes()
    }
}

/// Why the peer's certificate was refused, if that is what `error` (or a
/// cause under it) says: `UnknownIssuer`, `certificate expired: …`, `its
/// fingerprint is …, not the pinned …`. `None` for any other failure.
pub fn certificate_problem(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cause = Some(error);
    while let Some(e) = cause {
        match rustls_error(e) {
            Some(rustls::Error::InvalidCertificate(CertificateError::Other(other))) => {
                return Some(other.to_string())
            }
            Some(rustls::Error::InvalidCertificate(c)) => return Some(c.to_string()),
            Some(rustls::Error::NoCertificatesPresented) => {
                return Some("the peer sent no certificate".into())
            }
            Some(_) => return None,
            None => cause = e.source(),
        }
    }
    None
}

/// Why the peer refused our own certificate (mutual TLS), if that is what
/// `error` (or a cause under it) says: the TLS alert it sent, such as
/// `CertificateRequired` (none presented) or `UnknownCA`. `None` for any
/// other failure.
pub fn own_certificate_refused(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    use rustls::AlertDescription as A;
    let mut cause = Some(error);
    while let Some(e) = cause {
        match rustls_error(e) {
            Some(rustls::Error::AlertReceived(
                alert @ (A::CertificateRequired
                | A::BadCertificate
                | A::UnknownCA
                | A::CertificateUnknown
                | A::CertificateExpired
                | A::CertificateRevoked
                | A::UnsupportedCertificate
                | A::AccessDenied),
            )) => return Some(format!("{alert:?}")),
            Some(_) => return None,
            None => cause = e.source(),
        }
    }
    None
}

/// How many times [`send`] sends a request hyper never wrote.
const UNSENT_TRIES: usize = 3;

/// Sends `req`, and sends it again (up to [`UNSENT_TRIES`] in all) while
/// hyper wrote none of it because its fresh connection closed before it
/// was ready, and nothing beneath says why. A server refusing our client
/// certificate under TLS 1.3 does that: our handshake ends before its
/// alert arrives, and whether the request or the alert goes first is a
/// race; hyper sometimes keeps only "connection was not ready". Sent again,
/// the request meets the alert and the caller learns why
/// ([`own_certificate_refused`]). Nothing written is ever sent twice.
pub async fn send(mut req: reqwest::RequestBuilder) -> reqwest::Result<reqwest::Response> {
    for _ in 1..UNSENT_TRIES {
        let Some(again) = req.try_clone() else { break };
        match req.send().await {
            Err(e) if unsent_for_no_reason(&e) => req = again,
            answer => return answer,
        }
    }
    req.send().await
}

/// Whether `error` is hyper cancelling a request before writing any of
/// it, with no TLS error among its causes.
fn unsent_for_no_reason(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut canceled = false;
    let mut cause = Some(error);
    while let Some(e) = cause {
        if rustls_error(e).is_some() {
            return false;
        }
        canceled |= e
            .downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_canceled);
        cause = e.source();
    }
    canceled
}

/// `e` as rustls' error, or the one inside it when `e` is an io::Error
/// wrapping one (tokio-rustls hands it up so, and reqwest wraps that in
/// another io::Error; io::Error's `source` skips what it wraps).
fn rustls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(tls) = e.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    let inner = e.downcast_ref::<std::io::Error>()?.get_ref()?;
    rustls_error(inner)
}

/// A TLS server setup (HTTP/1.1) from a PEM certificate chain and its PEM
/// private key, on the same crypto provider as the clients; the files are
/// read and checked as [`server::ServerIdentity::load`] says (a key file
/// any user may read is refused).
pub fn server_config(
    cert: &Path,
    key: &Path,
) -> Result<rustls::ServerConfig, server::IdentityError> {
    server::ServerIdentity::load(cert, key)?.server_config()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse_with_or_without_prefix_colons_and_case() {
        let hex = "ab".repeat(32);
        let want = Fingerprint([0xab; 32]);
        let colons = vec!["AB"; 32].join(":");
        for text in [
            hex.clone(),
            hex.to_uppercase(),
            format!("sha256:{colons}"),
            format!("SHA256:{hex}"),
            colons.clone(),
            format!("sha256 Fingerprint={colons}"),
            format!("  {colons}\n"),
        ] {
            assert_eq!(Fingerprint::parse(&text), Some(want), "{text}");
        }
        assert_eq!(want.to_string(), format!("sha256:{colons}"));
        for bad in [
            "",
            "sha256:",
            &"ab".repeat(31),
            &"ab".repeat(33),
            &format!("{}zz", "ab".repeat(31)),
            &format!("sha1:{hex}"),
            &format!("{}é", "a".repeat(63)),
        ] {
            assert_eq!(Fingerprint::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_ca_file_must_be_pem_with_a_certificate() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("missing.pem");
        let e = CaFile::load(&missing).expect_err("missing");
        assert!(matches!(e, CaFileError::Read { .. }), "{e:?}");
        let empty = dir.path().join("key.pem");
        std::fs::write(
            &empty,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .expect("write");
        let e = CaFile::load(&empty).expect_err("no certificate");
        assert!(matches!(e, CaFileError::NoCertificate { .. }), "{e:?}");
        assert!(
            e.to_string().contains("key.pem holds no certificate"),
            "{e}"
        );
        let text = dir.path().join("text.pem");
        std::fs::write(&text, "not a certificate at all\n").expect("write");
        let e = CaFile::load(&text).expect_err("not PEM");
        assert!(matches!(e, CaFileError::NoCertificate { .. }), "{e:?}");
        let broken = dir.path().join("broken.pem");
        std::fs::write(
            &broken,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .expect("write");
        let e = CaFile::load(&broken).expect_err("not a certificate");
        assert!(matches!(e, CaFileError::Unusable { index: 1, .. }), "{e:?}");
    }
}
