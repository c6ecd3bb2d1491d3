//! A manager's refund of a charged usage: what it took goes back to its lots
//! (or, where a lot has expired or been voided since, into a new lot that
//! never expires), and its overage is reversed. Each usage refunds once.

use super::entries::{add_overage, take_from_lot, totals};
use super::hold::resolution;
use super::pool::{owes_overage, pool_lots, record_draw, Draw};
use super::rules::{refund_plan, RefundStep, Taken};
use super::{Payable, Refund};
use crate::ledger::allocate::SourceKind;
use crate::ledger::history::HistoryKind;
use crate::ledger::lots::{self, GrantRequest};
use crate::ledger::{add, LedgerError, Result, Ts};
use rusqlite::{params, Connection, OptionalExtension};

/// The usage being refunded.
struct UsageRow {
    id: i64,
    member: Option<String>,
    payable: Payable,
    is_hold: bool,
    amount: i64,
    at: Ts,
}

fn usage_row(conn: &Connection, key: &str) -> Result<UsageRow> {
    conn.prepare_cached(
        "SELECT id, member_id, credit_kind, resource_type, is_hold, amount, at FROM usages WHERE key = ?1",
    )?
    .query_row([key], |r| {
        Ok(UsageRow {
            id: r.get(0)?,
            member: r.get(1)?,
            payable: Payable::from_row(&r.get::<_, String>(2)?, r.get(3)?),
            is_hold: r.get(4)?,
            amount: r.get(5)?,
            at: r.get(6)?,
        })
    })
    .optional()?
    .ok_or_else(|| LedgerError::UnknownUsage(key.to_string()))
}

/// A refund is never dated before what it refunds (settles included).
fn refund_at(conn: &Connection, u: &UsageRow, at: Ts) -> Result<Ts> {
    let last: Option<Ts> = match &u.member {
        Some(_) => conn
            .prepare_cached("SELECT MAX(at) FROM history WHERE usage_id = ?1")?
            .query_row([u.id], |r| r.get(0))?,
        None => None,
    };
    Ok(at.max(u.at).max(last.unwrap_or(u.at)))
}

/// Refused: refunded already, an open hold, or a voided one.
fn check_refundable(conn: &Connection, key: &str, u: &UsageRow) -> Result<()> {
    let refunded: Option<i64> = conn
        .prepare_cached("SELECT 1 FROM refunds WHERE usage_id = ?1")?
        .query_row([u.id], |r| r.get(0))
        .optional()?;
    if refunded.is_some() {
        return Err(LedgerError::AlreadyRefunded(key.to_string()));
    }
    if u.is_hold {
        match resolution(conn, u.id)? {
            None => return Err(LedgerError::HoldOpen(key.to_string())),
            Some((outcome, _)) if outcome == "voided" => {
                return Err(LedgerError::NothingToRefund(key.to_string()))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// What the usage took from each of the member's lots, net, in the order
/// taken, and whether each lot is dead at `at`.
fn taken(conn: &Connection, usage: i64, at: Ts) -> Result<Vec<Taken>> {
    let mut stmt = conn.prepare_cached(
        "SELECT h.lot_id, -SUM(h.delta), l.credit,
                (l.voided_at IS NOT NULL OR (l.expires_at IS NOT NULL AND l.expires_at <= ?2))
         FROM history h JOIN lots l ON l.id = h.lot_id
         WHERE h.usage_id = ?1
           AND h.kind IN ('debit', 'hold', 'settle', 'void')
         GROUP BY h.lot_id ORDER BY MIN(h.id)",
    )?;
    let rows = stmt.query_map(params![usage, at], |r| {
        Ok(Taken {
            lot: r.get(0)?,
            net: r.get(1)?,
            credit: r.get(2)?,
            dead: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Returns a member's usage's credit as the refund rule says.
fn give_back(
    conn: &Connection,
    u: &UsageRow,
    member: &str,
    reason: &str,
    at: Ts,
    out: &mut Refund,
) -> Result<()> {
    let note = format!("refunded: {reason}");
    let pooled = pool_lots(conn, u.id, member)?;
    let unit = u.payable.unit();
    for step in refund_plan(taken(conn, u.id, at)?) {
        let (lot, amount) = match step {
            RefundStep::Restore { lot, amount } => {
                take_from_lot(
                    conn,
                    lot,
                    -amount,
                    HistoryKind::Refund,
                    Some(u.id),
                    &note,
                    at,
                )?;
                out.restored = add(out.restored, amount)?;
                (lot, amount)
            }
            RefundStep::Regrant {
                lot,
                credit,
                amount,
            } => {
                // To the lot's owner: the payer, for a lot of the pool.
                let grant = GrantRequest {
                    member: lots::owner(conn, lot)?,
                    credit,
                    amount,
                    valid_from: at,
                    expires_at: None,
                    source: SourceKind::Adjustment,
                    source_key: format!("refund:{}:lot:{lot}", u.id),
                    note: format!("{note} (lot {lot} is no longer usable)"),
                    at,
                };
                lots::grant(conn, &grant)?;
                out.regranted = add(out.regranted, amount)?;
                (lot, amount)
            }
        };
        if pooled.contains(&lot) {
            let draw = Draw {
                usage: u.id,
                member,
                lot,
                unit,
                kind: HistoryKind::Refund,
                amount: -amount,
                at,
            };
            record_draw(conn, &draw)?;
        }
    }
    let (_, overage) = totals(conn, u.id, Some(member))?;
    let owes = owes_overage(conn, u.id, member)?;
    add_overage(conn, &owes, u.id, unit, HistoryKind::Refund, -overage, at)?;
    out.overage_reversed = overage;
    Ok(())
}

/// Refunds the usage under `key` (see the module docs).
pub fn refund(conn: &Connection, key: &str, reason: &str, at: Ts) -> Result<Refund> {
    let u = usage_row(conn, key)?;
    let at = refund_at(conn, &u, at)?;
    check_refundable(conn, key, &u)?;
    let mut out = Refund {
        usage_id: u.id,
        restored: 0,
        regranted: 0,
        overage_reversed: 0,
    };
    let nothing = match &u.member {
        Some(member) => {
            give_back(conn, &u, member, reason, at, &mut out)?;
            [out.restored, out.regranted, out.overage_reversed] == [0, 0, 0]
        }
        None => u.amount == 0,
    };
    if nothing {
        return Err(LedgerError::NothingToRefund(key.to_string()));
    }
    conn.prepare_cached("INSERT INTO refunds (usage_id, reason, at) VALUES (?1, ?2, ?3)")?
        .execute(params![u.id, reason, at])?;
    Ok(out)
}
