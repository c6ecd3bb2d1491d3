//! A member's statement: opening balance, a line per event and credit in
//! time order, closing balance. Lines stream: they are read from two
//! cursors (history and overage) merged by time, and each is handed on as
//! soon as nothing later can change it, so a statement of years holds one
//! instant's lines in memory, not all of them.

use super::{balances, describe_usage, members, Balance};
use crate::ledger::{add, LedgerError, Result, Ts, PRINTING};
use rusqlite::{params, Connection, Rows};
use serde::Serialize;

/// One line of a member's statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatementLine {
    pub at: Ts,
    /// grant, debit, hold, settle, void, expire, adjust, refund.
    pub kind: String,
    /// `printing` or a time credit id.
    pub credit: String,
    /// Change to the member's credit (negative when spent).
    pub amount: i64,
    /// Change to the member's overage account.
    pub overage: i64,
    /// `cents` or `minutes`.
    pub unit: String,
    pub description: String,
    /// The usage's idempotency key, for `tallyd refund`.
    pub usage_key: Option<String>,
}

/// A statement, collected: opening balance, lines, closing balance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Statement {
    pub member: String,
    pub name: String,
    pub from: Ts,
    pub to: Ts,
    pub opening: Balance,
    pub lines: Vec<StatementLine>,
    pub closing: Balance,
}

/// A statement's head: who, the period, and the balances either side of it.
/// Its lines come from [`statement_lines`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementEnds {
    pub member: String,
    pub name: String,
    pub opening: Balance,
    pub closing: Balance,
}

/// `member`'s name and balances at the start and end of `[from, to)`.
pub fn statement_ends(conn: &Connection, member: &str, from: Ts, to: Ts) -> Result<StatementEnds> {
    let mut who = members(conn, Some(member))?;
    let (id, name, _) = who.remove(0);
    let opening = balances(conn, Some(&id), from - 1)?.remove(0);
    let closing = balances(conn, Some(&id), to - 1)?.remove(0);
    Ok(StatementEnds {
        member: id,
        name,
        opening,
        closing,
    })
}

/// A member's statement for `[from, to)`, its lines collected.
pub fn statement(conn: &Connection, member: &str, from: Ts, to: Ts) -> Result<Statement> {
    let ends = statement_ends(conn, member, from, to)?;
    let mut lines = Vec::new();
    statement_lines(conn, &ends.member, from, to, |line| {
        lines.push(line);
        Ok::<(), LedgerError>(())
    })?;
    Ok(Statement {
        member: ends.member,
        name: ends.name,
        from,
        to,
        opening: ends.opening,
        lines,
        closing: ends.closing,
    })
}

/// Hands `emit` each line of `member`'s statement for `[from, to)` in time
/// order (history order within an instant). The history rows of one usage,
/// kind and credit (a debit spread over lots) are one line; the overage of
/// a usage and kind joins that line, or is a line of its own. A usage's
/// history and overage rows share their instant, so the lines of one
/// instant are complete once both cursors have passed it.
pub fn statement_lines<E: From<LedgerError>>(
    conn: &Connection,
    member: &str,
    from: Ts,
    to: Ts,
    mut emit: impl FnMut(StatementLine) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    let mut credit_stmt = conn
        .prepare_cached(CREDIT_ROWS)
        .map_err(LedgerError::from)?;
    let mut overage_stmt = conn
        .prepare_cached(OVERAGE_ROWS)
        .map_err(LedgerError::from)?;
    let mut credits = Cursor::new(
        credit_stmt
            .query(params![member, from, to])
            .map_err(LedgerError::from)?,
        credit_row,
    )?;
    let mut overages = Cursor::new(
        overage_stmt
            .query(params![member, from, to])
            .map_err(LedgerError::from)?,
        overage_row,
    )?;
    let mut instant: Vec<UsageLine> = Vec::new();
    loop {
        let next = match (credits.at(), overages.at()) {
            (None, None) => None,
            (Some(c), Some(o)) => Some(c.min(o)),
            (c, o) => c.or(o),
        };
        if instant
            .first()
            .is_some_and(|(_, first)| Some(first.at) != next)
        {
            for (_, line) in instant.drain(..) {
                emit(line)?;
            }
        }
        let Some(at) = next else { break };
        // At one instant, every credit line before any overage joins one.
        if credits.at() == Some(at) {
            if let Some(row) = credits.take()? {
                join_credit(&mut instant, row)?;
            }
        } else if let Some(row) = overages.take()? {
            join_overage(&mut instant, row)?;
        }
    }
    Ok(())
}

/// A statement line and the usage it belongs to (`None` for a lot's own
/// events: a grant, an expiry, a void, an adjustment).
type UsageLine = (Option<i64>, StatementLine);

/// A history row's line, added to the previous line of the same instant
/// when both are of one usage, kind and credit.
fn join_credit(instant: &mut Vec<UsageLine>, (usage, line): UsageLine) -> Result<()> {
    if let Some((last_usage, last)) = instant.last_mut() {
        if usage.is_some()
            && *last_usage == usage
            && last.kind == line.kind
            && last.credit == line.credit
        {
            last.amount = add(last.amount, line.amount)?;
            return Ok(());
        }
    }
    instant.push((usage, line));
    Ok(())
}

/// An overage row's amount, added to the first line of the same instant,
/// usage and kind; or its own line when there is none.
fn join_overage(instant: &mut Vec<UsageLine>, (usage, line): UsageLine) -> Result<()> {
    let same = instant
        .iter_mut()
        .find(|(u, l)| *u == usage && l.kind == line.kind);
    match same {
        Some((_, joined)) => joined.overage = add(joined.overage, line.overage)?,
        None => instant.push((usage, line)),
    }
    Ok(())
}

