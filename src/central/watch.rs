//! What the centre knows of each site besides its journal: what the site
//! last said of its outbox (`POST /v1/status`) and when, and each site's
//! newest epoch and high water. The centre's `/metrics` reads it.

use super::pg::Pg;
use super::protocol::SiteStatus;
use deadpool_postgres::Client;

/// Notes that the site was heard now, and keeps what `s` says unless the
/// centre holds a word from further along the site's journal (a request
/// replayed or delayed on the way says less, by epoch and seq; the site's
/// clock is not trusted to order them).
pub async fn record(client: &Client, s: &SiteStatus) -> Pg<()> {
    let kept = client
        .execute(
            "INSERT INTO site_status (site_id, epoch, last_seq, acked_seq, oldest_at, site_time)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (site_id) DO UPDATE SET epoch = excluded.epoch,
                 last_seq = excluded.last_seq, acked_seq = excluded.acked_seq,
                 oldest_at = excluded.oldest_at, site_time = excluded.site_time,
                 heard_at = now()
             WHERE (excluded.epoch, excluded.last_seq, excluded.acked_seq)
                >= (site_status.epoch, site_status.last_seq, site_status.acked_seq)",
            &[
                &s.site_id,
                &(s.epoch as i32),
                &s.last_seq,
                &s.acked_seq,
                &s.oldest_at,
                &s.site_time,
            ],
        )
        .await?;
    if kept == 0 {
        client
            .execute(
                "UPDATE site_status SET heard_at = now() WHERE site_id = $1",
                &[&s.site_id],
            )
            .await?;
    }
    Ok(())
}

/// One site as the centre's metrics show it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteView {
    pub site_id: String,
    /// The site's newest epoch at the centre and the highest seq applied
    /// in it; `None` before its first hello.
    pub epoch: Option<(i64, i64)>,
    /// What the site last said, `None` if it never did.
    pub said: Option<Said>,
}

impl SiteView {
    /// As the site protocol gives it.
    pub fn to_wire(&self) -> super::protocol::ChainSite {
        super::protocol::ChainSite {
            site: self.site_id.clone(),
            epoch: self.epoch.map(|e| e.0),
            high_water: self.epoch.map(|e| e.1),
            heard_seconds_ago: self.said.as_ref().map(|s| s.heard_ago),
            unacknowledged: self.said.as_ref().map(|s| s.unacknowledged),
            ack_lag_seconds: self.said.as_ref().map(|s| s.ack_lag),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Said {
    /// Entries it had not had acknowledged.
    pub unacknowledged: i64,
    /// How old the oldest of them was then, on the site's clock (0: none).
    pub ack_lag: i64,
    /// Seconds since the centre heard it.
    pub heard_ago: i64,
}

/// Every site in `ids` (the configured ones) and any other the tables
/// name, with what the centre knows of it; and the conflicts recorded.
pub async fn sites(client: &tokio_postgres::Client, ids: &[String]) -> Pg<(Vec<SiteView>, i64)> {
    let mut by_id: std::collections::BTreeMap<String, SiteView> = ids
        .iter()
        .map(|id| {
            let view = SiteView {
                site_id: id.clone(),
                ..SiteView::default()
            };
            (id.clone(), view)
        })
        .collect();
    let epochs = client
        .query(
            "SELECT DISTINCT ON (site_id) site_id, epoch, high_water FROM site_epochs
             ORDER BY site_id, epoch DESC",
            &[],
        )
        .await?;
    for r in epochs {
        let id: String = r.get(0);
        let epoch: i32 = r.get(1);
        let view = by_id.entry(id.clone()).or_insert_with(|| SiteView {
            site_id: id,
            ..SiteView::default()
        });
        view.epoch = Some((i64::from(epoch), r.get(2)));
    }
    let said = client
        .query(
            "SELECT site_id, last_seq - acked_seq, site_time - COALESCE(oldest_at, site_time),
                floor(extract(epoch FROM now() - heard_at))::bigint
             FROM site_status",
            &[],
        )
        .await?;
    for r in said {
        let id: String = r.get(0);
        let view = by_id.entry(id.clone()).or_insert_with(|| SiteView {
            site_id: id,
            ..SiteView::default()
        });
        view.said = Some(Said {
            unacknowledged: r.get::<_, i64>(1).max(0),
            ack_lag: r.get::<_, i64>(2).max(0),
            heard_ago: r.get::<_, i64>(3).max(0),
        });
    }
    let conflicts = client
        .query_one("SELECT count(*) FROM ingest_conflicts", &[])
        .await?
        .get(0);
    Ok((by_id.into_values().collect(), conflicts))
}
