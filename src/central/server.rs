//! The centre's HTTP side: axum routes for the site protocol over one
//! PostgreSQL connection, reconnected when it was lost. Every request must
//! carry the token of the site it claims to be ([`auth`](super::auth)).

use super::auth::Sites;
use super::protocol::{Batch, BatchReply, ChainReportRow, Hello, ReportQuery, Welcome};
use super::store;
use axum::extract::{Query, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use std::sync::Arc;
use tokio::sync::Mutex;
use tokio_postgres::{Client, NoTls};

/// The PostgreSQL connection, shared by every request: each hello or batch
/// is one transaction on it.
pub struct Db {
    conninfo: String,
    client: Mutex<Option<Client>>,
}

type Failure = (StatusCode, String);

impl Db {
    /// Connects and brings the schema up to date.
    pub async fn connect(conninfo: &str) -> Result<Db, tokio_postgres::Error> {
        let db = Db {
            conninfo: conninfo.to_string(),
            client: Mutex::new(None),
        };
        let mut client = db.open().await?;
        super::schema::migrate(&mut client).await?;
        *db.client.lock().await = Some(client);
        Ok(db)
    }

    async fn open(&self) -> Result<Client, tokio_postgres::Error> {
        let (client, connection) = tokio_postgres::connect(&self.conninfo, NoTls).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %crate::error_chain(&e), "PostgreSQL connection lost");
            }
        });
        Ok(client)
    }

    /// The connection, opened again if it was lost.
    async fn client(&self) -> Result<tokio::sync::MutexGuard<'_, Option<Client>>, Failure> {
        let mut guard = self.client.lock().await;
        if guard.as_ref().is_none_or(|c| c.is_closed()) {
            *guard = Some(self.open().await.map_err(unavailable)?);
        }
        Ok(guard)
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
}

/// A request refused before anything was read or applied.
enum Refused {
    /// No valid token for the site it claims: 401.
    Unauthenticated,
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
            Refused::Failed(f) => f.into_response(),
        }
    }
}

/// Refuses a request without the token of `site_id`, with one WARN line
/// that shows neither the token nor anything unquoted the sender chose.
fn authenticate(centre: &Centre, site_id: &str, headers: &HeaderMap) -> Result<(), Refused> {
    let header = headers.get(AUTHORIZATION).map(|v| v.as_bytes());
    centre.sites.check(site_id, header).map_err(|why| {
        tracing::warn!(site = ?site_id, why = why.as_str(),
            "central refused a request: no valid token for the site it claims");
        Refused::Unauthenticated
    })
}

async fn hello(
    State(centre): State<Arc<Centre>>,
    headers: HeaderMap,
    Json(h): Json<Hello>,
) -> Result<Json<Welcome>, Refused> {
    authenticate(&centre, &h.site_id, &headers)?;
    let db = &centre.db;
    let mut guard = db.client().await?;
    let client = guard
        .as_mut()
        .ok_or((StatusCode::SERVICE_UNAVAILABLE, String::new()))?;
    Ok(Json(store::hello(client, &h).await.map_err(unavailable)?))
}

async fn journal(
    State(centre): State<Arc<Centre>>,
    headers: HeaderMap,
    Json(b): Json<Batch>,
) -> Result<(StatusCode, Json<BatchReply>), Refused> {
    authenticate(&centre, &b.site_id, &headers)?;
    let db = &centre.db;
    let mut guard = db.client().await?;
    let client = guard
        .as_mut()
        .ok_or((StatusCode::SERVICE_UNAVAILABLE, String::new()))?;
    let reply = store::ingest(client, &b).await.map_err(unavailable)?;
    let status = match reply {
        BatchReply::Applied { .. } => StatusCode::OK,
        _ => StatusCode::CONFLICT,
    };
    Ok((status, Json(reply)))
}

/// The chain's monthly report, for a site's manager (`tallyd report
/// --central`): read-only, one query.
async fn report(
    State(centre): State<Arc<Centre>>,
    headers: HeaderMap,
    Query(q): Query<ReportQuery>,
) -> Result<Json<Vec<ChainReportRow>>, Refused> {
    authenticate(&centre, &q.site_id, &headers)?;
    let guard = centre.db.client().await?;
    let client = guard
        .as_ref()
        .ok_or((StatusCode::SERVICE_UNAVAILABLE, String::new()))?;
    let rows = super::report::report(client, &q)
        .await
        .map_err(unavailable)?;
    Ok(Json(rows))
}

/// The routes of the site protocol.
pub fn router(centre: Arc<Centre>) -> Router {
    Router::new()
        .route("/v1/hello", post(hello))
        .route("/v1/journal", post(journal))
        .route("/v1/report", get(report))
        .with_state(centre)
}
