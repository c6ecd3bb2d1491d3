//! Usage: debits, two-phase holds (hold → settle or void) and refunds.
//!
//! Every usage carries a caller-chosen idempotency key. The same key with the
//! same content returns the first result (stored with the usage) and changes nothing; the same key
//! with different content is [`LedgerError::KeyConflict`] and charges nothing.
//! What credit cannot cover goes to the member's overage account; no lot ever
//! goes below zero.

use super::allocate::{allocate, Candidate, SourceKind};
use super::{LedgerError, OveragePolicy, PolicyKind, Result, Site, Ts};
use crate::clock;
use crate::money::Unit;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

/// What a usage is paid with.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case", tag = "credit")]
pub enum Payable {
    /// Printing credit, in cents.
    Printing,
    /// Time credit valid for this resource type, in minutes.
    Time { resource_type: String },
}

impl Payable {
    pub fn unit(&self) -> Unit {
        match self {
            Payable::Printing => Unit::Cents,
            Payable::Time { .. } => Unit::Minutes,
        }
    }

    fn kind_str(&self) -> &'static str {
        match self {
            Payable::Printing => "printing",
            Payable::Time { .. } => "time",
        }
    }

    fn resource_type(&self) -> Option<&str> {
        match self {
            Payable::Printing => None,
            Payable::Time { resource_type } => Some(resource_type),
        }
    }

    fn from_row(kind: &str, resource_type: Option<String>) -> Payable {
        match (kind, resource_type) {
            ("time", Some(resource_type)) => Payable::Time { resource_type },
            _ => Payable::Printing,
        }
    }
}

/// What produced a usage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "origin")]
pub enum Origin {
    Print { printer: String },
    Session { resource: String },
    Manual,
}

impl Origin {
    fn parts(&self) -> (&'static str, Option<&str>, Option<&str>) {
        match self {
            Origin::Print { printer } => ("print", Some(printer), None),
            Origin::Session { resource } => ("session", None, Some(resource)),
            Origin::Manual => ("manual", None, None),
        }
    }
}

/// One usage to charge (or, as a hold, to reserve).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRequest {
    /// Idempotency key, e.g. `printer:hp-lobby:uuid:…`.
    pub key: String,
    /// `None` records unattributed usage (a print job no member owns).
    pub member: Option<String>,
    pub origin: Origin,
    pub payable: Payable,
    /// Cents or minutes, per `payable`.
    pub amount: i64,
    /// Facts behind the amount (impressions, colour, minutes…), as JSON text.
    pub detail: String,
    pub at: Ts,
}

/// The result of a debit, hold or settle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Charge {
    pub usage_id: i64,
    /// Taken from lots.
    pub covered: i64,
    /// Recorded on the member's overage account.
    pub overage: i64,
    /// What the member has left for this kind of usage afterwards.
    pub balance_after: i64,
    /// True when the key had been seen before and nothing changed.
    pub replayed: bool,
}

/// A hold is placed, or refused by the member's overage policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum HoldOutcome {
    Placed(Charge),
    Refused {
        available: i64,
        needed: i64,
        policy: PolicyKind,
    },
}

/// What a refund gave back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refund {
    pub usage_id: i64,
    /// Returned to the lots it came from.
    pub restored: i64,
    /// Granted anew because the original lot had expired or been voided.
    pub regranted: i64,
    /// Taken off the overage account.
    pub overage_reversed: i64,
}

fn fingerprint(req: &UsageRequest, is_hold: bool) -> String {
    serde_json::json!([
        req.member,
        req.origin,
        req.payable,
        req.amount,
        is_hold,
        req.detail
    ])
    .to_string()
}

