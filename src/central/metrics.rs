//! The centre's `/metrics` and `/healthz`, on their own plain-HTTP
//! listener (`metrics_listen` in central.toml), apart from the site
//! protocol's (which may ask every client for a site certificate). Each
//! scrape reads PostgreSQL once: every site's newest epoch and high water,
//! what it last said of its outbox and how long ago, and the conflicts
//! recorded. Names start with `tallyd_central_`; no label names a member.

use super::watch::{self, SiteView};
use crate::http::metrics::{counters, gauges, Labels, Result};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Registry;
use std::sync::Arc;

/// What a scrape reads from: PostgreSQL and the configured site ids.
pub struct Watched {
    pub pool: deadpool_postgres::Pool,
    pub sites: Vec<String>,
}

pub fn router(watched: Arc<Watched>) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .route("/healthz", get(health))
        .with_state(watched)
}

async fn health(State(w): State<Arc<Watched>>) -> Response {
    match read(&w).await {
        Ok(_) => (StatusCode::OK, "ok: PostgreSQL answers\n").into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("PostgreSQL does not answer: {e}\n"),
        )
            .into_response(),
    }
}

async fn read(w: &Watched) -> std::result::Result<(Vec<SiteView>, i64), String> {
    let client = w.pool.get().await.map_err(|e| crate::error_chain(&e))?;
    watch::sites(&client, &w.sites)
        .await
        .map_err(|e| crate::error_chain(&e))
}

async fn scrape(State(w): State<Arc<Watched>>) -> Response {
    let seen = read(&w).await.ok();
    let mut registry = Registry::with_prefix("tallyd_central");
    registry.register_collector(Box::new(Scrape {
        configured: w.sites.len(),
        seen,
    }));
    crate::http::metrics::encoded(&registry)
}

/// One scrape's reading; `seen` is `None` when PostgreSQL did not answer.
#[derive(Debug)]
struct Scrape {
    configured: usize,
    seen: Option<(Vec<SiteView>, i64)>,
}

fn site(id: &str) -> Labels {
    vec![("site", id.to_string())]
}

impl Collector for Scrape {
    fn encode(&self, mut e: DescriptorEncoder) -> Result {
        let up = i64::from(self.seen.is_some());
        gauges(
            &mut e,
            "postgres_up",
            "1 when PostgreSQL answered this scrape",
            [(vec![], up)],
        )?;
        let configured = [(vec![], self.configured as i64)];
        gauges(&mut e, "sites", "Sites central.toml lists", configured)?;
        let Some((sites, conflicts)) = &self.seen else {
            return Ok(());
        };
        let conflicts = [(vec![], u64::try_from(*conflicts).unwrap_or(0))];
        counters(
            &mut e,
            "conflicts",
            "Journal entries recorded as conflicts (never charged)",
            conflicts,
        )?;
        let epochs = sites
            .iter()
            .filter_map(|s| s.epoch.map(|(epoch, _)| (site(&s.site_id), epoch)));
        gauges(
            &mut e,
            "site_epoch",
            "The site's newest epoch at the centre",
            epochs,
        )?;
        let high = sites
            .iter()
            .filter_map(|s| s.epoch.map(|(_, high)| (site(&s.site_id), high)));
        gauges(
            &mut e,
            "site_high_water",
            "The highest seq applied in the site's newest epoch",
            high,
        )?;
        let said = |f: fn(&watch::Said) -> i64| {
            sites
                .iter()
                .filter_map(move |s| s.said.as_ref().map(|said| (site(&s.site_id), f(said))))
        };
        gauges(
            &mut e,
            "site_heard_seconds",
            "Seconds since the site last told the centre where its outbox stands",
            said(|s| s.heard_ago),
        )?;
        gauges(
            &mut e,
            "site_unacknowledged_entries",
            "Outbox entries the site had not had acknowledged when it last told the centre",
            said(|s| s.unacknowledged),
        )?;
        gauges(
            &mut e,
            "site_ack_lag_seconds",
            "Age of the site's oldest unacknowledged entry when it last told the centre (0: none)",
            said(|s| s.ack_lag),
        )
    }
}
