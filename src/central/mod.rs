//! The centre of a chain (`tallyd central`, issue 18): the site protocol
//! over HTTP in front of PostgreSQL, the chain's ledger of record. The
//! centre's SQL (PostgreSQL) lives here, in [`schema`] and [`store`]; the
//! pure rules in [`rules`]; the wire types in [`protocol`], which the
//! site's shipper shares.
//!
//! Each site proves who it is with its token ([`auth`]); with `cert_file`
//! and `key_file` the protocol is served over HTTPS, and with
//! `client_ca_file` each site must also present a certificate naming it.
//!
//! The centre ingests what sites ship (usages, hold resolutions, refunds),
//! exactly once by `(site, epoch, seq)` and by the site-qualified usage
//! key, gives restored or cloned ledgers new epochs, issues the chain's
//! lots from its grants file ([`issue`]) and draws each usage from them
//! ([`spend`]), and places [`escrow`] slices with sites, which spend them
//! offline as local lots.

pub mod auth;
pub mod balance;
pub mod check;
pub mod client;
pub mod escrow;
mod escrow_spend;
pub mod feed;
pub mod issue;
mod issuer;
pub mod metrics;
pub mod pg;
pub mod protocol;
pub mod report;
pub mod rules;
pub mod schema;
pub mod server;
pub mod site_grants;
pub mod spend;
pub mod statement;
pub mod store;
pub mod watch;

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
    /// A file holding the PostgreSQL password (relative to central.toml's
    /// folder; one line), so that none sits in the connection string.
    #[serde(default)]
    pub postgres_password_file: Option<PathBuf>,
    /// The certificate chain and key to serve HTTPS with (PEM, relative to
    /// central.toml's folder); both or neither (then plain HTTP).
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// Mutual TLS (with `cert_file`): every site must present a certificate
    /// this CA file's roots verify, naming its site id as a DNS subject
    /// alternative name, besides its token.
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
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
    /// Where to serve `/metrics` and `/healthz` (plain HTTP, `host:port`);
    /// off when unset.
    #[serde(default)]
    pub metrics_listen: Option<SocketAddr>,
    /// At most this percentage of a member's unescrowed credit one escrow
    /// top-up places with a site (a release waiting at a tap gets what it
    /// needs, if it exists): the rest stays spendable at other sites while
    /// that one is dark (multi-site.md 3.5).
    #[serde(default = "default_escrow_share")]
    pub escrow_share: u8,
}

fn default_escrow_share() -> u8 {
    50
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
        cfg.client_ca_file = cfg.client_ca_file.map(|f| base.join(f));
        cfg.grants = cfg.grants.map(|f| base.join(f));
        cfg.postgres_password_file = cfg.postgres_password_file.map(|f| base.join(f));
        Ok(cfg)
    }

    /// The connection to PostgreSQL: `postgres`, with the password from
    /// `postgres_password_file` when set (read now: a missing, empty or
    /// huge file is an error naming it).
    pub fn pg_config(&self) -> Result<tokio_postgres::Config> {
        let mut config: tokio_postgres::Config = self
            .postgres
            .parse()
            .context("central.toml: postgres is not a valid connection string")?;
        if let Some(path) = &self.postgres_password_file {
            config.password(read_password(path)?);
        }
        Ok(config)
    }

    /// The TLS setup, when `cert_file` and `key_file` are set, asking
    /// sites for certificates when `client_ca_file` is.
    fn tls(&self) -> Result<Option<rustls::ServerConfig>> {
        let clients = match &self.client_ca_file {
            None => None,
            Some(path) => {
                Some(crate::tls::CaFile::load(path).context("central.toml: client_ca_file")?)
            }
        };
        match (&self.cert_file, &self.key_file) {
            (None, None) if clients.is_some() => {
                anyhow::bail!("central.toml: client_ca_file needs cert_file and key_file (HTTPS)")
            }
            (None, None) => Ok(None),
            (Some(cert), Some(key)) => {
                let identity = crate::tls::ServerIdentity::load(cert, key)?;
                Ok(Some(identity.server_config_for(clients.as_ref())?))
            }
            _ => anyhow::bail!("central.toml: set cert_file and key_file, or neither"),
        }
    }

    /// Every site id a certificate can name, when sites must present one.
    fn check_site_ids(&self) -> Result<()> {
        if self.client_ca_file.is_none() {
            return Ok(());
        }
        match self.sites.iter().find(|s| !auth::nameable(&s.id)) {
            Some(s) => anyhow::bail!(
                "central.toml: site `{}`: with client_ca_file a site id must be a DNS name \
                 (its certificate names it): letters, digits, `-`, `_`, not all digits",
                s.id
            ),
            None => Ok(()),
        }
    }
}

/// What the centre knows of each site (`tallyd central sites`): every
/// site central.toml lists and any other its tables name, and the
/// conflicts recorded.
pub fn sites(config: &Path) -> Result<(Vec<watch::SiteView>, i64)> {
    let cfg = CentralToml::load(config)?;
    let (rt, client) = connect_once(&cfg)?;
    let ids: Vec<String> = cfg.sites.iter().map(|s| s.id.clone()).collect();
    Ok(rt.block_on(watch::sites(&client, &ids))?)
}

/// One connection to PostgreSQL for a command (`check`, `sites`), with the
/// runtime that drives it: run the queries with `block_on` on it.
fn connect_once(cfg: &CentralToml) -> Result<(tokio::runtime::Runtime, tokio_postgres::Client)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let (client, connection) = rt
        .block_on(cfg.pg_config()?.connect(tokio_postgres::NoTls))
        .context("cannot connect to PostgreSQL")?;
    rt.spawn(connection);
    Ok((rt, client))
}

