//! What the usages sites ship draw from the chain's lots, in the same
//! transaction as the centre applies them: a usage (or hold) takes its
//! amount from its member's lots valid at its time, in the site's own
//! consumption order ([`crate::ledger::allocate`]), and what no lot covers
//! is overage (cause `uncovered`). A settle takes or gives back the
//! difference, a void or refund gives back all of it: overage first, then
//! to the lots it was taken from, newest take first. Every change is a
//! history or overage row naming the usage, so a lot's remaining is always
//! the sum of its history.
//!
//! A site whose lots the centre issues (escrow) says with each entry what
//! its usage takes from which escrow slice: those takes are applied first
//! ([`super::escrow_spend`]), at most the usage's final amount, and only
//! the rest draws as above, from credit no slice holds (overage `offline`
//! when the site let it through on its allowance). A site that issues its
//! own lots says nothing of slices: the centre's lots are then the chain's
//! account of what was granted and spent.

use super::pg::{self, Pg, Tx};
use crate::ledger::allocate::{allocate, Candidate, SourceKind};
use crate::ledger::Ts;

/// A shipped usage, as spending needs it.
pub struct Usage {
    pub(super) id: i64,
    pub(super) site: String,
    pub(super) member: Option<String>,
    credit_kind: String,
    resource_type: Option<String>,
    amount: i64,
    is_hold: bool,
    pub(super) at: Ts,
}

impl Usage {
    /// From a row of `id, member_id, credit_kind, resource_type, amount,
    /// is_hold, at, site_id` (what applying a usage returns, and [`usage`]
    /// reads).
    pub fn from_row(r: &tokio_postgres::Row) -> Usage {
        Usage {
            id: r.get(0),
            member: r.get(1),
            credit_kind: r.get(2),
            resource_type: r.get(3),
            amount: r.get(4),
            is_hold: r.get(5),
            at: r.get(6),
            site: r.get(7),
        }
    }
}

async fn usage(tx: &Tx<'_>, site: &str, key: &str) -> Pg<Option<Usage>> {
    let row = pg::query_opt(
        tx,
        "SELECT id, member_id, credit_kind, resource_type, amount, is_hold, at, site_id
             FROM usages WHERE site_id = $1 AND key = $2",
        &[&site, &key],
    )
    .await?;
    Ok(row.as_ref().map(Usage::from_row))
}

fn unit(u: &Usage) -> &'static str {
    if u.credit_kind == "time" {
        "minutes"
    } else {
        "cents"
    }
}

/// What a site says of a usage's draw, read from each of its journal
/// entries (as the site's ledger stood when the entry was shipped): its net
/// takes from escrow slices, and how much of it went beyond credit on the
/// offline allowance. A site that spends its own lots sends neither.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteDraw {
    pub slices: Vec<(i64, i64)>,
    pub allowance: i64,
}

impl SiteDraw {
    /// From an entry's body: `slices` as `[[slice, amount], ...]`,
    /// `allowance` a count. Malformed parts count as absent.
    pub fn from_body(body: &serde_json::Value) -> SiteDraw {
        let slices = body
            .get("slices")
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|p| Some((p.get(0)?.as_i64()?, p.get(1)?.as_i64()?)))
                    .filter(|(_, n)| *n > 0)
                    .collect()
            })
            .unwrap_or_default();
        let allowance = body.get("allowance").and_then(|v| v.as_i64()).unwrap_or(0);
        SiteDraw {
            slices,
            allowance: allowance.max(0),
        }
    }
}

/// Of `uncovered` overage a usage's draw books now, what is `offline` (its
/// use of the offline allowance, less what is booked so already); the rest
/// is `uncovered`.
fn offline_part(uncovered: i64, allowance: i64, booked_offline: i64) -> i64 {
    uncovered
        .min(allowance.saturating_sub(booked_offline))
        .max(0)
}

/// A usage (or hold) the centre just applied: it draws its amount.
pub async fn on_usage(tx: &Tx<'_>, u: &Usage, d: &SiteDraw) -> Pg<()> {
    let kind = if u.is_hold { "hold" } else { "debit" };
    draw_to(tx, u, u.amount, d, kind).await
}

/// A hold resolved: settled at `actual`, or voided (given back whole).
pub async fn on_resolution(
    tx: &Tx<'_>,
    site: &str,
    key: &str,
    settled: Option<i64>,
    d: &SiteDraw,
) -> Pg<()> {
    let Some(u) = usage(tx, site, key).await? else {
        return Ok(());
    };
    let kind = if settled.is_some() { "settle" } else { "void" };
    draw_to(tx, &u, settled.unwrap_or(0), d, kind).await
}

/// A usage refunded: all it drew comes back.
pub async fn on_refund(tx: &Tx<'_>, site: &str, key: &str, d: &SiteDraw) -> Pg<()> {
    let Some(u) = usage(tx, site, key).await? else {
        return Ok(());
    };
    draw_to(tx, &u, 0, d, "refund").await
}