/// Lots of `member` that can pay for `payable` at `at`.
pub fn candidates(
    conn: &Connection,
    member: &str,
    payable: &Payable,
    at: Ts,
) -> Result<Vec<Candidate>> {
    const COLS: &str = "SELECT id, remaining, expires_at, source, valid_from FROM lots
        WHERE member_id = ?1 AND remaining > 0 AND valid_from <= ?2
          AND (expires_at IS NULL OR expires_at > ?2) AND voided_at IS NULL";
    let map = |r: &rusqlite::Row<'_>| -> rusqlite::Result<Candidate> {
        let source: String = r.get(3)?;
        Ok(Candidate {
            lot: r.get(0)?,
            remaining: r.get(1)?,
            expires_at: r.get(2)?,
            source: SourceKind::parse(&source).unwrap_or(SourceKind::Adjustment),
            valid_from: r.get(4)?,
        })
    };
    let rows = match payable {
        Payable::Printing => {
            let mut stmt = conn.prepare_cached(&format!("{COLS} AND credit = 'printing'"))?;
            let rows = stmt.query_map(params![member, at], map)?;
            rows.collect::<rusqlite::Result<Vec<_>>>()?
        }
        Payable::Time { resource_type } => {
            let mut stmt = conn.prepare_cached(&format!(
                "{COLS} AND credit IN (SELECT credit_id FROM time_credit_types WHERE resource_type = ?3)"
            ))?;
            let rows = stmt.query_map(params![member, at, resource_type], map)?;
            rows.collect::<rusqlite::Result<Vec<_>>>()?
        }
    };
    Ok(rows)
}

/// What `member` can spend on `payable` at `at`.
pub fn available(conn: &Connection, member: &str, payable: &Payable, at: Ts) -> Result<i64> {
    Ok(candidates(conn, member, payable, at)?
        .iter()
        .map(|c| c.remaining)
        .sum())
}

