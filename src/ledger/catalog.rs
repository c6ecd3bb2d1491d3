//! What the grants file said, as last applied: the catalog rows a sync
//! compares the next file with, their append-only history of changes, and the
//! definitions (resource types, resources, time credits) that pricing of
//! room time reads. The grants module plans a sync; these apply it.

use super::lots;
use super::{Result, Ts};
use rusqlite::{params, Connection};
use std::collections::{BTreeMap, HashMap, HashSet};

/// One catalog row as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogRow {
    pub body: String,
    pub first_seen: Ts,
}

/// Every catalog row, by (kind, id).
pub fn rows(conn: &Connection) -> Result<HashMap<(String, String), CatalogRow>> {
    let mut stmt = conn.prepare_cached("SELECT kind, id, body, first_seen FROM catalog")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            (r.get(0)?, r.get(1)?),
            CatalogRow {
                body: r.get(2)?,
                first_seen: r.get(3)?,
            },
        ))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Source keys of the plan and product lots already issued.
pub fn issued_lot_keys(conn: &Connection) -> Result<HashSet<String>> {
    let mut stmt =
        conn.prepare_cached("SELECT source_key FROM lots WHERE source IN ('plan', 'product')")?;
    let keys = stmt.query_map([], |r| r.get(0))?;
    Ok(keys.collect::<rusqlite::Result<_>>()?)
}

/// Every member the ledger knows, and whether each is closed.
pub fn members(conn: &Connection) -> Result<HashMap<String, bool>> {
    let mut stmt = conn.prepare_cached("SELECT id, closed_at IS NOT NULL FROM members")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Writes a row, replacing its body and first-seen time.
pub fn put(conn: &Connection, kind: &str, id: &str, body: &str, first_seen: Ts) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO catalog (kind, id, body, first_seen) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(kind, id) DO UPDATE SET body = excluded.body, first_seen = excluded.first_seen",
    )?
    .execute(params![kind, id, body, first_seen])?;
    Ok(())
}

/// Writes a row's body; a row already there keeps its first-seen time.
pub fn put_body(conn: &Connection, kind: &str, id: &str, body: &str, now: Ts) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO catalog (kind, id, body, first_seen) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(kind, id) DO UPDATE SET body = excluded.body",
    )?
    .execute(params![kind, id, body, now])?;
    Ok(())
}

pub fn remove(conn: &Connection, kind: &str, id: &str) -> Result<()> {
    conn.prepare_cached("DELETE FROM catalog WHERE kind = ?1 AND id = ?2")?
        .execute(params![kind, id])?;
    Ok(())
}

/// One row of catalog history.
#[derive(Debug, Clone, Copy)]
pub struct ChangeRow<'a> {
    pub kind: &'a str,
    pub subject: &'a str,
    /// `added`, `edited` or `deleted`.
    pub change: &'a str,
    pub before: Option<&'a str>,
    pub after: Option<&'a str>,
}

pub fn record_change(conn: &Connection, c: &ChangeRow<'_>, at: Ts) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO catalog_changes (at, kind, subject, change, before, after) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![at, c.kind, c.subject, c.change, c.before, c.after])?;
    Ok(())
}

/// A time credit and the resource types it pays for.
#[derive(Debug, Clone, Copy)]
pub struct TimeCreditDef<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub resource_types: &'a [String],
}

/// Rewrites the definitions. A time credit dropped from the file keeps its
/// lots but pays for nothing new; one listed is redefined (rule 7: the list
/// is a live definition).
pub fn define(
    conn: &Connection,
    resource_types: &BTreeMap<String, String>,
    resources: &BTreeMap<String, String>,
    time_credits: &[TimeCreditDef<'_>],
) -> Result<()> {
    conn.prepare_cached("DELETE FROM resource_types")?
        .execute([])?;
    conn.prepare_cached("DELETE FROM resources")?.execute([])?;
    for (id, name) in resource_types {
        conn.prepare_cached("INSERT INTO resource_types (id, name) VALUES (?1, ?2)")?
            .execute(params![id, name])?;
    }
    for (id, rt) in resources {
        conn.prepare_cached("INSERT INTO resources (id, resource_type) VALUES (?1, ?2)")?
            .execute(params![id, rt])?;
    }
    let known: Vec<String> = conn
        .prepare_cached("SELECT id FROM time_credits")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for id in known {
        if !time_credits.iter().any(|tc| tc.id == id) {
            lots::define_time_credit(conn, &id, &id, &[])?;
        }
    }
    for tc in time_credits {
        lots::define_time_credit(conn, tc.id, tc.name, tc.resource_types)?;
    }
    Ok(())
}

/// The resource type of a room, if the grants file lists the room.
pub fn resource_type(conn: &Connection, resource: &str) -> Result<Option<String>> {
    use rusqlite::OptionalExtension;
    Ok(conn
        .prepare_cached("SELECT resource_type FROM resources WHERE id = ?1")?
        .query_row([resource], |r| r.get(0))
        .optional()?)
}

/// Refuses a resource type that neither the grants file nor any time credit
/// (including one a manager defined with `grant --resource-types`) names: a
/// typo in a manual charge would otherwise be billed as overage.
pub fn check_resource_type(conn: &Connection, id: &str) -> Result<()> {
    use rusqlite::OptionalExtension;
    let found: Option<i64> = conn
        .prepare_cached(
            "SELECT 1 WHERE EXISTS (SELECT 1 FROM resource_types WHERE id = ?1)
                OR EXISTS (SELECT 1 FROM time_credit_types WHERE resource_type = ?1)",
        )?
        .query_row([id], |r| r.get(0))
        .optional()?;
    found
        .map(|_| ())
        .ok_or_else(|| super::LedgerError::UnknownResourceType(id.to_string()))
}