/// Brings `u`'s draw to `amount`: first its takes from the site's escrow
/// slices to what the site says, then the rest from the member's
/// unescrowed credit (else overage), taking or giving back the difference.
async fn draw_to(tx: &Tx<'_>, u: &Usage, amount: i64, d: &SiteDraw, kind: &str) -> Pg<()> {
    if u.member.is_none() {
        return Ok(());
    }
    let on_slices = slices_to(tx, u, &within(&d.slices, amount), kind).await?;
    let target = amount.saturating_sub(on_slices).max(0);
    let row = pg::query_one(tx, DRAWN_BESIDE_SLICES, &[&u.id]).await?;
    let now: i64 = row.get(0);
    if target > now {
        draw(tx, u, target - now, kind, d.allowance).await
    } else {
        give_back(tx, u, now - target, kind).await
    }
}

/// The site's takes from slices, in its order, up to `amount` in all. A
/// site gives a voided or refunded usage's credit back to its slices, but
/// a slice it no longer holds (voided at a new epoch) cannot take it back,
/// and the site keeps what it gives back as a lot of its own: the chain's
/// credit gets it back all the same (nothing of a usage at 0 stays taken).
fn within(takes: &[(i64, i64)], amount: i64) -> Vec<(i64, i64)> {
    let mut left = amount.max(0);
    let mut out = Vec::new();
    for (slice, n) in takes {
        let n = (*n).min(left);
        if n > 0 {
            out.push((*slice, n));
            left -= n;
        }
    }
    out
}

/// What a usage drew beside escrow slices: from unescrowed credit, and as
/// overage.
const DRAWN_BESIDE_SLICES: &str = "SELECT
    COALESCE((SELECT -sum(delta) FROM lot_history
              WHERE usage_id = $1 AND slice_id IS NULL), 0)::bigint
    + COALESCE((SELECT sum(amount) FROM central_overage WHERE usage_id = $1), 0)::bigint";

/// Brings `u`'s take from each slice to what the site says (`wanted`);
/// what it takes now from all slices.
async fn slices_to(tx: &Tx<'_>, u: &Usage, wanted: &[(i64, i64)], kind: &str) -> Pg<i64> {
    let rows = pg::query(
        tx,
        "SELECT slice_id, -sum(delta)::bigint FROM lot_history
         WHERE usage_id = $1 AND slice_id IS NOT NULL GROUP BY slice_id",
        &[&u.id],
    )
    .await?;
    let mut takes: std::collections::BTreeMap<i64, (i64, i64)> = rows
        .iter()
        .map(|r| (r.get::<_, i64>(0), (r.get::<_, i64>(1), 0)))
        .collect();
    for (slice, n) in wanted {
        let t = takes.entry(*slice).or_insert((0, 0));
        t.1 = t.1.saturating_add(*n);
    }
    let mut total = 0i64;
    for (slice, (now, want)) in takes {
        let after = if want > now {
            now + super::escrow_spend::take(tx, u, slice, want - now, kind).await?
        } else if want < now {
            super::escrow_spend::restore(tx, u, slice, now - want, kind).await?;
            want
        } else {
            now
        };
        total = total.saturating_add(after);
    }
    Ok(total)
}

/// Takes `amount` from the member's unescrowed credit that may pay for
/// `u`; the rest is overage: `offline` up to the usage's use of the offline
/// allowance (`allowance`), `uncovered` beyond it (a hold settled above
/// its estimate, a direct job).
async fn draw(tx: &Tx<'_>, u: &Usage, amount: i64, kind: &str, allowance: i64) -> Pg<()> {
    let Some(member) = u.member.as_deref() else {
        return Ok(());
    };
    if amount <= 0 {
        return Ok(());
    }
    let rows = pg::query(
        tx,
        "SELECT id, remaining - escrowed, expires_at, source, valid_from FROM lots
             WHERE member_id = $1 AND remaining > escrowed AND voided_at IS NULL
               AND valid_from <= $2 AND (expires_at IS NULL OR expires_at > $2)
               AND CASE WHEN $3 = 'printing' THEN credit = 'printing'
                        ELSE credit IN (SELECT credit_id FROM time_credit_types
                                        WHERE resource_type = $4) END
             ORDER BY id FOR UPDATE",
        &[&member, &u.at, &u.credit_kind, &u.resource_type],
    )
    .await?;
    let candidates = rows
        .iter()
        .map(|r| Candidate {
            lot: r.get(0),
            remaining: r.get(1),
            expires_at: r.get(2),
            source: SourceKind::parse(r.get(3)).unwrap_or(SourceKind::Adjustment),
            valid_from: r.get(4),
        })
        .collect();
    let paid = allocate(candidates, amount);
    for (lot, take) in &paid.takes {
        move_credit(tx, *lot, -take, kind, u).await?;
    }
    if paid.uncovered <= 0 {
        return Ok(());
    }
    let booked = owed_by_cause(tx, u).await?;
    let booked_offline = booked
        .iter()
        .find(|(cause, _)| cause == "offline")
        .map_or(0, |(_, n)| *n);
    let offline = offline_part(paid.uncovered, allowance, booked_offline);
    if offline > 0 {
        overage(tx, u, member, offline, kind, "offline").await?;
    }
    if paid.uncovered > offline {
        overage(tx, u, member, paid.uncovered - offline, kind, "uncovered").await?;
    }
    Ok(())
}

