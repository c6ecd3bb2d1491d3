//! `tallyd central --config central.toml check`: the centre's ledger of
//! record checked whole, one verdict per check, as `tallyd check-ledger`
//! does for a site: every lot against its history, every usage applied
//! since the centre keeps lots drawn exactly once at its final amount (from
//! lots, escrow slices and overage), and escrow against its slices.

use super::pg::Pg;
use tokio_postgres::Client;

/// One check's outcome: its name, whether it passed, what was checked or
/// the first thing found wrong.
pub type Verdict = (&'static str, bool, String);

pub async fn checks(client: &Client) -> Pg<Vec<Verdict>> {
    Ok(vec![
        lots(client).await?,
        draws(client).await?,
        escrow(client).await?,
        conflicts(client).await?,
    ])
}

async fn lots(client: &Client) -> Pg<Verdict> {
    let row = client
        .query_one(
            "SELECT count(*),
                (SELECT min(l.id) FROM lots l
                  WHERE l.remaining <> (SELECT COALESCE(sum(delta), 0) FROM lot_history h WHERE h.lot_id = l.id)
                     OR l.granted <> (SELECT COALESCE(sum(granted_delta), 0) FROM lot_history h WHERE h.lot_id = l.id))
             FROM lots",
            &[],
        )
        .await?;
    let (n, bad): (i64, Option<i64>) = (row.get(0), row.get(1));
    Ok(match bad {
        None => ("lots against history", true, format!("{n} lots agree")),
        Some(lot) => (
            "lots against history",
            false,
            format!("lot {lot}: its remaining or granted is not the sum of its history"),
        ),
    })
}

/// Each usage's draw (history rows and overage naming it) against what it
/// finally cost; usages applied before the centre kept lots have none.
async fn draws(client: &Client) -> Pg<Verdict> {
    let row = client
        .query_one(
            "WITH since AS (SELECT applied_at FROM schema_migrations WHERE version = 2),
             u AS (
                SELECT u.id, u.site_id, u.key,
                    CASE WHEN u.member_id IS NULL OR r.key IS NOT NULL THEN 0
                         WHEN h.outcome = 'settled' THEN h.actual
                         WHEN h.outcome = 'voided' THEN 0 ELSE u.amount END AS final,
                    COALESCE((SELECT -sum(delta) FROM lot_history x WHERE x.usage_id = u.id), 0)
                    + COALESCE((SELECT sum(amount) FROM central_overage o WHERE o.usage_id = u.id), 0) AS drawn
                FROM usages u
                JOIN journal j ON j.site_id = u.site_id AND j.epoch = u.epoch AND j.seq = u.seq
                LEFT JOIN hold_resolutions h ON h.site_id = u.site_id AND h.key = u.key
                LEFT JOIN refunds r ON r.site_id = u.site_id AND r.key = u.key
                WHERE j.received_at >= (SELECT applied_at FROM since))
             SELECT count(*),
                (SELECT site_id || ' ' || key || ': final ' || final || ', drawn ' || drawn
                 FROM u WHERE final <> drawn ORDER BY id LIMIT 1)
             FROM u",
            &[],
        )
        .await?;
    let (n, bad): (i64, Option<String>) = (row.get(0), row.get(1));
    Ok(match bad {
        None => ("usages drawn once", true, format!("{n} usages agree")),
        Some(what) => ("usages drawn once", false, format!("usage {what}")),
    })
}

/// Every lot's `escrowed` is what its slices still hold, every slice's
/// `consumed` what history rows naming it took, and a voided lot holds
/// nothing but what its open slices hold (its sites return it, voided).
async fn escrow(client: &Client) -> Pg<Verdict> {
    let row = client
        .query_one(
            "SELECT count(*),
                (SELECT min(l.id) FROM lots l WHERE l.escrowed <> (SELECT COALESCE(sum(
                    s.amount - s.consumed - s.returned), 0) FROM escrow_slices s WHERE s.lot_id = l.id)),
                (SELECT min(s.id) FROM escrow_slices s WHERE s.consumed <> (SELECT COALESCE(
                    -sum(h.delta), 0) FROM lot_history h WHERE h.slice_id = s.id)),
                (SELECT min(l.id) FROM lots l WHERE l.voided_at IS NOT NULL AND l.remaining <> l.escrowed)
             FROM escrow_slices",
            &[],
        )
        .await?;
    let (n, lot, slice, voided): (i64, Option<i64>, Option<i64>, Option<i64>) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    let name = "escrow against slices";
    let problem = match (lot, slice, voided) {
        (Some(lot), _, _) => format!("lot {lot}: its escrowed is not what its slices hold"),
        (None, Some(s), _) => format!("slice {s}: its consumed is not what history took from it"),
        (None, None, Some(lot)) => {
            format!("lot {lot}: voided, yet it holds more than its open slices")
        }
        (None, None, None) => return Ok((name, true, format!("{n} slices agree"))),
    };
    Ok((name, false, problem))
}

async fn conflicts(client: &Client) -> Pg<Verdict> {
    let n: i64 = client
        .query_one("SELECT count(*) FROM ingest_conflicts", &[])
        .await?
        .get(0);
    Ok((
        "conflicts",
        true,
        format!("{n} entries recorded as conflicts (never charged)"),
    ))
}
