//! Escrow at a site whose lots the centre issues (`[central] issue =
//! "central"`, issue 18; multi-site.md 3.3-3.6): the slices of chain lots
//! the centre placed here, each a local lot keyed `escrow:<slice id>`, so
//! usage spends them in today's consumption order and the outbox tells the
//! centre what each usage took from which slice; which slices are due back
//! to the centre; and the offline allowance a hold may use while the
//! centre cannot be reached.

use super::allocate::SourceKind;
use super::lots::{self, GrantRequest};
use super::{Result, Ts};
use crate::money::Unit;
use rusqlite::{params, Connection, OptionalExtension};

pub use crate::site::Issue;

/// Records who issues this ledger's lots.
pub fn set_issue(conn: &Connection, issue: Issue) -> Result<()> {
    conn.execute(
        "INSERT INTO lot_issue (id, issue) VALUES (1, ?1)
         ON CONFLICT (id) DO UPDATE SET issue = excluded.issue WHERE issue <> excluded.issue",
        [issue.as_str()],
    )?;
    Ok(())
}

/// Whether the centre issues this ledger's lots.
pub fn issued_centrally(conn: &Connection) -> Result<bool> {
    let issue: Option<String> = conn
        .query_row("SELECT issue FROM lot_issue", [], |r| r.get(0))
        .optional()?;
    Ok(issue.as_deref() == Some("central"))
}

/// A slice of a chain lot the centre placed here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slice {
    /// The centre's id of the slice.
    pub id: i64,
    /// `printing` or a time credit id.
    pub credit: String,
    pub amount: i64,
    /// The chain lot's source (`plan`, `product`, `account`), which ranks
    /// it in consumption order.
    pub source: String,
    pub valid_from: Ts,
    pub expires_at: Option<Ts>,
}

/// The source key of a slice's local lot.
pub fn slice_key(slice: i64) -> String {
    format!("escrow:{slice}")
}

/// Keeps the slices the centre placed for `member` under `request_id` as
/// local lots, each once (a slice already here is left as it is); a slice
/// the centre recalled before it arrived is kept voided, to be returned.
/// What was placed now and may be spent.
pub fn place(
    conn: &Connection,
    member: &str,
    request_id: &str,
    slices: &[Slice],
    at: Ts,
) -> Result<i64> {
    let mut placed = 0i64;
    for s in slices {
        let here: Option<i64> = conn
            .prepare_cached("SELECT 1 FROM escrow_slices WHERE slice_id = ?1")?
            .query_row([s.id], |r| r.get(0))
            .optional()?;
        if here.is_some() {
            continue;
        }
        let granted = lots::grant(
            conn,
            &GrantRequest {
                member: member.to_string(),
                credit: s.credit.clone(),
                amount: s.amount,
                valid_from: s.valid_from,
                expires_at: s.expires_at,
                source: SourceKind::parse(&s.source).unwrap_or(SourceKind::Adjustment),
                source_key: slice_key(s.id),
                note: format!("escrow slice {} placed by the centre", s.id),
                at,
            },
        )?;
        conn.prepare_cached(
            "INSERT INTO escrow_slices (slice_id, lot_id, request_id) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![s.id, granted.lot, request_id])?;
        let recalled: Option<i64> = conn
            .prepare_cached("SELECT 1 FROM recalled_slices WHERE slice_id = ?1")?
            .query_row([s.id], |r| r.get(0))
            .optional()?;
        if recalled.is_some() {
            lots::void_lot(conn, granted.lot, RECALLED, at)?;
            continue;
        }
        placed = placed.saturating_add(s.amount);
    }
    Ok(placed)
}

/// What `member`'s slices of `credit` still hold here at `now`.
pub fn held(conn: &Connection, member: &str, credit: &str, now: Ts) -> Result<i64> {
    Ok(conn
        .prepare_cached(
            "SELECT COALESCE(SUM(l.remaining), 0) FROM escrow_slices s JOIN lots l ON l.id = s.lot_id
             WHERE l.member_id = ?1 AND l.credit = ?2 AND l.voided_at IS NULL
               AND l.valid_from <= ?3 AND (l.expires_at IS NULL OR l.expires_at > ?3)",
        )?
        .query_row(params![member, credit, now], |r| r.get(0))?)
}

/// The id of the next escrow request for `member` and `credit` in
/// `epoch`: the same until a request placed something here, so a request
/// whose answer was lost is asked again under its id and gets the same
/// slices (the centre keeps them by id).
pub fn next_request(conn: &Connection, epoch: i64, member: &str, credit: &str) -> Result<String> {
    let done: i64 = conn
        .prepare_cached(
            "SELECT COUNT(DISTINCT s.request_id) FROM escrow_slices s JOIN lots l ON l.id = s.lot_id
             WHERE l.member_id = ?1 AND l.credit = ?2",
        )?
        .query_row(params![member, credit], |r| r.get(0))?;
    Ok(serde_json::json!([epoch, member, credit, done + 1]).to_string())
}

/// A member and credit whose slices here fell below a third of the
/// target: the top-up to ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    pub member: String,
    pub credit: String,
    pub want: i64,
}

