//! A site asking the centre for the chain's figures (`tallyd
//! balance|statement|report --central`, the console's chain page): one
//! authenticated GET, trusted as the shipper trusts the centre, with this
//! site's token and, when configured, its client certificate.

use crate::config::{CentralConfig, GrantsAuth};
use anyhow::{bail, Result};
use std::time::Duration;

/// One authenticated GET of `path` with `query`; its JSON answer. Gives
/// up after `timeout`.
pub async fn get_json<T: serde::de::DeserializeOwned>(
    cfg: &CentralConfig,
    path: &str,
    query: &[(&str, &str)],
    timeout: Duration,
) -> Result<T> {
    let builder = reqwest::Client::builder().timeout(timeout);
    let http =
        crate::tls::client_builder_as(&cfg.trust, cfg.identity.as_ref(), builder)?.build()?;
    let url = reqwest::Url::parse_with_params(&format!("{}{path}", cfg.url), query)?;
    let req = http.get(url);
    let req = match &cfg.token {
        GrantsAuth::Bearer(token) => req.bearer_auth(token),
        GrantsAuth::Basic { user, password } => req.basic_auth(user, Some(password)),
    };
    let resp = match req.send().await {
        Ok(resp) => resp,
        Err(e) => match crate::tls::own_certificate_refused(&e) {
            Some(alert) => bail!(
                "refused this site's client certificate: {alert} \
                 (check [central] cert_file and key_file)"
            ),
            None => return Err(e.into()),
        },
    };
    let status = resp.status();
    if status == reqwest::StatusCode::UNAUTHORIZED {
        bail!("refused this site's token (401)");
    }
    let body = resp.bytes().await?;
    if !status.is_success() {
        bail!(
            "answered {status}: {}",
            crate::logging::escape_controls(&String::from_utf8_lossy(&body))
        );
    }
    Ok(serde_json::from_slice(&body)?)
}