/// A query's rows, one read ahead, each made a line as it is read.
struct Cursor<'s> {
    rows: Rows<'s>,
    line: fn(&rusqlite::Row<'_>) -> Result<UsageLine>,
    ahead: Option<UsageLine>,
}

impl<'s> Cursor<'s> {
    fn new(rows: Rows<'s>, line: fn(&rusqlite::Row<'_>) -> Result<UsageLine>) -> Result<Self> {
        let mut cursor = Cursor {
            rows,
            line,
            ahead: None,
        };
        cursor.advance()?;
        Ok(cursor)
    }

    fn advance(&mut self) -> Result<()> {
        self.ahead = match self.rows.next()? {
            Some(r) => Some((self.line)(r)?),
            None => None,
        };
        Ok(())
    }

    fn at(&self) -> Option<Ts> {
        self.ahead.as_ref().map(|(_, l)| l.at)
    }

    /// The line read ahead, and the next read.
    fn take(&mut self) -> Result<Option<UsageLine>> {
        let line = self.ahead.take();
        self.advance()?;
        Ok(line)
    }
}

/// The changes to a member's lots in a period, by time then history order.
const CREDIT_ROWS: &str =
    "SELECT h.at, h.kind, l.credit, h.delta, h.usage_id, h.note, l.source, u.origin, u.printer,
            u.resource, CASE WHEN h.kind = 'settle' THEN COALESCE(hr.detail, u.detail)
            ELSE u.detail END, u.key,
            (SELECT g.note FROM history g WHERE g.lot_id = l.id AND g.kind = 'grant' ORDER BY g.id LIMIT 1)
     FROM history h JOIN lots l ON l.id = h.lot_id LEFT JOIN usages u ON u.id = h.usage_id
     LEFT JOIN hold_resolutions hr ON hr.usage_id = u.id AND hr.outcome = 'settled'
     WHERE l.member_id = ?1 AND h.at >= ?2 AND h.at < ?3 ORDER BY h.at, h.id";

/// A member's overage rows in a period, by time then id.
const OVERAGE_ROWS: &str =
    "SELECT o.at, o.kind, o.unit, o.amount, o.usage_id, u.origin, u.printer, u.resource,
            CASE WHEN o.kind = 'settle' THEN COALESCE(hr.detail, u.detail) ELSE u.detail END,
            u.key, COALESCE(u.resource_type, 'printing')
     FROM overage o JOIN usages u ON u.id = o.usage_id
     LEFT JOIN hold_resolutions hr ON hr.usage_id = u.id AND hr.outcome = 'settled'
     WHERE o.member_id = ?1 AND o.at >= ?2 AND o.at < ?3 ORDER BY o.at, o.id";

fn credit_row(r: &rusqlite::Row<'_>) -> Result<UsageLine> {
    Ok((r.get(4)?, history_line(r)?))
}

fn overage_row(r: &rusqlite::Row<'_>) -> Result<UsageLine> {
    let kind: String = r.get(1)?;
    let amount: i64 = r.get(3)?;
    Ok((r.get(4)?, overage_line(r, kind, amount)?))
}

/// One history row (as [`CREDIT_ROWS`] selects it) as a statement line: its
/// usage described, with the row's note; or the note; or the kind and the
/// lot's source.
fn history_line(r: &rusqlite::Row<'_>) -> Result<StatementLine> {
    let kind: String = r.get(1)?;
    let credit: String = r.get(2)?;
    let note: String = r.get(5)?;
    let source: String = r.get(6)?;
    let description = match r.get::<_, Option<String>>(7)? {
        Some(origin) => {
            let detail: String = r.get(10)?;
            let d = describe_usage(
                &origin,
                r.get::<_, Option<String>>(8)?.as_deref(),
                r.get::<_, Option<String>>(9)?.as_deref(),
                &detail,
            );
            if note.is_empty() {
                d
            } else {
                format!("{d} ({note})")
            }
        }
        // An expiry (or another row without a note) names the lot: the
        // plan benefit and period, product or grant it was issued for.
        None if note.is_empty() => match r.get::<_, Option<String>>(12)? {
            Some(granted) if !granted.is_empty() && kind != "grant" => {
                format!("{kind}: {granted}")
            }
            _ => format!("{kind} ({source})"),
        },
        None => note,
    };
    let unit = if credit == PRINTING {
        "cents"
    } else {
        "minutes"
    };
    Ok(StatementLine {
        at: r.get(0)?,
        kind,
        credit,
        amount: r.get(3)?,
        overage: 0,
        unit: unit.into(),
        description,
        usage_key: r.get(11)?,
    })
}

/// An overage row (as [`OVERAGE_ROWS`] selects it) with no credit line of
/// its own usage and kind: a line that changes only the overage account.
fn overage_line(r: &rusqlite::Row<'_>, kind: String, amount: i64) -> Result<StatementLine> {
    let origin: String = r.get(5)?;
    let detail: String = r.get(8)?;
    let unit: String = r.get(2)?;
    Ok(StatementLine {
        at: r.get(0)?,
        kind,
        credit: if unit == "cents" {
            PRINTING.into()
        } else {
            r.get(10)?
        },
        amount: 0,
        overage: amount,
        unit,
        description: describe_usage(
            &origin,
            r.get::<_, Option<String>>(6)?.as_deref(),
            r.get::<_, Option<String>>(7)?.as_deref(),
            &detail,
        ),
        usage_key: r.get(9)?,
    })
}
