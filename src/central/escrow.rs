//! Escrow (multi-site.md 3.4-3.6): the centre places slices of a member's
//! chain lots with a site, which spends them as local lots while it cannot
//! reach the centre. A slice is carved from what a lot has not promised
//! elsewhere (`remaining - escrowed`), in consumption order; a usage's take
//! from a slice is applied when its journal entry arrives
//! ([`super::spend`]); a site returns a slice once its local lot expired,
//! idled or was recalled ([`close`], [`super::feed`]), and what it still
//! held goes back to its lot: it pays a pending cut first, and expires
//! (or is voided) with a lot past its date (or voided).

use super::pg::{self, Pg};
use super::protocol::{EscrowAsk, EscrowGrant, EscrowReturn, EscrowSlice};
use super::rules::escrow_amount;
use crate::ledger::allocate::{allocate, Candidate, SourceKind};
use crate::ledger::Ts;
use deadpool_postgres::Client;

/// A slice expires this long before its lot, so the site stops spending it
/// before the centre's clock expires the lot (multi-site.md 3.7).
pub const GUARD_SECONDS: i64 = 600;

const PLACED: &str = "SELECT s.id, l.credit, s.amount, l.source, l.valid_from, s.expires_at
    FROM escrow_slices s JOIN lots l ON l.id = s.lot_id
    WHERE s.site_id = $1 AND s.request_id = $2 ORDER BY s.id";

fn slice(r: &tokio_postgres::Row) -> EscrowSlice {
    EscrowSlice {
        id: r.get(0),
        credit: r.get(1),
        amount: r.get(2),
        source: r.get(3),
        valid_from: r.get(4),
        expires_at: r.get(5),
    }
}

/// Places slices for `ask` (the same ones again for a request id already
/// answered): at most `share_pct` percent of the member's unescrowed
/// credit for a top-up (all of it at the member's home site), what exists
/// for a shortfall.
pub async fn place(
    client: &mut Client,
    ask: &EscrowAsk,
    share_pct: i64,
    now: Ts,
) -> Pg<EscrowGrant> {
    let tx = client.transaction().await?;
    // The lots are locked in id order, as ingestion locks them.
    let lots = pg::query(
        &tx,
        "SELECT id, remaining - escrowed, expires_at, source, valid_from FROM lots
         WHERE member_id = $1 AND credit = $2 AND voided_at IS NULL AND valid_from <= $3
           AND (expires_at IS NULL OR expires_at > $3 + $4)
         ORDER BY id FOR UPDATE",
        &[&ask.member, &ask.credit, &now, &GUARD_SECONDS],
    )
    .await?;
    let again = pg::query(&tx, PLACED, &[&ask.site_id, &ask.request_id]).await?;
    if !again.is_empty() {
        return Ok(EscrowGrant {
            slices: again.iter().map(slice).collect(),
        });
    }
    // The member's home site may hold all of it (multi-site.md 3.5).
    let home: Option<String> = pg::query_opt(
        &tx,
        "SELECT home_site FROM members WHERE id = $1",
        &[&ask.member],
    )
    .await?
    .and_then(|r| r.get(0));
    let share_pct = match home.as_deref() == Some(ask.site_id.as_str()) {
        true => 100,
        false => share_pct,
    };
    let candidates: Vec<Candidate> = lots
        .iter()
        .map(|r| Candidate {
            lot: r.get(0),
            remaining: r.get::<_, i64>(1).max(0),
            expires_at: r.get(2),
            source: SourceKind::parse(r.get(3)).unwrap_or(SourceKind::Adjustment),
            valid_from: r.get(4),
        })
        .collect();
    let available = candidates
        .iter()
        .fold(0i64, |sum, c| sum.saturating_add(c.remaining));
    let amount = escrow_amount(ask.want, available, ask.shortfall, share_pct);
    for (lot, n) in allocate(candidates, amount).takes {
        let id: i64 = pg::query_one(
            &tx,
            "INSERT INTO escrow_slices (lot_id, member_id, site_id, request_id, amount,
                 expires_at, placed_at)
             SELECT id, member_id, $2, $3, $4, expires_at - $5, $6 FROM lots WHERE id = $1
             RETURNING id",
            &[
                &lot,
                &ask.site_id,
                &ask.request_id,
                &n,
                &GUARD_SECONDS,
                &now,
            ],
        )
        .await?
        .get(0);
        pg::exec(
            &tx,
            "UPDATE lots SET escrowed = escrowed + $2 WHERE id = $1",
            &[&lot, &n],
        )
        .await?;
        moved(&tx, id, "place", n, None, now).await?;
    }
    let placed = pg::query(&tx, PLACED, &[&ask.site_id, &ask.request_id]).await?;
    tx.commit().await?;
    let grant = EscrowGrant {
        slices: placed.iter().map(slice).collect(),
    };
    let total: i64 = grant.slices.iter().map(|s| s.amount).sum();
    tracing::info!(site = %ask.site_id, member = %ask.member, credit = %ask.credit,
        want = ask.want, placed = total, slices = grant.slices.len(), shortfall = ask.shortfall,
        "escrow placed");
    Ok(grant)
}

/// Closes the site's slices in `ret`: what each still holds returns to its
/// lot (and expires there when the lot is past its date, or is voided with a voided lot). A
/// slice of another site, or one already closed, is left as it is.
pub async fn close(client: &mut Client, ret: &EscrowReturn, now: Ts) -> Pg<i64> {
    let tx = client.transaction().await?;
    let returned = close_in(&tx, &ret.site_id, &ret.slices, now).await?;
    tx.commit().await?;
    if returned.0 > 0 {
        tracing::info!(site = %ret.site_id, slices = returned.0, returned = returned.1,
            "escrow returned");
    }
    Ok(returned.1)
}

