//! The centre's HTTP side: axum routes for the site protocol over one
//! PostgreSQL connection, reconnected when it was lost.

use super::protocol::{Batch, BatchReply, Hello, Welcome};
use super::store;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
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

async fn hello(State(db): State<Arc<Db>>, Json(h): Json<Hello>) -> Result<Json<Welcome>, Failure> {
    let mut guard = db.client().await?;
    let client = guard
        .as_mut()
        .ok_or((StatusCode::SERVICE_UNAVAILABLE, String::new()))?;
    Ok(Json(store::hello(client, &h).await.map_err(unavailable)?))
}

async fn journal(
    State(db): State<Arc<Db>>,
    Json(b): Json<Batch>,
) -> Result<(StatusCode, Json<BatchReply>), Failure> {
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

/// The routes of the site protocol.
pub fn router(db: Arc<Db>) -> Router {
    Router::new()
        .route("/v1/hello", post(hello))
        .route("/v1/journal", post(journal))
        .with_state(db)
}