/// Who keeps escrow at this site: members who used it since `home_since`
/// when it is their home site (or they have none), since `away_since`
/// when their home is another site (multi-site.md 3.5: 7 days at home, 24
/// hours elsewhere). `home_since` is the earlier.
#[derive(Debug, Clone)]
pub struct Active {
    /// This site's id.
    pub here: String,
    pub home_since: Ts,
    pub away_since: Ts,
}

/// SQL: since when member `m` must have used this site (`?1` its id, `?2`
/// and `?3` [`Active`]'s times).
const SINCE: &str = "(CASE WHEN m.site_id IS NOT NULL AND m.site_id <> ?1 THEN ?3 ELSE ?2 END)";

/// What to top up: for each member active here ([`Active`]), and each
/// credit they used here (printing, or a time credit paying for a resource
/// type they booked), the target ([`target`]) less what their slices hold,
/// when that holding is below 30% of the target.
pub fn needs(
    conn: &Connection,
    active: &Active,
    now: Ts,
    cents: i64,
    minutes: i64,
) -> Result<Vec<Need>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT DISTINCT u.member_id, 'printing' FROM usages u
         LEFT JOIN member_homes m ON m.member_id = u.member_id
         WHERE u.at >= ?2 AND u.at >= {SINCE} AND u.member_id IS NOT NULL
           AND u.credit_kind = 'printing'
         UNION
         SELECT DISTINCT u.member_id, t.credit_id FROM usages u
         LEFT JOIN member_homes m ON m.member_id = u.member_id
         JOIN time_credit_types t ON t.resource_type = u.resource_type
         WHERE u.at >= ?2 AND u.at >= {SINCE} AND u.member_id IS NOT NULL
           AND u.credit_kind = 'time'"
    ))?;
    let used: Vec<(String, String)> = stmt
        .query_map(
            params![active.here, active.home_since, active.away_since],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?
        .collect::<rusqlite::Result<_>>()?;
    let mut out = Vec::new();
    for (member, credit) in used {
        let target = target(conn, &member, &credit, now, cents, minutes)?;
        let have = held(conn, &member, &credit, now)?;
        if target > 0 && have.saturating_mul(10) < target.saturating_mul(3) {
            out.push(Need {
                member,
                credit,
                want: target - have,
            });
        }
    }
    Ok(out)
}

/// Seconds of spend a printing target looks back on, and of sessions a
/// time credit's.
const SPEND_WINDOW: Ts = 7 * 86_400;
const SESSION_WINDOW: Ts = 30 * 86_400;

