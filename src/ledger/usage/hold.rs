//! The second half of a hold: settle it to what the usage really cost, or
//! void it; and the one question the printer side asks, whether a key has an
//! open hold.

use super::entries::{add_overage, charge_of, give_back, take_from_lot};
use super::pool::{owes_overage, paying_for_usage, pool_lots, record_draw, Draw};
use super::rules::{settle_plan, SettlePlan};
use super::{Charge, Payable};
use crate::ledger::history::HistoryKind;
use crate::ledger::{bounded, LedgerError, Result, Site, Ts};
use rusqlite::{params, Connection, OptionalExtension};

/// How a hold was resolved (the `hold_resolutions.outcome` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resolution {
    Settled,
    Voided,
}

impl Resolution {
    fn as_str(self) -> &'static str {
        match self {
            Resolution::Settled => "settled",
            Resolution::Voided => "voided",
        }
    }

    fn parse(text: &str) -> Resolution {
        match text {
            "voided" => Resolution::Voided,
            _ => Resolution::Settled,
        }
    }
}

/// A hold not yet settled or voided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenHold {
    pub usage: i64,
    pub member: String,
    /// The amount reserved: the estimate.
    pub amount: i64,
}

/// The unresolved hold under `key`, if there is one.
pub fn open_hold(conn: &Connection, key: &str) -> Result<Option<OpenHold>> {
    Ok(conn
        .prepare_cached(
            "SELECT u.id, u.member_id, u.amount FROM usages u
             LEFT JOIN hold_resolutions r ON r.usage_id = u.id
             WHERE u.key = ?1 AND u.is_hold = 1 AND r.usage_id IS NULL",
        )?
        .query_row([key], |r| {
            Ok(OpenHold {
                usage: r.get(0)?,
                member: r.get(1)?,
                amount: r.get(2)?,
            })
        })
        .optional()?)
}

struct HoldRow {
    usage: i64,
    at: Ts,
    member: String,
    payable: Payable,
}

fn find_hold(conn: &Connection, key: &str) -> Result<HoldRow> {
    #[allow(clippy::type_complexity)]
    let row: Option<(i64, Option<String>, String, Option<String>, bool, Ts)> = conn
        .prepare_cached(
            "SELECT id, member_id, credit_kind, resource_type, is_hold, at FROM usages WHERE key = ?1",
        )?
        .query_row([key], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
        })
        .optional()?;
    match row {
        None => Err(LedgerError::UnknownUsage(key.to_string())),
        Some((usage, Some(member), kind, rt, true, at)) => Ok(HoldRow {
            usage,
            at,
            member,
            payable: Payable::from_row(&kind, rt),
        }),
        Some(_) => Err(LedgerError::NotAHold(key.to_string())),
    }
}

