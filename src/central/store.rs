//! The centre's SQL: hellos and batches, each in one transaction under the
//! site's advisory lock (one site's batches are serialised, sites run in
//! parallel). The rules in [`super::rules`] decide; this applies.

use super::pg::{self, Pg, Tx};
use super::protocol::{Batch, BatchReply, Hello, LostEntry, LostQuery, Welcome, WireEntry};
use super::rules::{entry_verdict, hello_verdict, EntryVerdict, EpochState, HelloVerdict};
use super::spend;
use crate::ledger::Ts;
use deadpool_postgres::Client;

async fn lock_site(tx: &Tx<'_>, site: &str) -> Pg<()> {
    pg::exec(tx, "SELECT pg_advisory_xact_lock(hashtext($1))", &[&site]).await?;
    Ok(())
}

async fn epoch_state(tx: &Tx<'_>, site: &str, epoch: i32) -> Pg<Option<EpochState>> {
    let row = pg::query_opt(
        tx,
        "SELECT high_water, closed_at IS NOT NULL FROM site_epochs
             WHERE site_id = $1 AND epoch = $2",
        &[&site, &epoch],
    )
    .await?;
    Ok(row.map(|r| EpochState {
        high_water: r.get(0),
        closed: r.get(1),
    }))
}

async fn max_epoch(tx: &Tx<'_>, site: &str) -> Pg<Option<i64>> {
    let row = pg::query_one(
        tx,
        "SELECT MAX(epoch) FROM site_epochs WHERE site_id = $1",
        &[&site],
    )
    .await?;
    Ok(row.get::<_, Option<i32>>(0).map(i64::from))
}

/// Opens `epoch` for `site`; the escrow its ledger held in older epochs is
/// closed (at `now`, the centre's clock).
async fn open_epoch(tx: &Tx<'_>, site: &str, epoch: i64, now: Ts) -> Pg<()> {
    let opened = pg::exec(
        tx,
        "INSERT INTO site_epochs (site_id, epoch) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        &[&site, &(epoch as i32)],
    )
    .await?;
    if opened == 1 && epoch > 1 {
        super::escrow::close_site(tx, site, now).await?;
    }
    Ok(())
}

/// Answers a hello: the epoch to ship in and its high-water mark.
pub async fn hello(client: &mut Client, h: &Hello, now: Ts) -> Pg<Welcome> {
    let tx = client.transaction().await?;
    lock_site(&tx, &h.site_id).await?;
    let epoch = h.epoch as i32;
    let known = epoch_state(&tx, &h.site_id, epoch).await?;
    let max = max_epoch(&tx, &h.site_id).await?;
    let welcome = match hello_verdict(known, max, h.epoch, h.last_seq) {
        HelloVerdict::Continue => Welcome {
            epoch: h.epoch,
            high_water: known.map_or(0, |k| k.high_water),
        },
        HelloVerdict::Register => {
            open_epoch(&tx, &h.site_id, h.epoch, now).await?;
            tracing::info!(site = %h.site_id, epoch = h.epoch, "site registered");
            Welcome {
                epoch: h.epoch,
                high_water: 0,
            }
        }
        HelloVerdict::NewEpoch {
            epoch: new,
            close_old,
        } => {
            if close_old {
                close_epoch(&tx, &h.site_id, epoch).await?;
            }
            open_epoch(&tx, &h.site_id, new, now).await?;
            tracing::info!(site = %h.site_id, old_epoch = h.epoch, epoch = new,
                last_seq = h.last_seq, high_water = known.map_or(0, |k| k.high_water),
                "site given a new epoch (restored, cloned or unknown ledger)");
            Welcome {
                epoch: new,
                high_water: 0,
            }
        }
    };
    tx.commit().await?;
    Ok(welcome)
}

async fn close_epoch(tx: &Tx<'_>, site: &str, epoch: i32) -> Pg<()> {
    pg::exec(
        tx,
        "UPDATE site_epochs SET closed_at = now()
         WHERE site_id = $1 AND epoch = $2 AND closed_at IS NULL",
        &[&site, &epoch],
    )
    .await?;
    Ok(())
}