/// What `u` owes as overage, by cause (`offline` first), each above 0.
async fn owed_by_cause(tx: &Tx<'_>, u: &Usage) -> Pg<Vec<(String, i64)>> {
    Ok(pg::query(
        tx,
        "SELECT cause, sum(amount)::bigint FROM central_overage WHERE usage_id = $1
         GROUP BY cause HAVING sum(amount) > 0 ORDER BY cause <> 'offline', cause",
        &[&u.id],
    )
    .await?
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect())
}

/// Gives back `amount` of what `u` drew beside escrow slices: its overage
/// first (`offline` first: the allowance use undone), then to its lots,
/// newest take first.
async fn give_back(tx: &Tx<'_>, u: &Usage, amount: i64, kind: &str) -> Pg<()> {
    let Some(member) = u.member.as_deref() else {
        return Ok(());
    };
    let mut left = amount;
    if left <= 0 {
        return Ok(());
    }
    for (cause, owed) in owed_by_cause(tx, u).await? {
        let give = owed.min(left);
        if give > 0 {
            overage(tx, u, member, -give, kind, &cause).await?;
            left -= give;
        }
    }
    let takes = pg::query(
        tx,
        "SELECT lot_id, -sum(delta)::bigint, max(id) FROM lot_history
             WHERE usage_id = $1 AND slice_id IS NULL
             GROUP BY lot_id HAVING sum(delta) < 0 ORDER BY max(id) DESC",
        &[&u.id],
    )
    .await?;
    for t in takes {
        if left == 0 {
            break;
        }
        let (lot, taken): (i64, i64) = (t.get(0), t.get(1));
        let give = taken.min(left);
        move_credit(tx, lot, give, kind, u).await?;
        left -= give;
    }
    Ok(())
}

/// Moves `delta` into (or out of) `lot` for `u`. Credit given back to a
/// voided lot (its grant deleted since) is voided with it at once.
async fn move_credit(tx: &Tx<'_>, lot: i64, delta: i64, kind: &str, u: &Usage) -> Pg<()> {
    let voided: bool = pg::query_one(
        tx,
        "UPDATE lots SET remaining = remaining + $2 WHERE id = $1 RETURNING voided_at IS NOT NULL",
        &[&lot, &delta],
    )
    .await?
    .get(0);
    pg::exec(
        tx,
        "INSERT INTO lot_history (lot_id, kind, delta, usage_id, at) VALUES ($1, $2, $3, $4, $5)",
        &[&lot, &kind, &delta, &u.id, &u.at],
    )
    .await?;
    if voided && delta > 0 {
        super::escrow::void_given_back(tx, lot, delta, u.at).await?;
    }
    Ok(())
}

async fn overage(
    tx: &Tx<'_>,
    u: &Usage,
    member: &str,
    amount: i64,
    kind: &str,
    cause: &str,
) -> Pg<()> {
    pg::exec(
        tx,
        "INSERT INTO central_overage (usage_id, member_id, unit, kind, amount, cause, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[&u.id, &member, &unit(u), &kind, &amount, &cause, &u.at],
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{offline_part, within};

    #[test]
    fn overage_is_offline_only_up_to_the_allowance_used() {
        // A hold of 50 with 10 on the allowance, settled at 70: of the 30
        // uncovered, 10 is offline, 20 uncovered.
        assert_eq!(offline_part(30, 10, 0), 10);
        assert_eq!(offline_part(5, 10, 0), 5);
        // Booked offline already for this usage: only the rest.
        assert_eq!(offline_part(30, 10, 10), 0);
        assert_eq!(offline_part(30, 0, 0), 0);
    }

    #[test]
    fn a_usage_takes_from_slices_at_most_its_final_amount() {
        assert_eq!(within(&[(1, 30), (2, 20)], 50), [(1, 30), (2, 20)]);
        assert_eq!(within(&[(1, 30), (2, 20)], 40), [(1, 30), (2, 10)]);
        assert_eq!(within(&[(1, 30), (2, 20)], 0), []);
        assert_eq!(within(&[(1, 30)], -5), []);
    }
}
