//! The last good grants file: where it came from, its text and digest, the
//! HTTP validators for a conditional fetch, and when it was applied. The
//! table is a small key-value store; [`super::clock_marks`] keeps the clock
//! mark in it too.

use super::{Result, Ts};
use rusqlite::{params, Connection, OptionalExtension};

/// The last good grants file, as remembered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LastGood {
    pub source: String,
    pub digest: String,
    pub text: String,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub synced_at: Ts,
}

pub(super) fn get(conn: &Connection, key: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT value FROM sync_state WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?)
}

pub(super) fn set(conn: &Connection, key: &str, value: Option<&str>) -> Result<()> {
    match value {
        Some(v) => conn
            .prepare_cached("INSERT INTO sync_state (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value")?
            .execute(params![key, v])?,
        None => conn
            .prepare_cached("DELETE FROM sync_state WHERE key = ?1")?
            .execute([key])?,
    };
    Ok(())
}

/// Remembers `last` as the last good file.
pub fn save(conn: &Connection, last: &LastGood) -> Result<()> {
    set(conn, "source", Some(&last.source))?;
    set(conn, "digest", Some(&last.digest))?;
    set(conn, "text", Some(&last.text))?;
    set(conn, "etag", last.etag.as_deref())?;
    set(conn, "last_modified", last.last_modified.as_deref())?;
    set(conn, "synced_at", Some(&last.synced_at.to_string()))
}

/// The last good file, if one was applied from `source`.
pub fn load(conn: &Connection, source: &str) -> Result<Option<LastGood>> {
    if get(conn, "source")?.as_deref() != Some(source) {
        return Ok(None);
    }
    let Some(text) = get(conn, "text")? else {
        return Ok(None);
    };
    Ok(Some(LastGood {
        source: source.to_string(),
        digest: get(conn, "digest")?.unwrap_or_default(),
        text,
        etag: get(conn, "etag")?,
        last_modified: get(conn, "last_modified")?,
        synced_at: get(conn, "synced_at")?
            .and_then(|t| t.parse().ok())
            .unwrap_or_default(),
    }))
}