/// Applies a batch: each entry once, in seq order.
pub async fn ingest(client: &mut Client, b: &Batch, now: Ts) -> Pg<BatchReply> {
    let tx = client.transaction().await?;
    lock_site(&tx, &b.site_id).await?;
    let epoch = b.epoch as i32;
    let Some(state) = epoch_state(&tx, &b.site_id, epoch).await? else {
        return Ok(BatchReply::Hello);
    };
    if state.closed {
        let new = max_epoch(&tx, &b.site_id).await?.unwrap_or(0) + 1;
        open_epoch(&tx, &b.site_id, new, now).await?;
        tx.commit().await?;
        return Ok(BatchReply::NewEpoch { epoch: new });
    }
    lock_lots(&tx, &b.site_id, &b.entries).await?;
    let mut high = state.high_water;
    let mut reply = None;
    for e in &b.entries {
        let same = if e.seq <= high {
            Some(same_as_stored(&tx, &b.site_id, epoch, e).await?)
        } else {
            None
        };
        match entry_verdict(high, e.seq, same) {
            EntryVerdict::Apply => {
                apply(&tx, &b.site_id, epoch, e).await?;
                high = e.seq;
            }
            EntryVerdict::Duplicate => {}
            EntryVerdict::Gap => {
                reply = Some(BatchReply::Gap { high_water: high });
                break;
            }
            EntryVerdict::Fork => {
                let new = max_epoch(&tx, &b.site_id).await?.unwrap_or(0) + 1;
                open_epoch(&tx, &b.site_id, new, now).await?;
                tracing::warn!(site = %b.site_id, epoch = b.epoch, seq = e.seq, new_epoch = new,
                    "journal fork: a seq came again with other content; the sender gets a new epoch");
                reply = Some(BatchReply::NewEpoch { epoch: new });
                break;
            }
        }
    }
    pg::exec(
        &tx,
        "UPDATE site_epochs SET high_water = $3 WHERE site_id = $1 AND epoch = $2",
        &[&b.site_id, &epoch, &high],
    )
    .await?;
    tx.commit().await?;
    Ok(reply.unwrap_or(BatchReply::Applied { high_water: high }))
}

/// Locks, in one order for every batch (lot id), the lots the batch's
/// entries may draw from or give back to, so two sites' batches touching
/// the same members wait for each other instead of deadlocking.
async fn lock_lots(tx: &Tx<'_>, site: &str, entries: &[WireEntry]) -> Pg<()> {
    let field = |e: &WireEntry, f: &str| e.body.get(f).and_then(|v| v.as_str()).map(str::to_string);
    let members: Vec<String> = entries.iter().filter_map(|e| field(e, "member")).collect();
    let keys: Vec<String> = entries
        .iter()
        .filter(|e| e.kind != "usage")
        .filter_map(|e| field(e, "key"))
        .collect();
    pg::exec(
        tx,
        "SELECT 1 FROM lots WHERE member_id = ANY($1)
            OR member_id IN (SELECT member_id FROM usages WHERE site_id = $2 AND key = ANY($3))
         ORDER BY id FOR UPDATE",
        &[&members, &site, &keys],
    )
    .await?;
    Ok(())
}

async fn same_as_stored(tx: &Tx<'_>, site: &str, epoch: i32, e: &WireEntry) -> Pg<bool> {
    let row = pg::query_opt(
        tx,
        "SELECT kind = $4 AND body - 'slices' - 'allowance' = $5::jsonb - 'slices' - 'allowance'
         FROM journal
             WHERE site_id = $1 AND epoch = $2 AND seq = $3",
        &[&site, &epoch, &e.seq, &e.kind, &e.body],
    )
    .await?;
    Ok(row.is_some_and(|r| r.get(0)))
}

const APPLY_USAGE: &str = "INSERT INTO usages (site_id, epoch, seq, key, fingerprint,
        member_id, origin, credit_kind, resource_type, amount, is_hold, covered, overage, at)
    SELECT $1, $2, $3, b->>'key', b->>'fingerprint', b->>'member', b->>'origin',
        b->>'credit_kind', b->>'resource_type', (b->>'amount')::bigint,
        (b->>'is_hold')::int = 1, (b->>'covered')::bigint, (b->>'overage')::bigint,
        (b->>'at')::bigint
    FROM (SELECT $4::jsonb AS b) AS entry
    ON CONFLICT (site_id, key) DO NOTHING
    RETURNING id, member_id, credit_kind, resource_type, amount, is_hold, at, site_id";

/// A resolution or refund applies to the usage under its key only if it is
/// of that usage: the same fingerprint (or none, from a site that does not
/// send it). A clone's refund of its own usage, under a key its twin used
/// first for another, must not refund the twin's.
const APPLY_RESOLUTION: &str = "INSERT INTO hold_resolutions (site_id, epoch, seq, key,
        outcome, actual, at)
    SELECT $1, $2, $3, b->>'key', $5::text, (b->>'actual')::bigint, (b->>'at')::bigint
    FROM (SELECT $4::jsonb AS b) AS entry
    WHERE COALESCE((SELECT u.fingerprint = b->>'fingerprint'
        FROM usages u WHERE u.site_id = $1 AND u.key = b->>'key'), true)
    ON CONFLICT (site_id, key) DO NOTHING";

/// As [`APPLY_RESOLUTION`]: only to the usage it is of.
const APPLY_REFUND: &str = "INSERT INTO refunds (site_id, epoch, seq, key, reason, at)
    SELECT $1, $2, $3, b->>'key', b->>'reason', (b->>'at')::bigint
    FROM (SELECT $4::jsonb AS b) AS entry
    WHERE COALESCE((SELECT u.fingerprint = b->>'fingerprint'
        FROM usages u WHERE u.site_id = $1 AND u.key = b->>'key'), true)
    ON CONFLICT (site_id, key) DO NOTHING";

