//! The centre's HTTP side: axum routes for the site protocol over a pool
//! of PostgreSQL connections (a lost one is replaced). Every request must
//! carry the token of the site it claims to be ([`auth`](super::auth)).

use super::auth::Sites;
use super::protocol::{
    BalanceQuery, Batch, BatchReply, ChainBalance, ChainReportRow, ChainSite, ChainStatement,
    EscrowAsk, EscrowGrant, EscrowReturn, Feed, FeedQuery, GrantsImport, GrantsImported, Hello,
    LostEntry, LostQuery, ReportQuery, SiteStatus, SitesQuery, StatementQuery, Welcome,
};
use super::store;
use axum::extract::{Query, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use axum_server::tls::TlsInfo;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use std::sync::Arc;
use tokio_postgres::NoTls;

/// The pool of PostgreSQL connections: each hello or batch is one
/// transaction on one of them.
pub struct Db {
    pool: Pool,
}

type Failure = (StatusCode, String);

impl Db {
    /// Connects and brings the schema up to date; at most `connections`
    /// are open at once.
    pub async fn connect(config: tokio_postgres::Config, connections: usize) -> anyhow::Result<Db> {
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                // A connection PostgreSQL closed is seen and replaced.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager).max_size(connections).build()?;
        let db = Db { pool };
        let mut client = db.pool.get().await?;
        super::schema::migrate(&mut client).await?;
        Ok(db)
    }

    /// The pool, for the centre's own workers (the grants sync).
    pub fn pool(&self) -> Pool {
        self.pool.clone()
    }

    /// A connection from the pool, opened if none is idle.
    async fn client(&self) -> Result<Object, Failure> {
        self.pool.get().await.map_err(|e| {
            let chain = crate::error_chain(&e);
            tracing::warn!(error = %chain, "no PostgreSQL connection");
            (StatusCode::SERVICE_UNAVAILABLE, chain)
        })
    }
}

fn unavailable(e: tokio_postgres::Error) -> Failure {
    let chain = crate::error_chain(&e);
    tracing::warn!(error = %chain, "request failed on PostgreSQL");
    (StatusCode::SERVICE_UNAVAILABLE, chain)
}

/// What every request is served with: the sites and their tokens, and
/// PostgreSQL.
pub struct Centre {
    pub db: Db,
    pub sites: Sites,
    /// Whether each request must come over a TLS connection whose client
    /// certificate names the site it claims (`client_ca_file`).
    pub site_certificates: bool,
    /// When each (claimed site, reason) refusal was last logged.
    pub refusals: Refusals,
    /// `escrow_share`: the percentage of unescrowed credit a top-up places.
    pub escrow_share: i64,
    /// The centre's clock: what expires, and when slices close.
    pub clock: crate::clock::Clock,
}

/// Refused requests, logged once a minute per claimed site and reason (a
/// misconfigured site retrying with backoff, or someone guessing, does
/// not flood the log): the line after a quiet minute counts those between.
#[derive(Default)]
pub struct Refusals(
    std::sync::Mutex<std::collections::HashMap<RefusalKey, (std::time::Instant, u64)>>,
);

/// A claimed site id and why it was refused.
type RefusalKey = (String, &'static str);

/// Claimed site ids are the sender's: at most this many are remembered.
const REFUSALS_KEPT: usize = 1024;

impl Refusals {
    /// Whether to log this refusal now, and how many went unlogged before.
    fn due(&self, site: &str, why: &'static str) -> Option<u64> {
        let mut seen = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= REFUSALS_KEPT {
            seen.clear();
        }
        let now = std::time::Instant::now();
        let entry = seen.entry((site.to_string(), why)).or_insert((now, 0));
        if entry.1 == 0 || now.duration_since(entry.0) >= std::time::Duration::from_secs(60) {
            let quiet = entry.1.saturating_sub(1);
            *entry = (now, 1);
            Some(quiet)
        } else {
            entry.1 += 1;
            None
        }
    }
}

/// A request refused before anything was read or applied.
enum Refused {
    /// No valid token for the site it claims: 401.
    Unauthenticated,
    /// Its TLS client certificate does not name the site it claims: 403.
    NotThisSite,
    Failed(Failure),
}

impl From<Failure> for Refused {
    fn from(f: Failure) -> Refused {
        Refused::Failed(f)
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Refused::Unauthenticated => (
                StatusCode::UNAUTHORIZED,
                [(WWW_AUTHENTICATE, "Bearer")],
                "no valid token for this site\n",
            )
                .into_response(),
            Refused::NotThisSite => (
                StatusCode::FORBIDDEN,
                "this connection's client certificate does not name the site it claims\n",
            )
                .into_response(),
            Refused::Failed(f) => f.into_response(),
        }
    }
}

/// The TLS connection a request came on, if any (axum-server adds it).
type Tls = Option<Extension<Arc<TlsInfo>>>;

/// Refuses a request without the token of `site_id`, or, when sites must
/// present certificates, one on a connection whose certificate does not
/// name `site_id`; with one WARN line that shows neither the token nor
/// anything unquoted the sender chose.
fn authenticate(
    centre: &Centre,
    site_id: &str,
    headers: &HeaderMap,
    tls: &Tls,
) -> Result<(), Refused> {
    let header = headers.get(AUTHORIZATION).map(|v| v.as_bytes());
    centre.sites.check(site_id, header).map_err(|why| {
        if let Some(unlogged) = centre.refusals.due(site_id, why.as_str()) {
            tracing::warn!(site = ?site_id, why = why.as_str(), unlogged,
                "central refused a request: no valid token for the site it claims");
        }
        Refused::Unauthenticated
    })?;
    if !centre.site_certificates {
        return Ok(());
    }
    let leaf = tls.as_ref().and_then(|t| t.peer_certificates.first());
    if leaf.is_some_and(|der| super::auth::certificate_names(der, site_id)) {
        return Ok(());
    }
    let why = "certificate names another site";
    if let Some(unlogged) = centre.refusals.due(site_id, why) {
        tracing::warn!(site = ?site_id, why, unlogged,
            "central refused a request: its client certificate does not name the site it claims");
    }
    Err(Refused::NotThisSite)
}

async fn hello(
    State(centre): State<Arc<Centre>>,
    headers: HeaderMap,
    tls: Tls,
    Json(h): Json<Hello>,
) -> Result<Json<Welcome>, Refused> {
    authenticate(&centre, &h.site_id, &headers, &tls)?;
    let mut client = centre.db.client().await?;
    Ok(Json(
        store::hello(&mut client, &h, centre.clock.wall())
            .await
            .map_err(unavailable)?,
    ))
}

async fn journal(
    State(centre): State<Arc<Centre>>,
    headers: HeaderMap,
    tls: Tls,
    Json(b): Json<Batch>,
) -> Result<(StatusCode, Json<BatchReply>), Refused> {
    authenticate(&centre, &b.site_id, &headers, &tls)?;
    let mut client = centre.db.client().await?;
    let reply = store::ingest(&mut client, &b, centre.clock.wall())
        .await
        .map_err(unavailable)?;
    let status = match reply {
        BatchReply::Applied { .. } => StatusCode::OK,
        _ => StatusCode::CONFLICT,
    };
    Ok((status, Json(reply)))
}

/// Where a site's outbox stands, as it says (for the centre's metrics):
/// kept, unless a newer word from the site is already.
async fn status(
    State(centre): State<Arc<Centre>>,
    headers: HeaderMap,
    tls: Tls,
    Json(s): Json<SiteStatus>,
) -> Result<StatusCode, Refused> {
    authenticate(&centre, &s.site_id, &headers, &tls)?;
    let client = centre.db.client().await?;
    super::watch::record(&client, &s)
        .await
        .map_err(unavailable)?;
    Ok(StatusCode::NO_CONTENT)
}

/// What the centre knows of every site, for a site's manager (the
/// console's chain page): read-only.
async fn sites(
    State(centre): State<Arc<Centre>>,
    headers: HeaderMap,
    tls: Tls,
    Query(q): Query<SitesQuery>,
) -> Result<Json<Vec<ChainSite>>, Refused> {
    authenticate(&centre, &q.site_id, &headers, &tls)?;
    let client = centre.db.client().await?;
    let (sites, _) = super::watch::sites(&client, &centre.sites.ids())
        .await
        .map_err(unavailable)?;
    Ok(Json(sites.iter().map(|s| s.to_wire()).collect()))
}

/// The entries the centre holds from a site after a point of its journal:
/// what a ledger restored from a backup lost, to import (multi-site.md
/// 3.8). Only the asking site's own entries.
async fn lost(
    State(centre): State<Arc<Centre>>,
    headers: HeaderMap,
    tls: Tls,
    Json(q): Json<LostQuery>,
) -> Result<Json<Vec<LostEntry>>, Refused> {
    authenticate(&centre, &q.site_id, &headers, &tls)?;
    let client = centre.db.client().await?;
    Ok(Json(store::lost(&client, &q).await.map_err(unavailable)?))
}

/// The chain's monthly report, for a site's manager (`tallyd report
/// --central`): read-only, one query.
async fn report(
    State(centre): State<Arc<Centre>>,
    headers: HeaderMap,
    tls: Tls,
    Query(q): Query<ReportQuery>,
) -> Result<Json<Vec<ChainReportRow>>, Refused> {
    authenticate(&centre, &q.site_id, &headers, &tls)?;
    let client = centre.db.client().await?;
    let rows = super::report::report(&client, &q)
        .await
        .map_err(unavailable)?;
    Ok(Json(rows))
}

/// The chain's balances, for a site's manager (`tallyd balance --central`):
/// read-only.
async fn balance(
    State(centre): State<Arc<Centre>>,
    headers: HeaderMap,
    tls: Tls,
    Query(q): Query<BalanceQuery>,
) -> Result<Json<Vec<ChainBalance>>, Refused> {
    authenticate(&centre, &q.site_id, &headers, &tls)?;
    let client = centre.db.client().await?;
    let now = centre.clock.wall();
    let rows = super::balance::balances(&client, &q, now)
        .await
        .map_err(unavailable)?;
    Ok(Json(rows))
}

/// A member's statement across the chain (`tallyd statement --central`):
/// read-only; 404 for a member the centre does not know.
async fn statement(
    State(centre): State<Arc<Centre>>,
    headers: HeaderMap,
    tls: Tls,
    Query(q): Query<StatementQuery>,
) -> Result<Json<ChainStatement>, Refused> {
    authenticate(&centre, &q.site_id, &headers, &tls)?;
    let client = centre.db.client().await?;
    match super::statement::statement(&client, &q)
        .await
        .map_err(unavailable)?
    {
        Some(st) => Ok(Json(st)),
        None => Err(Refused::Failed((
            StatusCode::NOT_FOUND,
            "the centre knows no such member\n".into(),
        ))),
    }
}

/// A joining site's manual grants made chain lots (`tallyd central
/// import`): 400 for a grant no ledger could hold, 409 naming members the
/// chain does not know (nothing imported then).
async fn import_grants(
    State(centre): State<Arc<Centre>>,
    headers: HeaderMap,
    tls: Tls,
    Json(imp): Json<GrantsImport>,
) -> Result<Json<GrantsImported>, Refused> {
    authenticate(&centre, &imp.site_id, &headers, &tls)?;
    if let Some(why) = imp.grants.iter().find_map(super::site_grants::invalid) {
        return Err(Refused::Failed((
            StatusCode::BAD_REQUEST,
            format!("{why}\n"),
        )));
    }
    let mut client = centre.db.client().await?;
    let done = super::site_grants::import(&mut client, &imp)
        .await
        .map_err(unavailable)?;
    if !done.unknown_members.is_empty() {
        return Err(Refused::Failed((
            StatusCode::CONFLICT,
            format!(
                "the chain's grants file has no member {}: add them there first\n",
                done.unknown_members.join(", ")
            ),
        )));
    }
    tracing::info!(site = %imp.site_id, added = done.added, already = done.already,
        "site grants imported as chain lots");
    Ok(Json(done))
}

/// Slices of a member's credit placed with the asking site.
async fn escrow(
    State(centre): State<Arc<Centre>>,
    headers: HeaderMap,
    tls: Tls,
    Json(ask): Json<EscrowAsk>,
) -> Result<Json<EscrowGrant>, Refused> {
    authenticate(&centre, &ask.site_id, &headers, &tls)?;
    let mut client = centre.db.client().await?;
    let now = centre.clock.wall();
    let grant = super::escrow::place(&mut client, &ask, centre.escrow_share, now)
        .await
        .map_err(unavailable)?;
    Ok(Json(grant))
}

/// Slices the asking site holds no more go back to their lots.
async fn escrow_return(
    State(centre): State<Arc<Centre>>,
    headers: HeaderMap,
    tls: Tls,
    Json(ret): Json<EscrowReturn>,
) -> Result<StatusCode, Refused> {
    authenticate(&centre, &ret.site_id, &headers, &tls)?;
    let mut client = centre.db.client().await?;
    let now = centre.clock.wall();
    super::escrow::close(&mut client, &ret, now)
        .await
        .map_err(unavailable)?;
    Ok(StatusCode::NO_CONTENT)
}

/// The asking site's feed after its cursor (recalls of its slices).
async fn feed(
    State(centre): State<Arc<Centre>>,
    headers: HeaderMap,
    tls: Tls,
    Query(q): Query<FeedQuery>,
) -> Result<Json<Feed>, Refused> {
    authenticate(&centre, &q.site_id, &headers, &tls)?;
    let client = centre.db.client().await?;
    let entries = super::feed::read(&client, &q).await.map_err(unavailable)?;
    Ok(Json(Feed { entries }))
}

/// The routes of the site protocol.
pub fn router(centre: Arc<Centre>) -> Router {
    Router::new()
        .route("/v1/hello", post(hello))
        .route("/v1/journal", post(journal))
        .route("/v1/lost", post(lost))
        .route("/v1/status", post(status))
        .route("/v1/escrow", post(escrow))
        .route("/v1/escrow/return", post(escrow_return))
        .route("/v1/import/grants", post(import_grants))
        .route("/v1/feed", get(feed))
        .route("/v1/sites", get(sites))
        .route("/v1/report", get(report))
        .route("/v1/balance", get(balance))
        .route("/v1/statement", get(statement))
        .with_state(centre)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_logged_once_a_minute_per_site_and_reason() {
        let r = Refusals::default();
        assert_eq!(r.due("ber-1", "wrong token"), Some(0));
        assert_eq!(r.due("ber-1", "wrong token"), None);
        assert_eq!(r.due("ber-1", "wrong token"), None);
        assert_eq!(r.due("ber-1", "no token"), Some(0), "another reason");
        assert_eq!(r.due("ber-2", "wrong token"), Some(0), "another site");
        // A minute later: logged again, with the two in between counted.
        {
            let mut seen = r.0.lock().unwrap();
            let e = seen.get_mut(&("ber-1".to_string(), "wrong token")).unwrap();
            e.0 -= std::time::Duration::from_secs(61);
        }
        assert_eq!(r.due("ber-1", "wrong token"), Some(2));
        // Made-up site ids do not grow it without bound.
        for i in 0..(REFUSALS_KEPT * 2) {
            r.due(&format!("guess-{i}"), "unknown site");
        }
        assert!(r.0.lock().unwrap().len() <= REFUSALS_KEPT);
    }
}
