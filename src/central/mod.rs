//! The centre of a chain (`tallyd central`, issue 18): the site protocol
//! over HTTP in front of PostgreSQL, the chain's ledger of record. The
//! centre's SQL (PostgreSQL) lives here, in [`schema`] and [`store`]; the
//! pure rules in [`rules`]; the wire types in [`protocol`], which the
//! site's shipper shares.
//!
//! Each site proves who it is with its token ([`auth`]); with `cert_file`
//! and `key_file` the protocol is served over HTTPS.
//!
//! So far the centre ingests what sites ship (usages, hold resolutions,
//! refunds), exactly once by `(site, epoch, seq)` and by the site-qualified
//! usage key, and gives restored or cloned ledgers new epochs. It issues
//! no lots and places no escrow yet.

pub mod auth;
pub mod balance;
pub mod check;
pub mod issue;
mod issuer;
pub mod pg;
pub mod protocol;
pub mod report;
pub mod rules;
pub mod schema;
pub mod server;
pub mod spend;
pub mod statement;
pub mod store;

use anyhow::{Context, Result};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// `central.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CentralToml {
    /// Where the site protocol is served, `host:port`.
    pub listen: SocketAddr,
    /// A libpq connection string (`host=… port=… user=… dbname=…`).
    pub postgres: String,
    /// The certificate chain and key to serve HTTPS with (PEM, relative to
    /// central.toml's folder); both or neither (then plain HTTP).
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// The sites of the chain, each with the SHA-256 of its token.
    #[serde(default)]
    pub sites: Vec<auth::SiteEntry>,
    /// The chain's grants file (relative to central.toml's folder): the
    /// centre issues the plan, product and account-grant lots in it once
    /// for the whole chain. Without it the centre issues nothing.
    #[serde(default)]
    pub grants: Option<PathBuf>,
    /// The time zone plan periods are anchored in when the grants file
    /// names none.
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// How often the grants file is read again and lots past their date
    /// expire (`"5m"`, `"1h"`).
    #[serde(default = "default_sync_every")]
    pub sync_every: String,
    /// At most this many connections to PostgreSQL: the batches of that
    /// many sites apply at once (one site's batches always one at a time).
    #[serde(default = "default_connections")]
    pub connections: usize,
}

fn default_connections() -> usize {
    8
}

fn default_timezone() -> String {
    "UTC".into()
}

fn default_sync_every() -> String {
    "5m".into()
}

impl CentralToml {
    pub fn load(path: &Path) -> Result<CentralToml> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let mut cfg: CentralToml = toml::from_str(&text)
            .with_context(|| format!("{} is not a valid central config", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        cfg.cert_file = cfg.cert_file.map(|f| base.join(f));
        cfg.key_file = cfg.key_file.map(|f| base.join(f));
        cfg.grants = cfg.grants.map(|f| base.join(f));
        Ok(cfg)
    }

    /// The TLS setup, when `cert_file` and `key_file` are set.
    fn tls(&self) -> Result<Option<rustls::ServerConfig>> {
        match (&self.cert_file, &self.key_file) {
            (None, None) => Ok(None),
            (Some(cert), Some(key)) => Ok(Some(crate::tls::server_config(cert, key)?)),
            _ => anyhow::bail!("central.toml: set cert_file and key_file, or neither"),
        }
    }
}

/// `tallyd central --config central.toml check`: prints one verdict per
/// check; false when any failed.
pub fn check(config: &Path, out: &mut dyn std::io::Write) -> Result<bool> {
    let cfg = CentralToml::load(config)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let verdicts = rt.block_on(async {
        let (client, connection) = tokio_postgres::connect(&cfg.postgres, tokio_postgres::NoTls)
            .await
            .context("cannot connect to PostgreSQL")?;
        tokio::spawn(connection);
        Ok::<_, anyhow::Error>(check::checks(&client).await?)
    })?;
    let mut ok = true;
    for (name, passed, detail) in verdicts {
        ok &= passed;
        let mark = if passed { "ok  " } else { "FAIL" };
        writeln!(
            out,
            "{mark} {name}: {}",
            crate::logging::escape_controls(&detail)
        )?;
    }
    Ok(ok)
}

/// How long open requests may finish after SIGTERM.
const GRACE: Duration = Duration::from_secs(10);

/// `tallyd central --config central.toml`: serves until SIGTERM or SIGINT.
pub fn run(config: &Path) -> Result<()> {
    let cfg = CentralToml::load(config)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(serve(cfg))
}

async fn serve(cfg: CentralToml) -> Result<()> {
    let sites = auth::Sites::new(&cfg.sites)
        .map_err(anyhow::Error::msg)
        .context("central.toml: [[sites]]")?;
    let tls = cfg.tls()?;
    anyhow::ensure!(
        (1..=100).contains(&cfg.connections),
        "central.toml: connections = {} is not between 1 and 100",
        cfg.connections
    );
    let db = server::Db::connect(&cfg.postgres, cfg.connections)
        .await
        .context("cannot connect to PostgreSQL or migrate its schema")?;
    if sites.is_empty() {
        tracing::warn!("central.toml lists no [[sites]]: every request is refused");
    }
    if let Some(grants) = &cfg.grants {
        let tz: chrono_tz::Tz = cfg.timezone.parse().map_err(|_| {
            anyhow::anyhow!(
                "central.toml: timezone {:?} is not a time zone",
                cfg.timezone
            )
        })?;
        let every = crate::config::parse_duration(&cfg.sync_every)
            .filter(|d| *d >= Duration::from_secs(1))
            .with_context(|| {
                format!(
                    "central.toml: sync_every {:?} is not a duration of 1s or more",
                    cfg.sync_every
                )
            })?;
        tokio::spawn(issuer::run(db.pool(), grants.clone(), tz, every));
    }
    let listener = std::net::TcpListener::bind(cfg.listen)
        .with_context(|| format!("cannot listen on {}", cfg.listen))?;
    listener.set_nonblocking(true)?;
    let handle = axum_server::Handle::new();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let stopping = handle.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        stopping.graceful_shutdown(Some(GRACE));
    });
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(listen = %cfg.listen, scheme, sites = sites.len(),
        "central serving the site protocol");
    let app = server::router(Arc::new(server::Centre {
        db,
        sites,
        refusals: server::Refusals::default(),
    }))
    .into_make_service();
    let served = match tls {
        Some(config) => {
            let config = axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(config));
            axum_server::from_tcp_rustls(listener, config)?
                .handle(handle)
                .serve(app)
                .await
        }
        None => {
            axum_server::from_tcp(listener)?
                .handle(handle)
                .serve(app)
                .await
        }
    };
    served.context("serving failed")?;
    tracing::info!("central stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shipped example (`/etc/tallyd/central.toml` in the package)
    /// loads, with its site and settings.
    #[test]
    fn the_shipped_central_toml_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/central.toml");
        let cfg = CentralToml::load(&path).expect("config/central.toml loads");
        assert_eq!(cfg.connections, 8);
        assert_eq!(cfg.listen.port(), 8470);
        assert!(cfg.grants.is_none() && cfg.cert_file.is_none());
        assert_eq!(auth::Sites::new(&cfg.sites).expect("sites").len(), 1);
    }
}
