//! How the centre runs its SQL: each statement prepared once per pooled
//! connection (deadpool's statement cache) and then only bound and run, so
//! a statement is one round trip to PostgreSQL instead of two (a text
//! statement is parsed and described again every time).

use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

pub type Tx<'a> = deadpool_postgres::Transaction<'a>;
pub type Pg<T> = Result<T, tokio_postgres::Error>;
type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

pub async fn exec(tx: &Tx<'_>, sql: &str, params: Params<'_>) -> Pg<u64> {
    let st = tx.prepare_cached(sql).await?;
    tx.execute(&st, params).await
}

pub async fn query(tx: &Tx<'_>, sql: &str, params: Params<'_>) -> Pg<Vec<Row>> {
    let st = tx.prepare_cached(sql).await?;
    tx.query(&st, params).await
}

pub async fn query_one(tx: &Tx<'_>, sql: &str, params: Params<'_>) -> Pg<Row> {
    let st = tx.prepare_cached(sql).await?;
    tx.query_one(&st, params).await
}

pub async fn query_opt(tx: &Tx<'_>, sql: &str, params: Params<'_>) -> Pg<Option<Row>> {
    let st = tx.prepare_cached(sql).await?;
    tx.query_opt(&st, params).await
}