/// What `member` should hold here of `credit` (multi-site.md 3.5):
/// printing, the larger of `cents` and twice what they printed here in 7
/// days (final amounts: a settled hold at what it settled, a voided or
/// refunded usage at nothing); a time credit, the larger of `minutes` and
/// their longest session here in 30 days on a room it pays for. A setting
/// of 0 asks for no top-ups.
fn target(
    conn: &Connection,
    member: &str,
    credit: &str,
    now: Ts,
    cents: i64,
    minutes: i64,
) -> Result<i64> {
    if credit == "printing" {
        if cents == 0 {
            return Ok(0);
        }
        let spent: i64 = conn
            .prepare_cached(
                "SELECT COALESCE(SUM(CASE WHEN u.is_hold = 0 THEN u.amount
                                          WHEN hr.outcome IS NULL THEN u.amount
                                          ELSE hr.actual END), 0)
                 FROM usages u LEFT JOIN hold_resolutions hr ON hr.usage_id = u.id
                 WHERE u.member_id = ?1 AND u.credit_kind = 'printing' AND u.at >= ?2
                   AND NOT EXISTS (SELECT 1 FROM refunds r WHERE r.usage_id = u.id)",
            )?
            .query_row(params![member, now - SPEND_WINDOW], |r| r.get(0))?;
        return Ok(cents.max(spent.saturating_mul(2)));
    }
    if minutes == 0 {
        return Ok(0);
    }
    let longest: i64 = conn
        .prepare_cached(
            "SELECT COALESCE(MAX(s.minutes), 0) FROM sessions s
             JOIN resources r ON r.id = s.resource
             JOIN time_credit_types t ON t.resource_type = r.resource_type
             WHERE s.member_id = ?1 AND t.credit_id = ?2 AND s.started_at >= ?3",
        )?
        .query_row(params![member, credit, now - SESSION_WINDOW], |r| r.get(0))?;
    Ok(minutes.max(longest))
}

/// Slices whose local lot expired or was voided by `now` and that were
/// not yet returned to the centre.
pub fn due_back(conn: &Connection, now: Ts) -> Result<Vec<i64>> {
    let mut stmt = conn.prepare_cached(
        "SELECT s.slice_id FROM escrow_slices s JOIN lots l ON l.id = s.lot_id
         WHERE s.returned_at IS NULL
           AND (l.voided_at IS NOT NULL OR (l.expires_at IS NOT NULL AND l.expires_at <= ?1))
         ORDER BY s.slice_id",
    )?;
    let ids = stmt
        .query_map([now], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(ids)
}

/// The centre took these slices back.
pub fn returned(conn: &Connection, slices: &[i64], at: Ts) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "UPDATE escrow_slices SET returned_at = ?2 WHERE slice_id = ?1 AND returned_at IS NULL",
    )?;
    for s in slices {
        stmt.execute(params![s, at])?;
    }
    Ok(())
}

/// What of `allowance` `member` may still use in `unit`: the allowance
/// less what holds and sessions used of it whose entries the centre has
/// not acknowledged (once it has, the centre knows, and the allowance is
/// whole again), and less what open room sessions reserved of it.
pub fn allowance_left(conn: &Connection, member: &str, unit: Unit, allowance: i64) -> Result<i64> {
    let used: i64 = conn
        .prepare_cached(
            "SELECT COALESCE(SUM(a.amount), 0) FROM allowance_uses a
             JOIN outbox o ON o.usage_id = a.usage_id AND o.kind = 'usage'
             JOIN outbox_site s
             WHERE a.member_id = ?1 AND a.unit = ?2 AND o.pos > (s.epoch << 40) + s.acked_seq",
        )?
        .query_row(params![member, unit.as_str()], |r| r.get(0))?;
    // Room sessions open on the allowance hold what they reserved.
    let reserved: i64 = match unit {
        Unit::Cents => 0,
        Unit::Minutes => conn
            .prepare_cached(
                "SELECT COALESCE(SUM(a.minutes), 0) FROM session_allowances a
                 JOIN sessions s ON s.id = a.session_id
                 WHERE a.member_id = ?1 AND s.ended_at IS NULL",
            )?
            .query_row([member], |r| r.get(0))?,
    };
    Ok(allowance
        .saturating_sub(used)
        .saturating_sub(reserved)
        .max(0))
}

/// Records that usage `usage` went `amount` beyond credit on the offline
/// allowance.
pub fn use_allowance(
    conn: &Connection,
    usage: i64,
    member: &str,
    unit: Unit,
    amount: i64,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO allowance_uses (usage_id, member_id, unit, amount) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![usage, member, unit.as_str(), amount])?;
    Ok(())
}

/// The time credits that pay for `resource` (a room): what a session tap
/// refused for want of minutes asks the centre for.
pub fn credits_for_resource(conn: &Connection, resource: &str) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT t.credit_id FROM resources r
         JOIN time_credit_types t ON t.resource_type = r.resource_type
         WHERE r.id = ?1 ORDER BY t.credit_id",
    )?;
    let ids = stmt
        .query_map([resource], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(ids)
}

