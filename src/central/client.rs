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
    let http = client(cfg, timeout)?;
    let url = reqwest::Url::parse_with_params(&format!("{}{path}", cfg.url), query)?;
    answer(cfg, http.get(url)).await
}

/// One authenticated POST of `body` as JSON to `path`; its JSON answer.
/// Gives up after `timeout`.
pub async fn post_json<B: serde::Serialize, T: serde::de::DeserializeOwned>(
    cfg: &CentralConfig,
    path: &str,
    body: &B,
    timeout: Duration,
) -> Result<T> {
    let http = client(cfg, timeout)?;
    let req = http
        .post(format!("{}{path}", cfg.url))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(serde_json::to_vec(body)?);
    answer(cfg, req).await
}

fn client(cfg: &CentralConfig, timeout: Duration) -> Result<reqwest::Client> {
    let builder = reqwest::Client::builder().timeout(timeout);
    Ok(crate::tls::client_builder_as(&cfg.trust, cfg.identity.as_ref(), builder)?.build()?)
}

/// Sends `req` with this site's token; its JSON answer, or why not.
async fn answer<T: serde::de::DeserializeOwned>(
    cfg: &CentralConfig,
    req: reqwest::RequestBuilder,
) -> Result<T> {
    let req = match &cfg.token {
        GrantsAuth::Bearer(token) => req.bearer_auth(token),
        GrantsAuth::Basic { user, password } => req.basic_auth(user, Some(password)),
    };
    let resp = match crate::tls::send(req).await {
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
            crate::logging::escape_controls(String::from_utf8_lossy(&body).trim_end())
        );
    }
    Ok(serde_json::from_slice(&body)?)
}
