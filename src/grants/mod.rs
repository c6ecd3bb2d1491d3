//! The central grants file: plans, products and account grants, synced into
//! the ledger by the rules of `design.md`.
//!
//! - [`model`]: the file's format (TOML or JSON) and its validation.
//! - [`periods`]: renewal periods anchored on the subscription start.
//! - [`reconcile`]: the pure plan of what a sync issues, adjusts, voids, closes.
//! - [`sync`]: reading the ledger's snapshot and writing a plan.
//! - [`source`]: reading a path or fetching a URL (conditional GET).
//!
//! A sync parses and validates the whole file first; a file with any problem
//! changes nothing. A good file is applied in one transaction.

pub mod model;
pub mod periods;
pub mod reconcile;
pub mod source;
pub mod sync;

use crate::config::ConfigError;
use crate::ledger::{Result, Ts};
use chrono_tz::Tz;
use model::Catalog;
use reconcile::{Counts, SyncPlan};
use rusqlite::{params, Connection, OptionalExtension};
use sha2::{Digest, Sha256};
use source::Validators;

/// The hex SHA-256 of a grants file, logged with every sync.
pub fn digest(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Parses and validates a grants file (nothing is written).
pub fn parse(name: &str, text: &str) -> std::result::Result<Catalog, ConfigError> {
    model::parse(text, name)
}

/// What a sync did (or, dry, would do).
#[derive(Debug, Clone)]
pub struct SyncReport {
    pub source: String,
    pub digest: String,
    pub counts: Counts,
    pub plan: SyncPlan,
    pub dry_run: bool,
}

/// Reconciles a validated catalog into the ledger, in the caller's
/// transaction, and remembers it as the last good grants file. With
/// `dry_run`, computes the plan and writes nothing.
#[allow(clippy::too_many_arguments)]
pub fn apply(
    conn: &Connection,
    tz: Tz,
    catalog: &Catalog,
    source: &str,
    text: &str,
    validators: &Validators,
    now: Ts,
    dry_run: bool,
) -> Result<SyncReport> {
    let plan = sync::plan(conn, catalog, tz, now)?;
    let digest = digest(text);
    let counts = if dry_run {
        plan.counts()
    } else {
        let counts = sync::apply(conn, catalog, &plan, now)?;
        let state = [
            ("source", Some(source.to_string())),
            ("digest", Some(digest.clone())),
            ("text", Some(text.to_string())),
            ("etag", validators.etag.clone()),
            ("last_modified", validators.last_modified.clone()),
            ("synced_at", Some(now.to_string())),
        ];
        for (key, value) in state {
            match value {
                Some(v) => conn
                    .prepare_cached("INSERT INTO sync_state (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value")?
                    .execute(params![key, v])?,
                None => conn.prepare_cached("DELETE FROM sync_state WHERE key = ?1")?.execute([key])?,
            };
        }
        counts
    };
    Ok(SyncReport {
        source: source.to_string(),
        digest,
        counts,
        plan,
        dry_run,
    })
}

fn state(conn: &Connection, key: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT value FROM sync_state WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?)
}

/// The last good grants file applied from `source`: its text and the
/// validators for a conditional GET.
pub fn last_good(conn: &Connection, source: &str) -> Result<Option<(String, Validators)>> {
    if state(conn, "source")?.as_deref() != Some(source) {
        return Ok(None);
    }
    let Some(text) = state(conn, "text")? else {
        return Ok(None);
    };
    Ok(Some((
        text,
        Validators {
            etag: state(conn, "etag")?,
            last_modified: state(conn, "last_modified")?,
        },
    )))
}
