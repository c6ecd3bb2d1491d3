//! The hash chains over the money rows, as SQL: which columns each chained
//! table hashes, the tip a new row follows, the back-fill of migration 9,
//! and the verification from a point (the daemon's start) or from the first
//! row (`tallyd check-ledger`). The hashing itself is the pure
//! [`super::chain`].
//!
//! Three tables carry money and are chained, each on its own: `history`
//! (every change to a lot; its hash also binds the lot's member and credit,
//! so moving a lot to another member breaks it), `usages` (what was charged,
//! under which idempotency key) and `overage` (what is owed beyond credit).
//! Holds' resolutions and refunds are not chained: their money is in the
//! chained history and overage rows, and `check-ledger` checks each usage
//! against those.

use super::chain::{self, Break, Field, Hash, GENESIS};
use super::{LedgerError, Result};
use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OptionalExtension};

/// A chained table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chain {
    History,
    Usages,
    Overage,
}

impl Chain {
    pub const ALL: [Chain; 3] = [Chain::History, Chain::Usages, Chain::Overage];

    /// The table's name, also the chain's name.
    pub fn table(self) -> &'static str {
        match self {
            Chain::History => "history",
            Chain::Usages => "usages",
            Chain::Overage => "overage",
        }
    }

    /// Rows after `?1`, in id order: the id, the stored hash, then the
    /// hashed columns, in the order the writers hash them.
    fn rows_sql(self) -> &'static str {
        match self {
            Chain::History => {
                "SELECT h.id, h.hash, h.id, h.lot_id, l.member_id, l.credit, h.kind, h.delta,
                        h.granted_delta, h.usage_id, h.note, h.at
                 FROM history h LEFT JOIN lots l ON l.id = h.lot_id
                 WHERE h.id > ?1 ORDER BY h.id"
            }
            Chain::Usages => {
                "SELECT id, hash, id, key, fingerprint, member_id, origin, printer, resource,
                        credit_kind, resource_type, amount, is_hold, detail, at, covered,
                        overage, balance_after
                 FROM usages WHERE id > ?1 ORDER BY id"
            }
            Chain::Overage => {
                "SELECT id, hash, id, member_id, usage_id, unit, kind, amount, at
                 FROM overage WHERE id > ?1 ORDER BY id"
            }
        }
    }

    fn tip_sql(self) -> &'static str {
        match self {
            Chain::History => "SELECT id, hash FROM history ORDER BY id DESC LIMIT 1",
            Chain::Usages => "SELECT id, hash FROM usages ORDER BY id DESC LIMIT 1",
            Chain::Overage => "SELECT id, hash FROM overage ORDER BY id DESC LIMIT 1",
        }
    }

    /// The trigger that forbids updates, dropped and recreated around the
    /// back-fill of migration 9.
    fn no_update_trigger(self) -> (&'static str, &'static str) {
        match self {
            Chain::History => (
                "history_no_update",
                "CREATE TRIGGER history_no_update BEFORE UPDATE ON history
                    BEGIN SELECT RAISE(ABORT, 'history is append-only'); END;",
            ),
            Chain::Usages => (
                "usages_no_update",
                "CREATE TRIGGER usages_no_update BEFORE UPDATE ON usages
                    BEGIN SELECT RAISE(ABORT, 'usages are append-only'); END;",
            ),
            Chain::Overage => (
                "overage_no_update",
                "CREATE TRIGGER overage_no_update BEFORE UPDATE ON overage
                    BEGIN SELECT RAISE(ABORT, 'overage is append-only'); END;",
            ),
        }
    }
}

fn as_hash(bytes: Option<Vec<u8>>) -> Option<Hash> {
    bytes.and_then(|b| Hash::try_from(b.as_slice()).ok())
}

/// The newest row of `chain`, its id and stored hash, as [`tip_sql`]
/// (or a statement that embeds it) reads it.
///
/// [`tip_sql`]: Chain::tip_sql
pub type Last = Option<(i64, Option<Vec<u8>>)>;

/// The id and hash a new row of `chain` follows: its newest row's (one
/// indexed read of the last row), or `(0, GENESIS)` for an empty table.
pub fn tip(conn: &Connection, chain: Chain) -> Result<(i64, Hash)> {
    let last: Last = conn
        .prepare_cached(chain.tip_sql())?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(tip_of(last))
}

fn tip_of(last: Last) -> (i64, Hash) {
    match last {
        // A row whose hash is gone is reported by the verification; the
        // chain goes on from the zero hash rather than refusing to charge.
        Some((id, hash)) => (id, as_hash(hash).unwrap_or(GENESIS)),
        None => (0, GENESIS),
    }
}

