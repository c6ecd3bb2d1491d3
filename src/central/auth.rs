//! Which site a request comes from: each site sends its secret token as
//! `Authorization: Bearer <token>`, and `central.toml` lists each site with
//! the SHA-256 of its token (`[[sites]] id, token_sha256`). The centre
//! holds no site's secret, so its config (or a backup of it) cannot ship as
//! a site; a token is random, so a fast hash is enough.

use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use subtle::ConstantTimeEq;

/// A site of `central.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteEntry {
    pub id: String,
    /// The SHA-256 of the site's token, 64 hex digits
    /// (`tr -d '\n' < token | sha256sum`).
    pub token_sha256: String,
}

/// The sites the centre accepts, by id, with their token digests.
#[derive(Debug, Clone, Default)]
pub struct Sites(BTreeMap<String, [u8; 32]>);

/// Why a request was refused; never says more than this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No `Authorization: Bearer` header.
    NoToken,
    /// A site `central.toml` does not list.
    UnknownSite,
    /// The token is not the site's.
    WrongToken,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::NoToken => "no token",
            Refusal::UnknownSite => "unknown site",
            Refusal::WrongToken => "wrong token",
        }
    }
}

impl Sites {
    /// From `central.toml`'s list: each digest 64 hex digits, each id once.
    pub fn new(entries: &[SiteEntry]) -> Result<Sites, String> {
        let mut sites = BTreeMap::new();
        for e in entries {
            let digest = parse_digest(&e.token_sha256).ok_or_else(|| {
                format!(
                    "site `{}`: token_sha256 is not a SHA-256 (64 hex digits)",
                    e.id
                )
            })?;
            if sites.insert(e.id.clone(), digest).is_some() {
                return Err(format!("site `{}` is listed twice", e.id));
            }
        }
        Ok(Sites(sites))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The site ids, in order.
    pub fn ids(&self) -> Vec<String> {
        self.0.keys().cloned().collect()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `authorization` (the header's value, if any) carries the
    /// token of `site_id`.
    pub fn check(&self, site_id: &str, authorization: Option<&[u8]>) -> Result<(), Refusal> {
        let token = authorization
            .and_then(|h| h.strip_prefix(b"Bearer "))
            .map(|t| t.trim_ascii())
            .filter(|t| !t.is_empty())
            .ok_or(Refusal::NoToken)?;
        let want = self.0.get(site_id).ok_or(Refusal::UnknownSite)?;
        let got: [u8; 32] = Sha256::digest(token).into();
        if bool::from(got.ct_eq(want)) {
            Ok(())
        } else {
            Err(Refusal::WrongToken)
        }
    }
}

/// Whether a site id can be named by a certificate: a DNS name (letters,
/// digits, `-`, `_`, dots between labels, not all digits).
pub fn nameable(site_id: &str) -> bool {
    rustls::pki_types::DnsName::try_from(site_id).is_ok()
}

/// Whether `leaf`, the client certificate the TLS handshake verified
/// against the centre's `client_ca_file`, names `site_id` (as a DNS
/// subject alternative name): a site's certificate speaks for it alone.
pub fn certificate_names(leaf: &[u8], site_id: &str) -> bool {
    let Ok(name) = rustls::pki_types::ServerName::try_from(site_id) else {
        return false;
    };
    let der = rustls::pki_types::CertificateDer::from(leaf);
    webpki::EndEntityCert::try_from(&der)
        .is_ok_and(|cert| cert.verify_is_valid_for_subject_name(&name).is_ok())
}

fn parse_digest(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sites() -> Sites {
        let digest = format!("{:x}", Sha256::digest(b"s3cret"));
        Sites::new(&[SiteEntry {
            id: "ber-1".into(),
            token_sha256: digest,
        }])
        .expect("sites")
    }

    #[test]
    fn only_the_sites_own_token_is_accepted() {
        let s = sites();
        assert_eq!(s.check("ber-1", Some(b"Bearer s3cret")), Ok(()));
        assert_eq!(s.check("ber-1", None), Err(Refusal::NoToken));
        assert_eq!(
            s.check("ber-1", Some(b"Basic s3cret")),
            Err(Refusal::NoToken)
        );
        assert_eq!(s.check("ber-1", Some(b"Bearer ")), Err(Refusal::NoToken));
        assert_eq!(
            s.check("ber-1", Some(b"Bearer s3cre")),
            Err(Refusal::WrongToken)
        );
        assert_eq!(
            s.check("ham-1", Some(b"Bearer s3cret")),
            Err(Refusal::UnknownSite)
        );
    }

    #[test]
    fn a_digest_that_is_not_sha256_or_a_site_listed_twice_is_refused() {
        let entry = |id: &str, d: &str| SiteEntry {
            id: id.into(),
            token_sha256: d.into(),
        };
        assert!(Sites::new(&[entry("a", "abc")]).is_err());
        assert!(Sites::new(&[entry("a", &"zz".repeat(32))]).is_err());
        let d = "ab".repeat(32);
        assert!(Sites::new(&[entry("a", &d), entry("a", &d)]).is_err());
        assert_eq!(Sites::new(&[entry("a", &d)]).expect("ok").len(), 1);
    }
}
