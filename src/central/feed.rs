//! The downlink feed (multi-site.md 3.4-3.5): what the centre tells a site
//! between its requests. Today one kind, `recall`: a grant shrunk below
//! what its lot has not placed in escrow, or deleted, asks the sites
//! holding its slices to return them. A site reads its feed after a cursor
//! ([`read`]), voids each recalled slice there, and returns it once every
//! spend from it is acknowledged; what comes back pays the lot's pending
//! cut first ([`super::escrow`]), or lapses when the lot is voided.
//!
//! A site's cursor is the id of the last row it applied, so rows must
//! become visible in id order: an id taken by a transaction that commits
//! after a higher one was read would be skipped. Rows are written only
//! under the issuer's advisory lock ([`super::issue::ISSUER_LOCK`], which
//! [`recall`] takes again: a no-op inside the grants sync that holds it),
//! one transaction at a time across every centre, so they commit in id
//! order.

use super::protocol::{FeedEntry, FeedQuery, FEED_PAGE};
use tokio_postgres::{Client, Transaction};

/// Recalls open slices of `lot`, largest first, until what they hold
/// covers `need` (every open slice for `None`): one feed row each for its
/// site, once per slice. How many were recalled now.
pub async fn recall(
    tx: &Transaction<'_>,
    lot: i64,
    need: Option<i64>,
    note: &str,
    at: i64,
) -> Result<usize, tokio_postgres::Error> {
    tx.execute(super::issue::ISSUER_LOCK, &[]).await?;
    let open = tx
        .query(
            "SELECT id, site_id, amount - consumed - returned FROM escrow_slices
             WHERE lot_id = $1 AND closed_at IS NULL AND amount - consumed - returned > 0
             ORDER BY amount - consumed - returned DESC, id",
            &[&lot],
        )
        .await?;
    let mut covered = 0i64;
    let mut recalled = 0;
    for r in &open {
        if need.is_some_and(|n| covered >= n) {
            break;
        }
        let (slice, site, held): (i64, String, i64) = (r.get(0), r.get(1), r.get(2));
        covered = covered.saturating_add(held);
        let made = tx
            .execute(
                "INSERT INTO site_feed (site_id, kind, slice_id, note, at)
                 VALUES ($1, 'recall', $2, $3, $4) ON CONFLICT DO NOTHING",
                &[&site, &slice, &note, &at],
            )
            .await?;
        if made > 0 {
            recalled += 1;
            tracing::info!(site = %site, slice, lot, held, reason = ?note, "escrow recalled");
        }
    }
    Ok(recalled)
}

/// The asking site's feed entries after its cursor, in order, at most
/// [`FEED_PAGE`].
pub async fn read(client: &Client, q: &FeedQuery) -> Result<Vec<FeedEntry>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT id, kind, slice_id, note FROM site_feed
             WHERE site_id = $1 AND id > $2 ORDER BY id LIMIT $3",
            &[&q.site_id, &q.after, &FEED_PAGE],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| FeedEntry {
            cursor: r.get(0),
            kind: r.get(1),
            slice: r.get(2),
            note: r.get(3),
        })
        .collect())
}