/// How a hold was resolved and to what amount, if it was.
pub(super) fn resolution(conn: &Connection, usage: i64) -> Result<Option<(String, i64)>> {
    Ok(conn
        .prepare_cached("SELECT outcome, actual FROM hold_resolutions WHERE usage_id = ?1")?
        .query_row([usage], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

/// The lots a hold reserved from, in the order it took them, and the overage
/// it reserved.
fn reserved(conn: &Connection, usage: i64) -> Result<(Vec<(i64, i64)>, i64)> {
    let mut stmt = conn.prepare_cached(
        "SELECT lot_id, -SUM(delta) FROM history WHERE usage_id = ?1 AND kind = 'hold'
         GROUP BY lot_id ORDER BY MIN(id)",
    )?;
    let lots = stmt
        .query_map([usage], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<Vec<(i64, i64)>>>()?;
    let overage: i64 = conn
        .prepare_cached(
            "SELECT COALESCE(SUM(amount), 0) FROM overage WHERE usage_id = ?1 AND kind = 'hold'",
        )?
        .query_row([usage], |r| r.get(0))?;
    Ok((lots, overage))
}

fn resolve(
    conn: &Connection,
    usage: i64,
    outcome: Resolution,
    actual: i64,
    detail: &str,
    at: Ts,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO hold_resolutions (usage_id, outcome, actual, detail, at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![usage, outcome.as_str(), actual, detail, at])?;
    Ok(())
}

/// Applies a settle or void plan to the hold's lots and overage.
fn apply(
    conn: &Connection,
    hold: &HoldRow,
    plan: SettlePlan,
    kind: HistoryKind,
    at: Ts,
) -> Result<()> {
    let unit = hold.payable.unit();
    let owes = owes_overage(conn, hold.usage, &hold.member)?;
    match plan {
        SettlePlan::TakeMore { extra } => {
            let paying = paying_for_usage(conn, hold.usage, &hold.member, &hold.payable, at)?;
            let more = paying.allocate(extra);
            for &(lot, take) in &more.takes {
                take_from_lot(conn, lot, take, kind, Some(hold.usage), "", at)?;
            }
            for &(lot, amount) in more.pool_takes() {
                record_draw(conn, &draw(hold, lot, kind, amount, at))?;
            }
            add_overage(conn, &owes, hold.usage, unit, kind, more.uncovered, at)
        }
        SettlePlan::GiveBack { overage, lots } => {
            add_overage(conn, &owes, hold.usage, unit, kind, -overage, at)?;
            let pooled = pool_lots(conn, hold.usage, &hold.member)?;
            for (lot, amount) in lots {
                give_back(conn, lot, amount, kind, hold.usage, at)?;
                if pooled.contains(&lot) {
                    record_draw(conn, &draw(hold, lot, kind, -amount, at))?;
                }
            }
            Ok(())
        }
    }
}

fn draw(hold: &HoldRow, lot: i64, kind: HistoryKind, amount: i64, at: Ts) -> Draw<'_> {
    Draw {
        usage: hold.usage,
        member: &hold.member,
        lot,
        unit: hold.payable.unit(),
        kind,
        amount,
        at,
    }
}

/// Settles a hold to what the usage really cost. Less than reserved: the rest
/// goes back (overage first, then the lots it came from, last-taken first).
/// More: the difference is debited like any usage. Settling again with the
/// same amount is a replay; anything else on a resolved hold is an error.
/// The real cost is from 0 to [`MAX_UNITS`](crate::money::MAX_UNITS).
pub fn settle(
    conn: &Connection,
    site: &Site,
    key: &str,
    actual: i64,
    detail: &str,
    at: Ts,
) -> Result<Charge> {
    bounded(actual, 0)?;
    let hold = find_hold(conn, key)?;
    // A clock that stepped back must not date the settle before its hold.
    let at = at.max(hold.at);
    match resolution(conn, hold.usage)? {
        Some((outcome, was))
            if Resolution::parse(&outcome) == Resolution::Settled && was == actual =>
        {
            return charge_of(
                conn,
                site.tz,
                hold.usage,
                Some(&hold.member),
                &hold.payable,
                at,
                true,
            );
        }
        Some((outcome, _)) => {
            return Err(LedgerError::AlreadyResolved {
                key: key.to_string(),
                outcome,
            })
        }
        None => {}
    }
    let (lots, held_overage) = reserved(conn, hold.usage)?;
    let plan = settle_plan(&lots, held_overage, actual).ok_or(LedgerError::Overflow)?;
    apply(conn, &hold, plan, HistoryKind::Settle, at)?;
    resolve(conn, hold.usage, Resolution::Settled, actual, detail, at)?;
    charge_of(
        conn,
        site.tz,
        hold.usage,
        Some(&hold.member),
        &hold.payable,
        at,
        false,
    )
}

/// Voids a hold: everything it reserved goes back. Voiding twice is a no-op;
/// voiding a settled hold is an error.
pub fn void(conn: &Connection, key: &str, reason: &str, at: Ts) -> Result<()> {
    let hold = find_hold(conn, key)?;
    let at = at.max(hold.at);
    match resolution(conn, hold.usage)? {
        Some((outcome, _)) if Resolution::parse(&outcome) == Resolution::Voided => return Ok(()),
        Some((outcome, _)) => {
            return Err(LedgerError::AlreadyResolved {
                key: key.to_string(),
                outcome,
            })
        }
        None => {}
    }
    let (lots, held_overage) = reserved(conn, hold.usage)?;
    let plan = settle_plan(&lots, held_overage, 0).ok_or(LedgerError::Overflow)?;
    apply(conn, &hold, plan, HistoryKind::Void, at)?;
    resolve(conn, hold.usage, Resolution::Voided, 0, reason, at)
}