/// The one line of a password file, without its line end.
fn read_password(path: &Path) -> Result<String> {
    let what = || format!("central.toml: postgres_password_file {}", path.display());
    let len = std::fs::metadata(path).with_context(what)?.len();
    anyhow::ensure!(len <= 4096, "{}: over 4 KiB, not a password", what());
    let text = std::fs::read_to_string(path).with_context(what)?;
    let password = text.trim_end_matches(['\n', '\r']);
    anyhow::ensure!(!password.is_empty(), "{}: empty", what());
    Ok(password.to_string())
}

/// `tallyd central --config central.toml check`: prints one verdict per
/// check; false when any failed.
pub fn check(config: &Path, out: &mut dyn std::io::Write) -> Result<bool> {
    let cfg = CentralToml::load(config)?;
    let (rt, client) = connect_once(&cfg)?;
    let verdicts = rt.block_on(check::checks(&client))?;
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

/// `tallyd central --config central.toml`: serves until SIGTERM or SIGINT,
/// going by `clock` (the system's but in tests).
pub fn run(config: &Path, clock: crate::clock::Clock) -> Result<()> {
    let cfg = CentralToml::load(config)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(serve(cfg, clock))
}

async fn serve(cfg: CentralToml, clock: crate::clock::Clock) -> Result<()> {
    let sites = auth::Sites::new(&cfg.sites)
        .map_err(anyhow::Error::msg)
        .context("central.toml: [[sites]]")?;
    let tls = cfg.tls()?;
    cfg.check_site_ids()?;
    anyhow::ensure!(
        (1..=100).contains(&cfg.connections),
        "central.toml: connections = {} is not between 1 and 100",
        cfg.connections
    );
    let db = server::Db::connect(cfg.pg_config()?, cfg.connections)
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
        tokio::spawn(issuer::run(
            db.pool(),
            grants.clone(),
            tz,
            every,
            clock.clone(),
        ));
    }
    if let Some(addr) = cfg.metrics_listen {
        serve_metrics(addr, db.pool(), &cfg.sites).await?;
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
    let site_certificates = cfg.client_ca_file.is_some();
    tracing::info!(listen = %cfg.listen, scheme, sites = sites.len(), site_certificates,
        "central serving the site protocol");
    let app = server::router(Arc::new(server::Centre {
        db,
        sites,
        site_certificates,
        refusals: server::Refusals::default(),
        escrow_share: i64::from(cfg.escrow_share.min(100)),
        clock,
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

/// Serves `/metrics` and `/healthz` on `addr` until the process ends.
async fn serve_metrics(
    addr: SocketAddr,
    pool: deadpool_postgres::Pool,
    sites: &[auth::SiteEntry],
) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on metrics_listen {addr}"))?;
    let watched = metrics::Watched {
        pool,
        sites: sites.iter().map(|s| s.id.clone()).collect(),
    };
    let app = metrics::router(Arc::new(watched));
    tracing::info!(listen = %addr, "central serving /metrics and /healthz");
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "central metrics listener stopped");
        }
    });
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

    /// The password comes from its file, without the line end; a
    /// missing, empty or huge file is an error naming the file.
    #[test]
    fn the_postgres_password_is_read_from_its_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("central.toml");
        let text = "listen = \"127.0.0.1:8470\"\npostgres = \"host=db.example user=tally\"\n\
                    postgres_password_file = \"pg-password\"\n";
        std::fs::write(&path, text).expect("write");
        let cfg = CentralToml::load(&path).expect("parses");
        let pw = dir.path().join("pg-password");
        let err = |cfg: &CentralToml| format!("{:#}", cfg.pg_config().expect_err("refused"));
        assert!(err(&cfg).contains("pg-password"), "missing: {}", err(&cfg));
        std::fs::write(&pw, "\n").expect("write");
        assert!(err(&cfg).contains("empty"), "{}", err(&cfg));
        std::fs::write(&pw, "x".repeat(5000)).expect("write");
        assert!(err(&cfg).contains("over 4 KiB"), "{}", err(&cfg));
        std::fs::write(&pw, "s3cret pg\r\n").expect("write");
        let pg = cfg.pg_config().expect("a password");
        assert_eq!(pg.get_password(), Some(&b"s3cret pg"[..]));
        assert_eq!(pg.get_user(), Some("tally"));
        assert!(!format!("{:?}", cfg).contains("s3cret"));
    }

    #[test]
    fn site_certificates_need_https_and_site_ids_a_certificate_can_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("central.toml");
        let load = |more: &str| {
            let text = format!(
                "listen = \"127.0.0.1:8470\"\npostgres = \"host=/nowhere\"\n{more}\
                 [[sites]]\nid = \"42\"\ntoken_sha256 = \"{}\"\n",
                "ab".repeat(32)
            );
            std::fs::write(&path, text).expect("write");
            CentralToml::load(&path).expect("parses")
        };
        let e = load("client_ca_file = \"ca.pem\"\n")
            .tls()
            .expect_err("no HTTPS");
        assert!(e.to_string().contains("client_ca_file"), "{e}");
        let e = load("client_ca_file = \"ca.pem\"\n")
            .check_site_ids()
            .expect_err("digits");
        assert!(e.to_string().contains("site `42`"), "{e}");
        load("").check_site_ids().expect("tokens alone take any id");
        assert!(auth::nameable("ber-3") && auth::nameable("ham_1.west"));
        assert!(!auth::nameable("42") && !auth::nameable("10.0.0.1"));
    }
}
