//! Every check `tallyd check-ledger` runs, each with its own verdict:
//! SQLite's full `integrity_check`, the append-only triggers, every lot
//! against its history, every usage against its history and overage rows,
//! every team pool draw against the history it stands for, and each hash
//! chain from its first row. A check that cannot run (a
//! damaged file) fails on its own; the others still run.

use super::integrity::{self, Chain};
use super::schema;
use super::Result;
use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub check: &'static str,
    pub ok: bool,
    /// What was checked, or the first thing found wrong.
    pub detail: String,
}

fn verdict(check: &'static str, outcome: Result<std::result::Result<String, String>>) -> Verdict {
    let (ok, detail) = match outcome {
        Ok(Ok(detail)) => (true, detail),
        Ok(Err(detail)) => (false, detail),
        Err(e) => (false, crate::error_chain(&e)),
    };
    Verdict { check, ok, detail }
}

/// Runs every check on `conn` (read-only is enough).
pub fn audit(conn: &Connection) -> Vec<Verdict> {
    let mut out = vec![
        verdict("integrity_check", integrity_check(conn)),
        verdict("append-only triggers", triggers(conn)),
        verdict("lots against history", lots(conn)),
        verdict("usages against history and overage", usages(conn)),
        verdict("pool draws against history", pool_draws(conn)),
    ];
    out.extend(derived(conn));
    for chain in Chain::ALL {
        let name = match chain {
            Chain::History => "history chain",
            Chain::Usages => "usages chain",
            Chain::Overage => "overage chain",
        };
        out.push(verdict(name, chained(conn, chain)));
    }
    out
}

/// The checks of what is kept as totals beside the rows it sums (for
/// `balance` and reports): each against its rows.
pub fn derived(conn: &Connection) -> Vec<Verdict> {
    vec![
        verdict("overage owed against overage", overage_owed(conn)),
        verdict("monthly roll-up against usages", usage_months(conn)),
        verdict(
            "quarter-hour adjustments against usages",
            usage_quarters(conn),
        ),
    ]
}

type Outcome = Result<std::result::Result<String, String>>;

fn integrity_check(conn: &Connection) -> Outcome {
    let mut stmt = conn.prepare("PRAGMA integrity_check(10)")?;
    let lines: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    if lines == ["ok"] {
        Ok(Ok("ok".into()))
    } else {
        // SQLite's report spans lines; a verdict is one.
        Ok(Err(lines.join("; ").replace(['\n', '\r'], " ")))
    }
}

/// The append-only triggers its schema version should have (a backup
/// taken before a migration has an older one).
fn triggers(conn: &Connection) -> Outcome {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let expected = schema::append_only_triggers_at(version);
    let mut stmt =
        conn.prepare("SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = ?1")?;
    let mut missing = Vec::new();
    for name in expected.iter().copied() {
        if !stmt.exists([name])? {
            missing.push(name);
        }
    }
    Ok(if missing.is_empty() {
        Ok(format!("all {} present", expected.len()))
    } else {
        Err(format!("missing: {}", missing.join(", ")))
    })
}

fn count(conn: &Connection, table: &str) -> Result<i64> {
    Ok(conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))?)
}

fn lots(conn: &Connection) -> Outcome {
    Ok(match schema::verify(conn) {
        Ok(()) => Ok(format!("{} lots agree", count(conn, "lots")?)),
        Err(e @ super::LedgerError::Inconsistent { .. }) => Err(e.to_string()),
        Err(e) => return Err(e),
    })
}

fn usages(conn: &Connection) -> Outcome {
    let mut checked = 0u64;
    for totals in super::usage::agree::totals(conn)? {
        if let Some(why) = super::usage::agree::disagreement(&totals) {
            return Ok(Err(format!(
                "usage {} (`{}`): {why}",
                totals.id, totals.key
            )));
        }
        checked += 1;
    }
    Ok(Ok(format!("{checked} usages agree")))
}

fn pool_draws(conn: &Connection) -> Outcome {
    use super::usage::pool_agree::{pool_disagreement, pool_totals};
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version < schema::TEAMS {
        return Ok(Ok(format!(
            "the ledger predates teams (schema {version}): no pool"
        )));
    }
    let totals = pool_totals(conn)?;
    if let Some((t, why)) = totals
        .iter()
        .find_map(|t| pool_disagreement(t).map(|why| (t, why)))
    {
        return Ok(Err(format!("usage {} (`{}`): {why}", t.usage, t.key)));
    }
    Ok(Ok(format!("{} usage lots of the pool agree", totals.len())))
}

/// Each member's overage total (`overage_owed`, what `balance` shows)
/// against the sum of their overage rows.
fn overage_owed(conn: &Connection) -> Outcome {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version < schema::OVERAGE_OWED {
        return Ok(Ok(format!(
            "not kept before schema {}",
            schema::OVERAGE_OWED
        )));
    }
    let differs: Option<(String, String, i64, i64)> = conn
        .query_row(
            "SELECT COALESCE(o.member_id, w.member_id), COALESCE(o.unit, w.unit),
                    COALESCE(w.amount, 0), COALESCE(o.total, 0)
             FROM (SELECT member_id, unit, SUM(amount) AS total FROM overage
                   GROUP BY member_id, unit) o
             FULL JOIN overage_owed w ON w.member_id = o.member_id AND w.unit = o.unit
             WHERE COALESCE(w.amount, 0) <> COALESCE(o.total, 0) LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    Ok(match differs {
        None => Ok(format!(
            "{} member totals agree",
            count(conn, "overage_owed")?
        )),
        Some((member, unit, kept, rows)) => Err(format!(
            "member {member}: {kept} {unit} owed but the overage rows sum to {rows}"
        )),
    })
}

/// Each UTC month of the roll-up reports read against its usages and
/// overage rows.
fn usage_months(conn: &Connection) -> Outcome {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version < schema::USAGE_MONTHS {
        return Ok(Ok(format!(
            "not kept before schema {}",
            schema::USAGE_MONTHS
        )));
    }
    super::query::months::first_disagreement(conn)
}

/// Each quarter hour of the daily chart's roll-up against its usages.
fn usage_quarters(conn: &Connection) -> Outcome {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version < schema::USAGE_QUARTERS {
        return Ok(Ok(format!(
            "not kept before schema {}",
            schema::USAGE_QUARTERS
        )));
    }
    super::query::days::first_disagreement(conn)
}

fn chained(conn: &Connection, chain: Chain) -> Outcome {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version < schema::CHAINED {
        return Ok(Err(format!(
            "the ledger predates the hash chains (schema {version}); any write command or the daemon hashes it"
        )));
    }
    Ok(match integrity::verify_whole(conn, chain) {
        Ok(v) => Ok(format!(
            "{} rows verified, tip row {} hash {}",
            v.rows,
            v.row,
            super::chain::hex(&v.hash)
        )),
        Err(super::LedgerError::ChainBroken { table, what }) => Err(format!("{table} {what}")),
        Err(e) => return Err(e),
    })
}