/// The ledger took a new epoch (restored or cloned): the centre closed
/// the slices it held, so what is left of them here is voided, never
/// spent again (multi-site.md 3.8). How many slices.
pub fn forsake(conn: &Connection, at: Ts) -> Result<usize> {
    let mut stmt = conn.prepare_cached(
        "SELECT s.slice_id, s.lot_id FROM escrow_slices s WHERE s.returned_at IS NULL",
    )?;
    let held: Vec<(i64, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (_, lot) in &held {
        lots::void_lot(conn, *lot, "escrow of an older epoch of this ledger", at)?;
    }
    let ids: Vec<i64> = held.iter().map(|(s, _)| *s).collect();
    returned(conn, &ids, at)?;
    Ok(ids.len())
}

/// Voids, to return them to the centre, the slices of members no longer
/// active here ([`Active`]; placed before then): escrow idle here is
/// credit the member cannot spend at another site (multi-site.md 3.5). How
/// many.
pub fn retire_idle(conn: &Connection, active: &Active, at: Ts) -> Result<usize> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT s.lot_id FROM escrow_slices s JOIN lots l ON l.id = s.lot_id
         LEFT JOIN member_homes m ON m.member_id = l.member_id
         WHERE s.returned_at IS NULL AND l.voided_at IS NULL AND l.created_at < {SINCE}
           AND NOT EXISTS (SELECT 1 FROM usages u WHERE u.member_id = l.member_id
                           AND u.at >= ?2 AND u.at >= {SINCE})"
    ))?;
    let idle: Vec<i64> = stmt
        .query_map(
            params![active.here, active.home_since, active.away_since],
            |r| r.get(0),
        )?
        .collect::<rusqlite::Result<_>>()?;
    for lot in &idle {
        lots::void_lot(
            conn,
            *lot,
            "escrow returned: its member has not used this site lately (7 days at their home site, 24 hours elsewhere)",
            at,
        )?;
    }
    Ok(idle.len())
}

/// Where this site stands in the centre's feed: the last entry applied.
pub fn feed_cursor(conn: &Connection) -> Result<i64> {
    Ok(conn
        .prepare_cached("SELECT COALESCE((SELECT after FROM feed_cursor WHERE id = 1), 0)")?
        .query_row([], |r| r.get(0))?)
}

/// A recalled slice's history note.
const RECALLED: &str = "escrow recalled by the centre: its chain grant was shrunk or deleted";

/// One entry of the centre's feed, as this site applies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedEntry {
    pub cursor: i64,
    pub kind: String,
    pub slice: i64,
}

/// Applies the centre's feed entries and advances the cursor past them, in
/// the caller's transaction: a `recall` voids the slice's local lot, so it
/// is spent no more here and is returned once every spend from it is
/// acknowledged ([`due_back`]). A slice not here, or already returned or
/// voided (the entry read again, by a ledger restored from a backup), is
/// left as it is; a kind this site does not know is skipped. The slices
/// recalled now.
pub fn apply_feed(conn: &Connection, entries: &[FeedEntry], at: Ts) -> Result<Vec<i64>> {
    let mut recalled = Vec::new();
    let mut cursor = feed_cursor(conn)?;
    for e in entries {
        if e.cursor <= cursor {
            continue;
        }
        cursor = e.cursor;
        if e.kind != "recall" {
            continue;
        }
        let lot: Option<i64> = conn
            .prepare_cached(
                "SELECT lot_id FROM escrow_slices WHERE slice_id = ?1 AND returned_at IS NULL",
            )?
            .query_row([e.slice], |r| r.get(0))
            .optional()?;
        let Some(lot) = lot else {
            // Not here (yet): voided when it arrives.
            conn.prepare_cached("INSERT OR IGNORE INTO recalled_slices (slice_id) VALUES (?1)")?
                .execute([e.slice])?;
            continue;
        };
        if lots::lot_state(conn, lot)?.voided {
            continue;
        }
        lots::void_lot(conn, lot, RECALLED, at)?;
        recalled.push(e.slice);
    }
    conn.prepare_cached(
        "INSERT INTO feed_cursor (id, after) VALUES (1, ?1)
         ON CONFLICT (id) DO UPDATE SET after = excluded.after",
    )?
    .execute([cursor])?;
    Ok(recalled)
}

#[cfg(test)]
#[path = "escrow_tests.rs"]
mod tests;