/// A new row's id and hash: the row after `chain`'s tip, hashed over
/// `fields(id)`.
pub fn next<'a>(
    conn: &Connection,
    chain: Chain,
    fields: impl FnOnce(i64) -> Vec<Field<'a>>,
) -> Result<(i64, Hash)> {
    let (last, prev) = tip(conn, chain)?;
    let id = super::add(last, 1)?;
    Ok((id, chain::link(chain.table(), &prev, &fields(id))))
}

/// As [`next`], after a newest row the caller read itself (in a statement
/// that reads something else too: one statement fewer per row).
pub fn next_after<'a>(
    chain: Chain,
    last: Last,
    fields: impl FnOnce(i64) -> Vec<Field<'a>>,
) -> Result<(i64, Hash)> {
    let (last, prev) = tip_of(last);
    let id = super::add(last, 1)?;
    Ok((id, chain::link(chain.table(), &prev, &fields(id))))
}

fn field(v: ValueRef<'_>) -> Option<Field<'_>> {
    match v {
        ValueRef::Null => Some(Field::Null),
        ValueRef::Integer(n) => Some(Field::Int(n)),
        ValueRef::Text(t) => std::str::from_utf8(t).ok().map(Field::Text),
        // No hashed column holds a real or a blob: such a value was put
        // there by hand, and breaks the chain.
        ValueRef::Real(_) | ValueRef::Blob(_) => None,
    }
}

/// Walks `chain`'s rows after `start`; stops at the first break.
fn walk(conn: &Connection, chain: Chain, start: (i64, Hash)) -> Result<Walked> {
    let mut stmt = conn.prepare(chain.rows_sql())?;
    let width = stmt.column_count();
    let mut rows = stmt.query([start.0])?;
    let (mut last, mut prev) = start;
    let mut count = 0u64;
    while let Some(r) = rows.next()? {
        let id: i64 = r.get(0)?;
        let stored = as_hash(r.get(1)?);
        let fields: Option<Vec<Field<'_>>> = (2..width)
            .map(|i| r.get_ref(i).ok().and_then(field))
            .collect();
        let verdict = match fields {
            Some(fields) => chain::verify(chain.table(), (last, prev), [(id, stored, fields)]),
            None => Err(Break::Mismatch { row: id }),
        };
        match verdict {
            Ok(tip) => (last, prev) = tip,
            Err(b) => return Ok(Walked::Broken(b)),
        }
        count += 1;
    }
    Ok(Walked::Whole {
        tip: (last, prev),
        rows: count,
    })
}

enum Walked {
    Whole { tip: (i64, Hash), rows: u64 },
    Broken(Break),
}

/// A chain verified up to its newest row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub chain: Chain,
    /// Rows hashed by this verification.
    pub rows: u64,
    /// The newest row and its hash (`0` and zeros for an empty table).
    pub row: i64,
    pub hash: Hash,
}

fn broken(chain: Chain, b: Break) -> LedgerError {
    LedgerError::ChainBroken {
        table: chain.table(),
        what: b,
    }
}

/// The point a verification was recorded at, if one was.
fn recorded(conn: &Connection, chain: Chain) -> Result<Option<(i64, Hash)>> {
    let row: Option<(i64, Vec<u8>)> = conn
        .prepare_cached("SELECT row_id, hash FROM chain_tips WHERE chain = ?1")?
        .query_row([chain.table()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(row.map(|(id, h)| (id, as_hash(Some(h)).unwrap_or(GENESIS))))
}

/// Whether the row at the recorded point still carries the recorded hash.
fn check_recorded(conn: &Connection, chain: Chain, (row, hash): (i64, Hash)) -> Result<()> {
    if row == 0 {
        return Ok(());
    }
    let stored: Option<Option<Vec<u8>>> = conn
        .query_row(
            &format!("SELECT hash FROM {} WHERE id = ?1", chain.table()),
            [row],
            |r| r.get(0),
        )
        .optional()?;
    match stored.map(as_hash) {
        None => Err(broken(chain, Break::TipMissing { row })),
        Some(h) if h != Some(hash) => Err(broken(chain, Break::TipChanged { row })),
        Some(_) => Ok(()),
    }
}

/// Verifies `chain` from `start` to its newest row.
fn verify_from(conn: &Connection, chain: Chain, start: (i64, Hash)) -> Result<Verified> {
    match walk(conn, chain, start)? {
        Walked::Whole { tip, rows } => Ok(Verified {
            chain,
            rows,
            row: tip.0,
            hash: tip.1,
        }),
        Walked::Broken(b) => Err(broken(chain, b)),
    }
}

/// The daemon's start: verifies each chain from the point last recorded
/// (the rows written since), then records the new tips. The rows before the
/// recorded point are `check-ledger`'s to verify.
pub fn verify_since_recorded(conn: &Connection) -> Result<Vec<Verified>> {
    let mut out = Vec::with_capacity(Chain::ALL.len());
    for chain in Chain::ALL {
        let start = recorded(conn, chain)?.unwrap_or((0, GENESIS));
        check_recorded(conn, chain, start)?;
        out.push(verify_from(conn, chain, start)?);
    }
    record(conn, &out)?;
    Ok(out)
}

fn record(conn: &Connection, tips: &[Verified]) -> Result<()> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let written = tips.iter().try_for_each(|v| {
        conn.prepare_cached(
            "INSERT INTO chain_tips (chain, row_id, hash) VALUES (?1, ?2, ?3)
             ON CONFLICT(chain) DO UPDATE SET row_id = excluded.row_id, hash = excluded.hash",
        )?
        .execute(params![v.chain.table(), v.row, v.hash.as_slice()])
        .map(|_| ())
    });
    match written.and_then(|()| conn.execute_batch("COMMIT")) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e.into())
        }
    }
}

