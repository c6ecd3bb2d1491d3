//! The centre of a chain (`tallyd central`, issue 18): the site protocol
//! over HTTP in front of PostgreSQL, the chain's ledger of record. The
//! centre's SQL (PostgreSQL) lives here, in [`schema`] and [`store`]; the
//! pure rules in [`rules`]; the wire types in [`protocol`], which the
//! site's shipper shares.
//!
//! So far the centre ingests what sites ship (usages, hold resolutions,
//! refunds), exactly once by `(site, epoch, seq)` and by the site-qualified
//! usage key, and gives restored or cloned ledgers new epochs. It issues
//! no lots and places no escrow yet.

pub mod auth;
pub mod protocol;
pub mod rules;
pub mod schema;
pub mod server;
pub mod store;

use anyhow::{Context, Result};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

/// `central.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CentralToml {
    /// Where the site protocol is served, `host:port`.
    pub listen: SocketAddr,
    /// A libpq connection string (`host=… port=… user=… dbname=…`).
    pub postgres: String,
    /// The sites of the chain, each with the SHA-256 of its token.
    #[serde(default)]
    pub sites: Vec<auth::SiteEntry>,
}

impl CentralToml {
    pub fn load(path: &Path) -> Result<CentralToml> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        toml::from_str(&text)
            .with_context(|| format!("{} is not a valid central config", path.display()))
    }
}

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
    let db = server::Db::connect(&cfg.postgres)
        .await
        .context("cannot connect to PostgreSQL or migrate its schema")?;
    if sites.is_empty() {
        tracing::warn!("central.toml lists no [[sites]]: every request is refused");
    }
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.listen))?;
    tracing::info!(listen = %cfg.listen, sites = sites.len(), "central serving the site protocol");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let centre = Arc::new(server::Centre { db, sites });
    axum::serve(listener, server::router(centre))
        .with_graceful_shutdown(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        })
        .await
        .context("serving failed")?;
    tracing::info!("central stopped");
    Ok(())
}
