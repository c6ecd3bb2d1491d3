//! The ledger's tables, created and migrated by version (`PRAGMA user_version`),
//! and the check run at open that every lot equals the sum of its history.

use super::LedgerError;
use rusqlite::{Connection, OptionalExtension};

mod migrations;

use migrations::MIGRATIONS;

/// The schema version whose migration hashes the existing money rows.
pub const CHAINED: i64 = 9;

/// The schema version that adds teams and their pool draws.
pub const TEAMS: i64 = 10;

/// The schema version that keeps each member's overage owed as a total.
pub const OVERAGE_OWED: i64 = 13;

/// The schema version that keeps the monthly roll-up of usage.
pub const USAGE_MONTHS: i64 = 14;

/// The schema version that keeps the settle and refund adjustments per quarter hour (the daily chart).
pub const USAGE_QUARTERS: i64 = 17;

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The schema version of the ledger behind `conn`.
pub fn version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// Brings the schema up to [`SCHEMA_VERSION`], one migration per transaction.
pub fn migrate(conn: &mut Connection) -> Result<(), LedgerError> {
    let current = version(conn)?;
    if current > SCHEMA_VERSION {
        return Err(LedgerError::TooNew {
            found: current,
            supported: SCHEMA_VERSION,
        });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        if index as i64 + 1 == CHAINED {
            super::integrity::backfill(&tx)?;
        }
        tx.pragma_update(None, "user_version", index as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

/// The triggers that keep history append-only; each must be present. The
/// chain's `outbox` has none on purpose: the shipper renumbers it into a
/// new epoch and prunes acknowledged entries (`outbox::prune`); the rows
/// its entries name stay.
pub const APPEND_ONLY_TRIGGERS: [&str; 29] = [
    "history_no_update",
    "history_no_delete",
    "overage_no_update",
    "overage_no_delete",
    "usages_no_update",
    "usages_no_delete",
    "holds_no_update",
    "holds_no_delete",
    "refunds_no_update",
    "refunds_no_delete",
    "lots_no_delete",
    "catalog_changes_no_update",
    "catalog_changes_no_delete",
    "reviews_no_update",
    "reviews_no_delete",
    "review_resolutions_no_update",
    "review_resolutions_no_delete",
    "expiry_reversals_no_update",
    "expiry_reversals_no_delete",
    "job_analyses_no_update",
    "job_analyses_no_delete",
    "team_usages_no_update",
    "team_usages_no_delete",
    "card_enrolments_no_update",
    "card_enrolments_no_delete",
    "card_enrolment_overrides_no_update",
    "card_enrolment_overrides_no_delete",
    "pool_draws_no_update",
    "pool_draws_no_delete",
];

/// The append-only triggers a ledger of schema `version` has: those its
/// migrations created (all of [`APPEND_ONLY_TRIGGERS`] from schema 10).
pub fn append_only_triggers_at(version: i64) -> Vec<&'static str> {
    let applied = &MIGRATIONS[..(version.clamp(0, SCHEMA_VERSION) as usize)];
    APPEND_ONLY_TRIGGERS
        .into_iter()
        .filter(|name| {
            let create = format!("CREATE TRIGGER {name} ");
            let create_new = format!("CREATE TRIGGER IF NOT EXISTS {name} ");
            applied
                .iter()
                .any(|sql| sql.contains(&create) || sql.contains(&create_new))
        })
        .collect()
}

/// SQLite's `quick_check` (every page's structure, without the slower
/// index cross-checks): a malformed file is an error, not silence. It reads
/// every page, so its time grows with the file (see [`super::file_check`]).
pub fn quick_check(conn: &Connection) -> Result<(), LedgerError> {
    let verdict: String = conn.query_row("PRAGMA quick_check(1)", [], |r| r.get(0))?;
    if verdict != "ok" {
        // SQLite's report spans lines; a log line must not.
        return Err(LedgerError::Malformed(verdict.replace(['\n', '\r'], " ")));
    }
    Ok(())
}

/// The append-only triggers, each present: a missing one is an error.
pub fn check_triggers(conn: &Connection) -> Result<(), LedgerError> {
    let mut stmt =
        conn.prepare("SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = ?1")?;
    for name in APPEND_ONLY_TRIGGERS {
        if !stmt.exists([name])? {
            return Err(LedgerError::MissingTrigger(name));
        }
    }
    Ok(())
}

/// Proves the ledger can be written (a read-only file, folder or mount is
/// found here, not at the first charge): rewrites the schema version in a
/// transaction of its own.
pub fn check_writable(conn: &Connection) -> Result<(), LedgerError> {
    let version = version(conn)?;
    conn.execute_batch(&format!(
        "BEGIN IMMEDIATE; PRAGMA user_version = {version}; COMMIT;"
    ))
    .map_err(|e| {
        let _ = conn.execute_batch("ROLLBACK");
        LedgerError::NotWritable(super::SqliteCause::new(e))
    })
}

/// Checks that every lot's remaining and granted equal the sums of its history;
/// names the first lot that does not.
pub fn verify(conn: &Connection) -> Result<(), LedgerError> {
    let bad = conn
        .query_row(
            "SELECT l.id, l.member_id, l.remaining, COALESCE(h.rem, 0), l.granted, COALESCE(h.gr, 0)
             FROM lots l
             LEFT JOIN (SELECT lot_id, SUM(delta) AS rem, SUM(granted_delta) AS gr
                        FROM history GROUP BY lot_id) h ON h.lot_id = l.id
             WHERE l.remaining <> COALESCE(h.rem, 0) OR l.granted <> COALESCE(h.gr, 0)
             ORDER BY l.id LIMIT 1",
            [],
            |r| {
                Ok(LedgerError::Inconsistent {
                    lot: r.get(0)?,
                    member: r.get(1)?,
                    remaining: r.get(2)?,
                    history_sum: r.get(3)?,
                    granted: r.get(4)?,
                    granted_sum: r.get(5)?,
                })
            },
        )
        .optional()?;
    match bad {
        Some(err) => Err(err),
        None => Ok(()),
    }
}
