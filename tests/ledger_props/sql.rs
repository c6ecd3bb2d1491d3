//! Small helpers over raw SQL on the ledger's tables.

use std::collections::BTreeMap;

use rusqlite::{params, Connection, Row};
use tallyd::ledger::{query, Payable};

use crate::setup::RETURNED_TO_VOIDED;

pub(crate) fn one(conn: &Connection, sql: &str, args: impl rusqlite::Params) -> i64 {
    conn.query_row(sql, args, |r| r.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Every row of `sql`, each mapped by `row`, collected into `C`.
pub(crate) fn rows<T, C: FromIterator<T>>(
    conn: &Connection,
    sql: &str,
    args: impl rusqlite::Params,
    row: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> C {
    let mut stmt = conn
        .prepare(sql)
        .unwrap_or_else(|e| panic!("prepare {sql}: {e}"));
    stmt.query_map(args, row)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .collect::<rusqlite::Result<C>>()
        .unwrap_or_else(|e| panic!("rows of {sql}: {e}"))
}

/// Everything a write could change, to prove that a replay or a refused or
/// failed call changed nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Snapshot {
    pub(crate) history: i64,
    pub(crate) overage_rows: i64,
    pub(crate) usages: i64,
    pub(crate) resolutions: i64,
    pub(crate) refunds: i64,
    pub(crate) lots: i64,
    pub(crate) remaining: i64,
    pub(crate) granted: i64,
    pub(crate) overage_sum: i64,
}

pub(crate) fn snapshot(conn: &Connection) -> Snapshot {
    conn.query_row(
        "SELECT (SELECT COUNT(*) FROM history), (SELECT COUNT(*) FROM overage),
                (SELECT COUNT(*) FROM usages), (SELECT COUNT(*) FROM hold_resolutions),
                (SELECT COUNT(*) FROM refunds), (SELECT COUNT(*) FROM lots),
                (SELECT COALESCE(SUM(remaining), 0) FROM lots),
                (SELECT COALESCE(SUM(granted), 0) FROM lots),
                (SELECT COALESCE(SUM(amount), 0) FROM overage)",
        [],
        |r| {
            Ok(Snapshot {
                history: r.get(0)?,
                overage_rows: r.get(1)?,
                usages: r.get(2)?,
                resolutions: r.get(3)?,
                refunds: r.get(4)?,
                lots: r.get(5)?,
                remaining: r.get(6)?,
                granted: r.get(7)?,
                overage_sum: r.get(8)?,
            })
        },
    )
    .expect("snapshot")
}

/// A lot that can pay for a payable at an instant, as the spec sees it.
#[derive(Debug, Clone)]
pub(crate) struct LiveLot {
    pub(crate) id: i64,
    pub(crate) remaining: i64,
    pub(crate) expires_at: Option<i64>,
    pub(crate) source: String,
    pub(crate) valid_from: i64,
}

fn source_rank(source: &str) -> u8 {
    match source {
        "plan" => 0,
        "product" => 1,
        "account" => 2,
        _ => 3,
    }
}

/// The member's lots that can pay for `p` at `at`: valid, unexpired, not
/// voided, with credit left, of a credit that covers the payable.
pub(crate) fn live_lots(conn: &Connection, member: &str, p: &Payable, at: i64) -> Vec<LiveLot> {
    let rt = match p {
        Payable::Printing => None,
        Payable::Time { resource_type } => Some(resource_type.as_str()),
    };
    rows(
        conn,
        "SELECT id, remaining, expires_at, source, valid_from FROM lots
         WHERE member_id = ?1 AND remaining > 0 AND valid_from <= ?2
           AND (expires_at IS NULL OR expires_at > ?2) AND voided_at IS NULL
           AND CASE WHEN ?3 IS NULL THEN credit = 'printing'
                    ELSE credit IN (SELECT credit_id FROM time_credit_types
                                    WHERE resource_type = ?3) END
         ORDER BY id",
        params![member, at, rt],
        |r| {
            Ok(LiveLot {
                id: r.get(0)?,
                remaining: r.get(1)?,
                expires_at: r.get(2)?,
                source: r.get(3)?,
                valid_from: r.get(4)?,
            })
        },
    )
}

pub(crate) fn available(conn: &Connection, member: &str, p: &Payable, at: i64) -> i64 {
    live_lots(conn, member, p, at)
        .iter()
        .map(|l| l.remaining)
        .sum()
}

/// What the documented consumption order takes from `lots` for `amount`:
/// earliest expiry first, then plan < product < account < adjustment, then
/// oldest, then lot id; never-expiring lots last.
pub(crate) fn expected_takes(mut lots: Vec<LiveLot>, amount: i64) -> BTreeMap<i64, i64> {
    lots.sort_by_key(|l| {
        (
            l.expires_at.is_none(),
            l.expires_at.unwrap_or(0),
            source_rank(&l.source),
            l.valid_from,
            l.id,
        )
    });
    let mut left = amount;
    let mut out = BTreeMap::new();
    for l in lots {
        if left == 0 {
            break;
        }
        let take = l.remaining.min(left);
        out.insert(l.id, take);
        left -= take;
    }
    out
}

/// What a usage took from each lot in history rows of `kind`.
pub(crate) fn takes_of(conn: &Connection, usage: i64, kind: &str) -> BTreeMap<i64, i64> {
    rows(
        conn,
        "SELECT lot_id, -SUM(delta) FROM history
         WHERE usage_id = ?1 AND kind = ?2 AND delta < 0 GROUP BY lot_id",
        params![usage, kind],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

/// What a usage gave back to each lot in history rows of `kind`.
pub(crate) fn gives_of(conn: &Connection, usage: i64, kind: &str) -> BTreeMap<i64, i64> {
    rows(
        conn,
        "SELECT lot_id, SUM(delta) FROM history
         WHERE usage_id = ?1 AND kind = ?2 AND delta > 0 GROUP BY lot_id",
        params![usage, kind],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

/// What a hold took from each lot, in the order it took them.
pub(crate) fn hold_takes_in_order(conn: &Connection, usage: i64) -> Vec<(i64, i64)> {
    rows(
        conn,
        "SELECT lot_id, -SUM(delta) FROM history WHERE usage_id = ?1 AND kind = 'hold'
         GROUP BY lot_id ORDER BY MIN(id)",
        [usage],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

/// What a usage really holds on each lot now: what it took minus what it gave
/// back, not counting credit that went back to a dead lot and was expired or
/// voided there at once. With whether that lot is dead (expired or voided) at
/// `at`.
pub(crate) fn net_taken(conn: &Connection, usage: i64, at: i64) -> Vec<(i64, i64, bool)> {
    rows(
        conn,
        "SELECT h.lot_id, -SUM(h.delta),
                (l.voided_at IS NOT NULL OR (l.expires_at IS NOT NULL AND l.expires_at <= ?2))
         FROM history h JOIN lots l ON l.id = h.lot_id
         WHERE h.usage_id = ?1 AND h.kind IN ('debit', 'hold', 'settle', 'void')
           AND h.note <> ?3
         GROUP BY h.lot_id ORDER BY h.lot_id",
        params![usage, at, RETURNED_TO_VOIDED],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
}

/// The first column of every row of `sql`: lot ids.
pub(crate) fn lot_ids(conn: &Connection, sql: &str) -> Vec<i64> {
    rows(conn, sql, [], |r| r.get(0))
}

pub(crate) fn lot_remaining(conn: &Connection, lot: i64) -> i64 {
    one(conn, "SELECT remaining FROM lots WHERE id = ?1", [lot])
}

/// Spendable credit per member and credit id at `at`, from the lots table.
pub(crate) type Spendable = BTreeMap<(String, String), i64>;

pub(crate) fn spendable_now(conn: &Connection, at: i64) -> Spendable {
    rows(
        conn,
        "SELECT member_id, credit, SUM(remaining) FROM lots
         WHERE valid_from <= ?1 AND (expires_at IS NULL OR expires_at > ?1)
           AND voided_at IS NULL
         GROUP BY member_id, credit HAVING SUM(remaining) <> 0",
        [at],
        |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)),
    )
}

/// The same, as `query::balances` rebuilds it from history for instant `at`.
pub(crate) fn spendable_rebuilt(conn: &Connection, at: i64) -> Spendable {
    let mut out = Spendable::new();
    for b in query::balances(conn, None, at).expect("balances") {
        if b.printing_cents != 0 {
            out.insert((b.member.clone(), "printing".into()), b.printing_cents);
        }
        for (credit, minutes) in b.time_minutes {
            if minutes != 0 {
                out.insert((b.member.clone(), credit), minutes);
            }
        }
    }
    out
}
