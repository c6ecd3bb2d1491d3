//! `/metrics`: what the [`Observer`] saw, in the Prometheus text format,
//! encoded at each scrape by prometheus-client from one snapshot. Names
//! start with `tallyd_`, are in base units, counters end in `_total`, and
//! no label names a member.

use crate::observe::{Observer, Outcome, Snapshot};
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{prometheus_text, DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::sync::Arc;

/// What `tallyd_build_info` says.
#[derive(Debug, Clone)]
pub struct BuildInfo {
    pub version: &'static str,
    pub schema: i64,
}

/// The `/metrics` route.
pub fn routes(observer: Observer, build: BuildInfo) -> Router {
    let mut registry = Registry::with_prefix("tallyd");
    registry.register_collector(Box::new(Observed { observer, build }));
    let registry = Arc::new(registry);
    Router::new().route("/metrics", get(move || scrape(registry.clone())))
}

async fn scrape(registry: Arc<Registry>) -> Response {
    encoded(&registry)
}

/// `registry` in the Prometheus text format, as a response.
pub(crate) fn encoded(registry: &Registry) -> Response {
    let mut text = String::new();
    match prometheus_text::encode(&mut text, registry) {
        Ok(()) => ([(CONTENT_TYPE, prometheus_text::CONTENT_TYPE)], text).into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "cannot encode metrics\n").into_response(),
    }
}

#[derive(Debug)]
struct Observed {
    observer: Observer,
    build: BuildInfo,
}

pub(crate) type Labels = Vec<(&'static str, String)>;
pub(crate) type Result = std::result::Result<(), std::fmt::Error>;

impl Collector for Observed {
    fn encode(&self, mut e: DescriptorEncoder) -> Result {
        let s = self.observer.snapshot();
        let now = self.observer.now();
        jobs(&mut e, &s)?;
        components(&mut e, &s)?;
        syncs_and_backups(&mut e, &s)?;
        central(&mut e, &s, now)?;
        let restarts = s
            .restarts
            .iter()
            .map(|(t, n)| (vec![("task", t.clone())], *n));
        counters(
            &mut e,
            "task_restarts",
            "Supervised task restarts",
            restarts,
        )?;
        let m = e.encode_descriptor(
            "ledger_commit_duration_seconds",
            "Time from BEGIN to COMMIT of one ledger write batch",
            None,
            MetricType::Histogram,
        );
        let c = &s.commits;
        m?.encode_histogram::<Labels>(c.sum_seconds, c.count, &c.buckets(), None)?;
        let build = vec![
            ("version", self.build.version.to_string()),
            ("schema", self.build.schema.to_string()),
        ];
        gauges(&mut e, "build_info", "The running build", [(build, 1)])?;
        let up = [(vec![], now.saturating_sub(s.started))];
        gauges(
            &mut e,
            "uptime_seconds",
            "Seconds since the daemon started",
            up,
        )
    }
}

/// Finished jobs, impressions and cents by printer and outcome.
fn jobs(e: &mut DescriptorEncoder, s: &Snapshot) -> Result {
    let by = |f: fn(&crate::observe::Tally) -> u64| {
        s.jobs
            .iter()
            .map(move |((printer, outcome), t)| (labels(printer, *outcome), f(t)))
    };
    counters(
        e,
        "print_jobs",
        "Finished jobs recorded, by printer and outcome",
        by(|t| t.jobs),
    )?;
    counters(
        e,
        "print_impressions",
        "Impressions of finished jobs, by printer and outcome",
        by(|t| t.impressions),
    )?;
    let cents = |t: &crate::observe::Tally| u64::try_from(t.cents).unwrap_or(0);
    counters(
        e,
        "print_cents",
        "What finished jobs cost in cents, by printer and outcome (charged or not)",
        by(cents),
    )
}

fn labels(printer: &str, outcome: Outcome) -> Labels {
    vec![
        ("printer", printer.to_string()),
        ("outcome", outcome.as_str().to_string()),
    ]
}

/// Printers and readers up, held jobs, open sessions.
fn components(e: &mut DescriptorEncoder, s: &Snapshot) -> Result {
    let up = |kind: &'static str,
              all: &std::collections::BTreeMap<String, crate::observe::Component>| {
        all.iter()
            .map(move |(id, c)| (vec![(kind, id.clone())], i64::from(c.up == Some(true))))
            .collect::<Vec<_>>()
    };
    gauges(
        e,
        "printer_up",
        "1 while the printer answers its polls",
        up("printer", &s.printers),
    )?;
    gauges(
        e,
        "reader_up",
        "1 while the card reader's device is open",
        up("reader", &s.readers),
    )?;
    let held = s
        .held
        .iter()
        .map(|(p, n)| (vec![("printer", p.clone())], *n as i64));
    gauges(
        e,
        "held_jobs",
        "Jobs waiting for a release, by held queue",
        held,
    )?;
    let open = [(vec![], s.open_sessions as i64)];
    gauges(e, "room_sessions_open", "Room sessions open", open)
}

fn syncs_and_backups(e: &mut DescriptorEncoder, s: &Snapshot) -> Result {
    let (g, b) = (&s.grants, &s.backups);
    let result = |ok: u64, failed: u64| {
        [
            (vec![("result", "ok".to_string())], ok),
            (vec![("result", "failed".to_string())], failed),
        ]
    };
    counters(
        e,
        "grants_syncs",
        "Grants syncs, by result",
        result(g.succeeded, g.failed),
    )?;
    let last = g.last_good.map(|t| (vec![], t));
    gauges(
        e,
        "grants_last_success_timestamp_seconds",
        "When the last grants sync applied the file (unix seconds)",
        last,
    )?;
    counters(
        e,
        "backups",
        "Scheduled backups, by result",
        result(b.written, b.failed),
    )?;
    let last = b.last_good.map(|t| (vec![], t));
    gauges(
        e,
        "backup_last_success_timestamp_seconds",
        "When the newest good backup was taken (unix seconds)",
        last,
    )
}

/// A chain site's shipping: entries the centre has not acknowledged, and
/// how old the oldest of them is (0 when there is none).
fn central(e: &mut DescriptorEncoder, s: &Snapshot, now: i64) -> Result {
    let Some(b) = s.central else {
        return Ok(());
    };
    let count = [(vec![], i64::try_from(b.unacknowledged).unwrap_or(i64::MAX))];
    gauges(
        e,
        "central_unacknowledged_entries",
        "Outbox entries the chain's centre has not acknowledged",
        count,
    )?;
    let lag = b.oldest_at.map_or(0, |at| now.saturating_sub(at).max(0));
    gauges(
        e,
        "central_ack_lag_seconds",
        "Age of the oldest outbox entry the centre has not acknowledged (0: none)",
        [(vec![], lag)],
    )
}

/// One counter family (name without `_total`); nothing when it is empty.
pub(crate) fn counters(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    values: impl IntoIterator<Item = (Labels, u64)>,
) -> Result {
    let values: Vec<_> = values.into_iter().collect();
    if values.is_empty() {
        return Ok(());
    }
    let mut m = e.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, v) in values {
        ConstCounter::new(v).encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}

/// One gauge family; nothing when it is empty.
pub(crate) fn gauges(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    values: impl IntoIterator<Item = (Labels, i64)>,
) -> Result {
    let values: Vec<_> = values.into_iter().collect();
    if values.is_empty() {
        return Ok(());
    }
    let mut m = e.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, v) in values {
        ConstGauge::new(v).encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}