/// Inserts the entry into the journal and applies its meaning, once per
/// site-qualified usage key whatever the epoch.
async fn apply(tx: &Tx<'_>, site: &str, epoch: i32, e: &WireEntry) -> Pg<()> {
    pg::exec(
        tx,
        "INSERT INTO journal (site_id, epoch, seq, kind, body, site_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[&site, &epoch, &e.seq, &e.kind, &e.body, &e.at],
    )
    .await?;
    let draw = spend::SiteDraw::from_body(&e.body);
    if e.kind == "usage" {
        // The row it made (none when the key was there), as spending reads it.
        let made = pg::query_opt(tx, APPLY_USAGE, &[&site, &epoch, &e.seq, &e.body]).await?;
        return match made {
            Some(row) => spend::on_usage(tx, &spend::Usage::from_row(&row), &draw).await,
            None if same_fingerprint(tx, site, e).await? => Ok(()),
            None => conflict(tx, site, epoch, e, "same usage key, other fingerprint").await,
        };
    }
    let (sql, outcome) = match e.kind.as_str() {
        "settle" => (APPLY_RESOLUTION, Some("settled")),
        "void" => (APPLY_RESOLUTION, Some("voided")),
        "refund" => (APPLY_REFUND, None),
        _ => return conflict(tx, site, epoch, e, "unknown entry kind").await,
    };
    let n = match outcome {
        None => pg::exec(tx, sql, &[&site, &epoch, &e.seq, &e.body]).await?,
        Some(o) => pg::exec(tx, sql, &[&site, &epoch, &e.seq, &e.body, &o]).await?,
    };
    if n == 0 && !same_fingerprint(tx, site, e).await? {
        let what = match e.kind.as_str() {
            "refund" => "refund of another usage under this key",
            _ => "hold resolution of another usage under this key",
        };
        return conflict(tx, site, epoch, e, what).await;
    }
    if n == 1 {
        // Applied now, not before: what it changes of the usage's draw.
        let key = e.body.get("key").and_then(|k| k.as_str()).unwrap_or("");
        match e.kind.as_str() {
            "settle" => {
                let actual = e.body.get("actual").and_then(|a| a.as_i64()).unwrap_or(0);
                spend::on_resolution(tx, site, key, Some(actual), &draw).await?
            }
            "void" => spend::on_resolution(tx, site, key, None, &draw).await?,
            _ => spend::on_refund(tx, site, key, &draw).await?,
        }
    }
    Ok(())
}

async fn same_fingerprint(tx: &Tx<'_>, site: &str, e: &WireEntry) -> Pg<bool> {
    let row = pg::query_opt(
        tx,
        "SELECT COALESCE(fingerprint = $3::jsonb->>'fingerprint', true) FROM usages
             WHERE site_id = $1 AND key = $2::jsonb->>'key'",
        &[&site, &e.body, &e.body],
    )
    .await?;
    Ok(row.is_none_or(|r| r.get(0)))
}

async fn conflict(tx: &Tx<'_>, site: &str, epoch: i32, e: &WireEntry, what: &str) -> Pg<()> {
    let key = e.body.get("key").and_then(|k| k.as_str()).unwrap_or("");
    pg::exec(
        tx,
        "INSERT INTO ingest_conflicts (site_id, epoch, seq, key, what) VALUES ($1, $2, $3, $4, $5)",
        &[&site, &epoch, &e.seq, &key, &what],
    )
    .await?;
    tracing::warn!(site = %site, epoch, seq = e.seq, key = %crate::error::escape_controls(key),
        what = %what, "journal entry not applied: conflict recorded");
    Ok(())
}

/// The most entries one `/v1/lost` answer carries.
pub const LOST_PAGE: i64 = 500;

/// The journal entries of `q.site_id` after `(q.epoch, q.seq)`, in epoch
/// and seq order, at most `q.limit` (capped at [`LOST_PAGE`]): read-only,
/// through the journal's primary key.
pub async fn lost(client: &Client, q: &LostQuery) -> Pg<Vec<LostEntry>> {
    let epoch = i32::try_from(q.epoch).unwrap_or(i32::MAX);
    let limit = q.limit.clamp(1, LOST_PAGE);
    let rows = client
        .query(
            "SELECT epoch, seq, kind, body, site_at FROM journal
             WHERE site_id = $1 AND (epoch, seq) > ($2, $3)
             ORDER BY epoch, seq LIMIT $4",
            &[&q.site_id, &epoch, &q.seq, &limit],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| LostEntry {
            epoch: i64::from(r.get::<_, i32>(0)),
            entry: WireEntry {
                seq: r.get(1),
                kind: r.get(2),
                body: r.get(3),
                at: r.get(4),
            },
        })
        .collect())
}