/// The member's own overage policy, else the site default.
pub fn policy_of(conn: &Connection, site: &Site, member: &str) -> Result<OveragePolicy> {
    let row = conn
        .prepare_cached(
            "SELECT overage_policy, overage_cap_cents, overage_cap_minutes FROM members WHERE id = ?1",
        )?
        .query_row([member], |r| {
            Ok((r.get::<_, Option<String>>(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    match row {
        None => Err(LedgerError::UnknownMember(member.to_string())),
        Some((Some(kind), cap_cents, cap_minutes)) => Ok(OveragePolicy {
            kind: PolicyKind::parse(&kind).unwrap_or(site.default_policy.kind),
            cap_cents,
            cap_minutes,
        }),
        Some((None, _, _)) => Ok(site.default_policy),
    }
}

fn member_exists(conn: &Connection, member: &str) -> Result<()> {
    let found: Option<i64> = conn
        .prepare_cached("SELECT 1 FROM members WHERE id = ?1")?
        .query_row([member], |r| r.get(0))
        .optional()?;
    found
        .map(|_| ())
        .ok_or_else(|| LedgerError::UnknownMember(member.to_string()))
}

/// Overage the member has run up in `unit` since `since`.
pub fn overage_since(conn: &Connection, member: &str, unit: Unit, since: Ts) -> Result<i64> {
    Ok(conn
        .prepare_cached(
            "SELECT COALESCE(SUM(amount), 0) FROM overage WHERE member_id = ?1 AND unit = ?2 AND at >= ?3",
        )?
        .query_row(params![member, unit.as_str(), since], |r| r.get(0))?)
}

fn take_from_lot(
    conn: &Connection,
    lot: i64,
    amount: i64,
    kind: &str,
    usage: Option<i64>,
    note: &str,
    at: Ts,
) -> Result<()> {
    conn.prepare_cached("UPDATE lots SET remaining = remaining - ?2 WHERE id = ?1")?
        .execute(params![lot, amount])?;
    conn.prepare_cached(
        "INSERT INTO history (lot_id, kind, delta, granted_delta, usage_id, note, at) VALUES (?1, ?2, ?3, 0, ?4, ?5, ?6)",
    )?
    .execute(params![lot, kind, -amount, usage, note, at])?;
    Ok(())
}

/// Returns reserved credit to a lot. If the lot can no longer be spent (expired
/// or voided since), the returned amount is expired or voided at once so no
/// credit is left stranded on a dead lot. That second row belongs to the lot,
/// not the usage (no `usage_id`): the usage did not spend it.
fn give_back(
    conn: &Connection,
    lot: i64,
    amount: i64,
    kind: &str,
    usage: i64,
    at: Ts,
) -> Result<()> {
    take_from_lot(conn, lot, -amount, kind, Some(usage), "", at)?;
    let (expires_at, voided_at): (Option<Ts>, Option<Ts>) = conn
        .prepare_cached("SELECT expires_at, voided_at FROM lots WHERE id = ?1")?
        .query_row([lot], |r| Ok((r.get(0)?, r.get(1)?)))?;
    if voided_at.is_some() {
        take_from_lot(
            conn,
            lot,
            amount,
            "void",
            None,
            "returned to a voided lot",
            at,
        )?;
    } else if expires_at.is_some_and(|e| e <= at) {
        take_from_lot(
            conn,
            lot,
            amount,
            "expire",
            None,
            "returned to an expired lot",
            at,
        )?;
    }
    Ok(())
}

fn add_overage(
    conn: &Connection,
    member: &str,
    usage: i64,
    unit: Unit,
    kind: &str,
    amount: i64,
    at: Ts,
) -> Result<()> {
    if amount != 0 {
        conn.prepare_cached(
            "INSERT INTO overage (member_id, usage_id, unit, kind, amount, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![member, usage, unit.as_str(), kind, amount, at])?;
    }
    Ok(())
}

/// The usage's totals so far: taken from lots, and on the overage account.
/// History rows of a usage are found through its member's lots (there is no
/// index on `history.usage_id`: every index costs each debit's commit a page).
fn totals(conn: &Connection, usage: i64, member: Option<&str>) -> Result<(i64, i64)> {
    let covered: i64 = match member {
        Some(m) => conn
            .prepare_cached(
                "SELECT COALESCE(-SUM(delta), 0) FROM history
                 WHERE lot_id IN (SELECT id FROM lots WHERE member_id = ?2) AND usage_id = ?1 AND kind IN ('debit', 'hold', 'settle', 'void')",
            )?
            .query_row(params![usage, m], |r| r.get(0))?,
        None => 0,
    };
    let overage: i64 = conn
        .prepare_cached(
            "SELECT COALESCE(SUM(amount), 0) FROM overage WHERE usage_id = ?1 AND kind <> 'refund'",
        )?
        .query_row([usage], |r| r.get(0))?;
    Ok((covered, overage))
}

fn charge_of(
    conn: &Connection,
    usage: i64,
    member: Option<&str>,
    payable: &Payable,
    at: Ts,
    replayed: bool,
) -> Result<Charge> {
    let (covered, overage) = totals(conn, usage, member)?;
    let balance_after = match member {
        Some(m) => available(conn, m, payable, at)?,
        None => 0,
    };
    Ok(Charge {
        usage_id: usage,
        covered,
        overage,
        balance_after,
        replayed,
    })
}

/// Charges a usage that already happened. What credit cannot cover is
/// recorded as overage whatever the policy: usage is never lost.
pub fn debit(conn: &Connection, site: &Site, req: &UsageRequest) -> Result<Charge> {
    match record(conn, site, req, false)? {
        HoldOutcome::Placed(charge) => Ok(charge),
        // Invariant: `record` applies the overage policy to holds only.
        HoldOutcome::Refused { .. } => unreachable!("a debit is never refused"),
    }
}

/// Reserves the estimate of a usage about to happen, if the member's overage
/// policy allows it.
pub fn hold(conn: &Connection, site: &Site, req: &UsageRequest) -> Result<HoldOutcome> {
    if req.member.is_none() {
        return Err(LedgerError::UnknownMember("(no member)".into()));
    }
    record(conn, site, req, true)
}

fn record(
    conn: &Connection,
    site: &Site,
    req: &UsageRequest,
    is_hold: bool,
) -> Result<HoldOutcome> {
    if req.amount < 0 {
        return Err(LedgerError::InvalidAmount {
            what: "zero or more",
            amount: req.amount,
        });
    }
    let fp = fingerprint(req, is_hold);
    let seen: Option<(String, Charge)> = conn
        .prepare_cached(
            "SELECT fingerprint, id, covered, overage, balance_after FROM usages WHERE key = ?1",
        )?
        .query_row([&req.key], |r| {
            Ok((
                r.get(0)?,
                Charge {
                    usage_id: r.get(1)?,
                    covered: r.get(2)?,
                    overage: r.get(3)?,
                    balance_after: r.get(4)?,
                    replayed: true,
                },
            ))
        })
        .optional()?;
    if let Some((first_fp, first)) = seen {
        if first_fp != fp {
            return Err(LedgerError::KeyConflict(req.key.clone()));
        }
        return Ok(HoldOutcome::Placed(first));
    }
    let unit = req.payable.unit();
    // What the member could spend before this usage, and how it is paid.
    let (available, allocation) = match &req.member {
        Some(member) => {
            let lots = candidates(conn, member, &req.payable, req.at)?;
            if lots.is_empty() {
                // Only then can an unknown member hide behind "no credit".
                member_exists(conn, member)?;
            }
            let available: i64 = lots.iter().map(|c| c.remaining).sum();
            (available, allocate(lots, req.amount))
        }
        None => (0, Default::default()),
    };
    if let (true, Some(member)) = (is_hold, &req.member) {
        if let Some(refusal) = refuse(conn, site, member, unit, req, allocation.uncovered)? {
            return Ok(refusal);
        }
    }
    let (origin, printer, resource) = req.origin.parts();
    // Unattributed usage is recorded, but owed by nobody.
    let overage = if req.member.is_some() {
        allocation.uncovered
    } else {
        0
    };
    conn.prepare_cached(
        "INSERT INTO usages (key, fingerprint, member_id, origin, printer, resource, credit_kind,
                             resource_type, amount, is_hold, detail, at, covered, overage, balance_after)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    )?
    .execute(params![
        req.key,
        fp,
        req.member,
        origin,
        printer,
        resource,
        req.payable.kind_str(),
        req.payable.resource_type(),
        req.amount,
        is_hold,
        req.detail,
        req.at,
        allocation.covered(),
        overage,
        available - allocation.covered()
    ])?;
    let usage = conn.last_insert_rowid();
    let kind = if is_hold { "hold" } else { "debit" };
    for &(lot, take) in &allocation.takes {
        take_from_lot(conn, lot, take, kind, Some(usage), "", req.at)?;
    }
    if let Some(member) = &req.member {
        add_overage(
            conn,
            member,
            usage,
            unit,
            kind,
            allocation.uncovered,
            req.at,
        )?;
    }
    let charge = Charge {
        usage_id: usage,
        covered: allocation.covered(),
        overage,
        balance_after: available - allocation.covered(),
        replayed: false,
    };
    Ok(HoldOutcome::Placed(charge))
}

/// Applies the overage policy to a hold whose estimate leaves `uncovered`.
fn refuse(
    conn: &Connection,
    site: &Site,
    member: &str,
    unit: Unit,
    req: &UsageRequest,
    uncovered: i64,
) -> Result<Option<HoldOutcome>> {
    if uncovered == 0 {
        return Ok(None);
    }
    let policy = policy_of(conn, site, member)?;
    let refused = HoldOutcome::Refused {
        available: req.amount - uncovered,
        needed: req.amount,
        policy: policy.kind,
    };
    let cap = match unit {
        Unit::Cents => policy.cap_cents,
        Unit::Minutes => policy.cap_minutes,
    };
    match (policy.kind, cap) {
        (PolicyKind::CreditsOnly, _) => Ok(Some(refused)),
        (PolicyKind::CreditsThenInvoice, None) => Ok(None),
        (PolicyKind::CreditsThenInvoice, Some(cap)) => {
            let so_far = overage_since(conn, member, unit, clock::month_start(site.tz, req.at))?;
            Ok((so_far + uncovered > cap).then_some(refused))
        }
    }
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

fn resolution(conn: &Connection, usage: i64) -> Result<Option<(String, i64)>> {
    Ok(conn
        .prepare_cached("SELECT outcome, actual FROM hold_resolutions WHERE usage_id = ?1")?
        .query_row([usage], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

/// The lots a hold reserved from, in the order it took them, and the overage
/// it reserved.
fn reserved(conn: &Connection, usage: i64, member: &str) -> Result<(Vec<(i64, i64)>, i64)> {
    let mut stmt = conn.prepare_cached(
        "SELECT lot_id, -SUM(delta) FROM history WHERE lot_id IN (SELECT id FROM lots WHERE member_id = ?2) AND usage_id = ?1 AND kind = 'hold'
         GROUP BY lot_id ORDER BY MIN(id)",
    )?;
    let lots = stmt
        .query_map(params![usage, member], |r| Ok((r.get(0)?, r.get(1)?)))?
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
    outcome: &str,
    actual: i64,
    detail: &str,
    at: Ts,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO hold_resolutions (usage_id, outcome, actual, detail, at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![usage, outcome, actual, detail, at])?;
    Ok(())
}

/// Settles a hold to what the usage really cost. Less than reserved: the rest
/// goes back (overage first, then the lots it came from, last-taken first).
/// More: the difference is debited like any usage. Settling again with the
/// same amount is a replay; anything else on a resolved hold is an error.
pub fn settle(
    conn: &Connection,
    _site: &Site,
    key: &str,
    actual: i64,
    detail: &str,
    at: Ts,
) -> Result<Charge> {
    if actual < 0 {
        return Err(LedgerError::InvalidAmount {
            what: "zero or more",
            amount: actual,
        });
    }
    let hold = find_hold(conn, key)?;
    // A clock that stepped back must not date the settle before its hold.
    let at = at.max(hold.at);
    match resolution(conn, hold.usage)? {
        Some((outcome, was)) if outcome == "settled" && was == actual => {
            return charge_of(
                conn,
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
    let unit = hold.payable.unit();
    let (lots, held_overage) = reserved(conn, hold.usage, &hold.member)?;
    let held: i64 = lots.iter().map(|(_, n)| n).sum::<i64>() + held_overage;
    if actual >= held {
        let extra = allocate(
            candidates(conn, &hold.member, &hold.payable, at)?,
            actual - held,
        );
        for &(lot, take) in &extra.takes {
            take_from_lot(conn, lot, take, "settle", Some(hold.usage), "", at)?;
        }
        add_overage(
            conn,
            &hold.member,
            hold.usage,
            unit,
            "settle",
            extra.uncovered,
            at,
        )?;
    } else {
        let mut back = held - actual;
        let from_overage = back.min(held_overage);
        add_overage(
            conn,
            &hold.member,
            hold.usage,
            unit,
            "settle",
            -from_overage,
            at,
        )?;
        back -= from_overage;
        for &(lot, took) in lots.iter().rev() {
            if back == 0 {
                break;
            }
            let give = took.min(back);
            give_back(conn, lot, give, "settle", hold.usage, at)?;
            back -= give;
        }
    }
    resolve(conn, hold.usage, "settled", actual, detail, at)?;
    charge_of(
        conn,
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
        Some((outcome, _)) if outcome == "voided" => return Ok(()),
        Some((outcome, _)) => {
            return Err(LedgerError::AlreadyResolved {
                key: key.to_string(),
                outcome,
            })
        }
        None => {}
    }
    let (lots, held_overage) = reserved(conn, hold.usage, &hold.member)?;
    for &(lot, took) in lots.iter().rev() {
        give_back(conn, lot, took, "void", hold.usage, at)?;
    }
    add_overage(
        conn,
        &hold.member,
        hold.usage,
        hold.payable.unit(),
        "void",
        -held_overage,
        at,
    )?;
    resolve(conn, hold.usage, "voided", 0, reason, at)
}

/// A manager's refund of a charged usage: what it took goes back to its lots
/// (or, where a lot has expired or been voided since, into a new lot that
/// never expires), and its overage is reversed. Each usage refunds once.
pub fn refund(conn: &Connection, key: &str, reason: &str, at: Ts) -> Result<Refund> {
    #[allow(clippy::type_complexity)]
    let row: Option<(i64, Option<String>, String, Option<String>, bool, i64, Ts)> = conn
        .prepare_cached("SELECT id, member_id, credit_kind, resource_type, is_hold, amount, at FROM usages WHERE key = ?1")?
        .query_row([key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)))
        .optional()?;
    let Some((usage, member, kind, rt, is_hold, amount, used_at)) = row else {
        return Err(LedgerError::UnknownUsage(key.to_string()));
    };
    // A refund is never dated before what it refunds (settles included).
    let last: Option<Ts> = match &member {
        Some(m) => conn
            .prepare_cached("SELECT MAX(at) FROM history WHERE lot_id IN (SELECT id FROM lots WHERE member_id = ?2) AND usage_id = ?1")?
            .query_row(params![usage, m], |r| r.get(0))?,
        None => None,
    };
    let at = at.max(used_at).max(last.unwrap_or(used_at));
    let refunded: Option<i64> = conn
        .prepare_cached("SELECT 1 FROM refunds WHERE usage_id = ?1")?
        .query_row([usage], |r| r.get(0))
        .optional()?;
    if refunded.is_some() {
        return Err(LedgerError::AlreadyRefunded(key.to_string()));
    }
    if is_hold {
        match resolution(conn, usage)? {
            None => return Err(LedgerError::HoldOpen(key.to_string())),
            Some((outcome, _)) if outcome == "voided" => {
                return Err(LedgerError::NothingToRefund(key.to_string()))
            }
            Some(_) => {}
        }
    }
    let mut out = Refund {
        usage_id: usage,
        restored: 0,
        regranted: 0,
        overage_reversed: 0,
    };
    if let Some(member) = &member {
        let mut stmt = conn.prepare_cached(
            "SELECT h.lot_id, -SUM(h.delta), l.credit,
                    (l.voided_at IS NOT NULL OR (l.expires_at IS NOT NULL AND l.expires_at <= ?2))
             FROM history h JOIN lots l ON l.id = h.lot_id
             WHERE h.lot_id IN (SELECT id FROM lots WHERE member_id = ?3) AND h.usage_id = ?1
               AND h.kind IN ('debit', 'hold', 'settle', 'void')
             GROUP BY h.lot_id ORDER BY MIN(h.id)",
        )?;
        let taken = stmt
            .query_map(params![usage, at, member], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect::<rusqlite::Result<Vec<(i64, i64, String, bool)>>>()?;
        let note = format!("refunded: {reason}");
        for (lot, net, credit, dead) in taken {
            if net <= 0 {
                continue;
            }
            if dead {
                super::lots::grant(
                    conn,
                    &super::lots::GrantRequest {
                        member: member.clone(),
                        credit,
                        amount: net,
                        valid_from: at,
                        expires_at: None,
                        source: SourceKind::Adjustment,
                        source_key: format!("refund:{usage}:lot:{lot}"),
                        note: format!("{note} (lot {lot} is no longer usable)"),
                        at,
                    },
                )?;
                out.regranted += net;
            } else {
                take_from_lot(conn, lot, -net, "refund", Some(usage), &note, at)?;
                out.restored += net;
            }
        }
        let (_, overage) = totals(conn, usage, Some(member))?;
        let unit = Payable::from_row(&kind, rt).unit();
        add_overage(conn, member, usage, unit, "refund", -overage, at)?;
        out.overage_reversed = overage;
        if out.restored + out.regranted + overage == 0 {
            return Err(LedgerError::NothingToRefund(key.to_string()));
        }
    } else if amount == 0 {
        return Err(LedgerError::NothingToRefund(key.to_string()));
    }
    conn.prepare_cached("INSERT INTO refunds (usage_id, reason, at) VALUES (?1, ?2, ?3)")?
        .execute(params![usage, reason, at])?;
    Ok(out)
}