/// `check-ledger`: verifies `chain` from its first row, and that the point
/// the daemon last recorded is still on it.
pub fn verify_whole(conn: &Connection, chain: Chain) -> Result<Verified> {
    if let Some(point) = recorded(conn, chain)? {
        check_recorded(conn, chain, point)?;
    }
    verify_from(conn, chain, (0, GENESIS))
}

/// Migration 9: hashes every existing row of each chain in id order. The
/// update triggers are dropped for the back-fill and recreated in the same
/// transaction.
pub(super) fn backfill(conn: &Connection) -> Result<()> {
    for chain in Chain::ALL {
        let hashes = rehash(conn, chain)?;
        let (trigger, create) = chain.no_update_trigger();
        conn.execute_batch(&format!("DROP TRIGGER IF EXISTS {trigger};"))?;
        let mut update = conn.prepare(&format!(
            "UPDATE {} SET hash = ?2 WHERE id = ?1",
            chain.table()
        ))?;
        for (id, hash) in hashes {
            update.execute(params![id, hash.as_slice()])?;
        }
        conn.execute_batch(create)?;
    }
    Ok(())
}

/// Every row's hash from the first, as its columns stand.
fn rehash(conn: &Connection, chain: Chain) -> Result<Vec<(i64, Hash)>> {
    let mut stmt = conn.prepare(chain.rows_sql())?;
    let width = stmt.column_count();
    let mut rows = stmt.query([0])?;
    let mut prev = GENESIS;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let id: i64 = r.get(0)?;
        // Before migration 9 no hashed column can hold a real or a blob
        // (their columns' types and checks); one that does hashes as null.
        let fields: Vec<Field<'_>> = (2..width)
            .map(|i| r.get_ref(i).ok().and_then(field).unwrap_or(Field::Null))
            .collect();
        prev = chain::link(chain.table(), &prev, &fields);
        out.push((id, prev));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::lots::{self, GrantRequest};
    use crate::ledger::{Ledger, Origin, Payable, Site, SourceKind, UsageRequest};
    use std::path::Path;

    /// A ledger with a grant, a debit within credit, one beyond it (overage),
    /// a hold settled and a refund.
    fn ledger() -> Ledger {
        let mut ledger = Ledger::open(Path::new(":memory:"), Site::default()).expect("ledger");
        ledger
            .write(|c, _| {
                lots::ensure_member(c, "alice", "Alice", 0)?;
                lots::grant(
                    c,
                    &GrantRequest {
                        member: "alice".into(),
                        credit: "printing".into(),
                        amount: 1000,
                        valid_from: 0,
                        expires_at: None,
                        source: SourceKind::Adjustment,
                        source_key: "g1".into(),
                        note: "welcome".into(),
                        at: 10,
                    },
                )
            })
            .expect("grant");
        let req = |key: &str, amount| UsageRequest {
            key: key.into(),
            member: Some("alice".into()),
            origin: Origin::Manual,
            payable: Payable::Printing,
            amount,
            detail: "{}".into(),
            at: 20,
        };
        ledger.debit(&req("d1", 300)).expect("debit");
        ledger.debit(&req("d2", 900)).expect("debit with overage");
        ledger.hold(&req("h1", 50)).expect("hold");
        ledger.settle("h1", 40, "{}", 30).expect("settle");
        ledger.refund("d1", "misprint", 40).expect("refund");
        ledger
    }

    fn hashes(conn: &Connection, chain: Chain) -> Vec<(i64, Vec<u8>)> {
        let sql = format!("SELECT id, hash FROM {} ORDER BY id", chain.table());
        let mut stmt = conn.prepare(&sql).unwrap();
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
        rows.collect::<rusqlite::Result<_>>().unwrap()
    }

    #[test]
    fn every_row_written_follows_its_chain() {
        let ledger = ledger();
        for chain in Chain::ALL {
            let v = verify_whole(ledger.conn(), chain).expect("the chain holds");
            assert!(v.rows > 0, "{chain:?} has rows");
            assert_eq!(v.row, tip(ledger.conn(), chain).unwrap().0);
        }
    }

    #[test]
    fn migration_9_hashes_old_rows_as_the_writers_do() {
        let ledger = ledger();
        let conn = ledger.conn();
        let live: Vec<_> = Chain::ALL.iter().map(|&c| hashes(conn, c)).collect();
        // Back to schema 8: no hash columns, no tips.
        conn.execute_batch(
            "DROP TRIGGER history_no_update; DROP TRIGGER usages_no_update;
             DROP TRIGGER overage_no_update;
             ALTER TABLE history DROP COLUMN hash; ALTER TABLE usages DROP COLUMN hash;
             ALTER TABLE overage DROP COLUMN hash; DROP TABLE chain_tips;
             PRAGMA user_version = 8;",
        )
        .unwrap();
        let (mut conn, _, _) = ledger.into_parts();
        crate::ledger::schema::migrate(&mut conn).expect("migrate");
        let again: Vec<_> = Chain::ALL.iter().map(|&c| hashes(&conn, c)).collect();
        assert_eq!(live, again);
        crate::ledger::schema::check_triggers(&conn).expect("the triggers are back");
    }

    #[test]
    fn the_start_verifies_what_was_written_since_and_records_the_tips() {
        let mut ledger = ledger();
        let first = verify_since_recorded(ledger.conn()).expect("verified");
        let history = &first[0];
        assert_eq!(history.chain, Chain::History);
        assert_eq!(
            history.rows,
            tip(ledger.conn(), Chain::History).unwrap().0 as u64
        );
        // Nothing new: nothing rehashed, same tips.
        let again = verify_since_recorded(ledger.conn()).expect("verified");
        assert!(again.iter().all(|v| v.rows == 0), "{again:?}");
        assert_eq!(again[0].hash, history.hash);
        // One more debit: its rows only.
        ledger
            .debit(&UsageRequest {
                key: "d3".into(),
                member: Some("alice".into()),
                origin: Origin::Manual,
                payable: Payable::Printing,
                // More than is left: some credit, some overage.
                amount: 10_000,
                detail: "{}".into(),
                at: 50,
            })
            .expect("debit");
        let after = verify_since_recorded(ledger.conn()).expect("verified");
        assert_eq!(
            after.iter().map(|v| v.rows).collect::<Vec<_>>(),
            [1, 1, 1],
            "one history, usage and overage row"
        );
    }

    #[test]
    fn an_edited_row_breaks_the_chain_at_that_row() {
        let ledger = ledger();
        let conn = ledger.conn();
        conn.execute_batch(
            "DROP TRIGGER history_no_update;
             UPDATE history SET delta = delta + 1 WHERE id = 2;
             UPDATE lots SET remaining = remaining + 1 WHERE id = 1;",
        )
        .unwrap();
        crate::ledger::schema::verify(conn).expect("the lot still equals its history");
        let e = verify_whole(conn, Chain::History).expect_err("broken");
        assert!(
            matches!(
                e,
                LedgerError::ChainBroken {
                    table: "history",
                    what: Break::Mismatch { row: 2 }
                }
            ),
            "{e:?}"
        );
        assert!(verify_since_recorded(conn).is_err());
        // Moving a lot to another member breaks every row of that lot.
        let ledger = self::ledger();
        let conn = ledger.conn();
        lots::ensure_member(conn, "bob", "Bob", 0).unwrap();
        conn.execute("UPDATE lots SET member_id = 'bob' WHERE id = 1", [])
            .unwrap();
        let e = verify_whole(conn, Chain::History).expect_err("broken");
        assert_eq!(e.to_string(), "the history hash chain is broken: history row 1 does not match its hash (it, or a row before it, was changed outside tallyd); run `tallyd check-ledger`");
    }
}