/// Closes every open slice of `site`, in the caller's transaction: its
/// ledger takes a new epoch (restored or cloned), and voids the slices it
/// held (multi-site.md 3.8). A later entry of the old epoch that spends
/// one draws from unescrowed credit instead.
pub async fn close_site(tx: &pg::Tx<'_>, site: &str, now: Ts) -> Pg<()> {
    let ids: Vec<i64> = pg::query(
        tx,
        "SELECT id FROM escrow_slices WHERE site_id = $1 AND closed_at IS NULL",
        &[&site],
    )
    .await?
    .iter()
    .map(|r| r.get(0))
    .collect();
    let (n, returned) = close_in(tx, site, &ids, now).await?;
    if n > 0 {
        tracing::warn!(site = %site, slices = n, returned,
            "escrow of a site's old epoch returned: its ledger took a new epoch");
    }
    Ok(())
}

/// Closes `site`'s open slices among `ids`: how many, and what they held.
async fn close_in(tx: &pg::Tx<'_>, site: &str, ids: &[i64], now: Ts) -> Pg<(usize, i64)> {
    if ids.is_empty() {
        return Ok((0, 0));
    }
    pg::exec(
        tx,
        "SELECT 1 FROM lots WHERE id IN (SELECT lot_id FROM escrow_slices WHERE id = ANY($1))
         ORDER BY id FOR UPDATE",
        &[&ids],
    )
    .await?;
    let rows = pg::query(
        tx,
        "UPDATE escrow_slices s SET returned = s.amount - s.consumed, closed_at = $3
         FROM (SELECT id, amount - consumed - returned AS open FROM escrow_slices
               WHERE id = ANY($1) AND site_id = $2 AND closed_at IS NULL FOR UPDATE) o
         WHERE s.id = o.id RETURNING s.id, s.lot_id, o.open",
        &[&ids, &site, &now],
    )
    .await?;
    let mut returned = 0i64;
    for r in &rows {
        let (id, lot, open): (i64, i64, i64) = (r.get(0), r.get(1), r.get(2));
        if open == 0 {
            continue;
        }
        returned = returned.saturating_add(open);
        moved(tx, id, "return", open, None, now).await?;
        let state = pg::query_one(
            tx,
            "SELECT voided_at IS NOT NULL, COALESCE(expires_at <= $2, false), shrink_pending
             FROM lots WHERE id = $1",
            &[&lot, &now],
        )
        .await?;
        let (voided, expired, pending): (bool, bool, i64) =
            (state.get(0), state.get(1), state.get(2));
        // What comes back pays the lot's pending cut first (a grant shrunk).
        let cut = if voided || expired {
            0
        } else {
            pending.min(open)
        };
        pg::exec(
            tx,
            "UPDATE lots SET escrowed = escrowed - $2,
                 shrink_pending = LEAST(shrink_pending - $3, escrowed - $2),
                 granted = granted - $3, remaining = remaining - $3
             WHERE id = $1",
            &[&lot, &open, &cut],
        )
        .await?;
        if cut > 0 {
            shrunk(tx, lot, cut, site, now).await?;
        }
        if voided {
            let note = "returned from escrow to a voided lot: voided with it";
            leave(tx, lot, open, "void", note, now).await?;
        } else if expired {
            leave(
                tx,
                lot,
                open,
                "expire",
                "returned from escrow after its date",
                now,
            )
            .await?;
        }
    }
    Ok((rows.len(), returned))
}

/// A lot's pending cut took `amount` of what came back from escrow: an
/// `adjust` history row.
pub async fn shrunk(tx: &pg::Tx<'_>, lot: i64, amount: i64, site: &str, now: Ts) -> Pg<()> {
    let note = format!("grant shrunk: taken from escrow returned by site {site}");
    pg::exec(
        tx,
        "INSERT INTO lot_history (lot_id, kind, delta, granted_delta, note, at)
         VALUES ($1, 'adjust', $2, $2, $3, $4)",
        &[&lot, &-amount, &note, &now],
    )
    .await?;
    Ok(())
}

/// Credit that came back to a lot past its date, or voided (its grant
/// deleted), leaves it at once: an `expire` or `void` history row, so such
/// a lot holds only what its open slices hold.
async fn leave(tx: &pg::Tx<'_>, lot: i64, amount: i64, kind: &str, note: &str, now: Ts) -> Pg<()> {
    pg::exec(
        tx,
        "UPDATE lots SET remaining = remaining - $2 WHERE id = $1",
        &[&lot, &amount],
    )
    .await?;
    pg::exec(
        tx,
        "INSERT INTO lot_history (lot_id, kind, delta, note, at) VALUES ($1, $2, $3, $4, $5)",
        &[&lot, &kind, &-amount, &note, &now],
    )
    .await?;
    Ok(())
}

/// Credit given back to a voided lot (a refund or a settle down of a usage
/// it paid before its grant was deleted) is voided with it.
pub async fn void_given_back(tx: &pg::Tx<'_>, lot: i64, amount: i64, now: Ts) -> Pg<()> {
    let note = "given back to a voided lot: voided with it";
    leave(tx, lot, amount, "void", note, now).await
}

/// One `escrow_moves` row.
pub async fn moved(
    tx: &pg::Tx<'_>,
    slice: i64,
    kind: &str,
    amount: i64,
    usage: Option<i64>,
    at: Ts,
) -> Pg<()> {
    pg::exec(
        tx,
        "INSERT INTO escrow_moves (slice_id, kind, amount, usage_id, at)
         VALUES ($1, $2, $3, $4, $5)",
        &[&slice, &kind, &amount, &usage, &at],
    )
    .await?;
    Ok(())
}
