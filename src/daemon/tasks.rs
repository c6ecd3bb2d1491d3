//! The daemon's background tasks besides the printers: the grants syncer and
//! the expiry sweep.

use crate::clock::Clock;
use crate::config::GrantsConfig;
use crate::grants::{self, source::Source};
use crate::ledger::lots;
use crate::ledger::writer::WriterHandle;
use crate::site::LiveSite;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// How often lots past their expiry are recorded as expired.
pub const EXPIRY_SWEEP: Duration = Duration::from_secs(600);

/// One sync of the grants file through the writer. Logs one line either way.
pub async fn sync_grants(
    writer: &WriterHandle,
    site: &LiveSite,
    clock: &Clock,
    grants: &GrantsConfig,
) -> bool {
    let src = Source::parse(&grants.source);
    let name = src.name();
    let last = match writer
        .call_async(move |conn| grants::last_good(conn, &name))
        .await
    {
        Ok(last) => last,
        Err(e) => {
            tracing::error!(source = %grants.source, error = %e, "grants sync failed: cannot read the ledger");
            return false;
        }
    };
    let fetched = match grants::fetch(&src, last, grants.timeout).await {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(source = %grants.source, error = %format!("{e:#}"), "grants sync failed");
            return false;
        }
    };
    let tz = site.get().tz;
    let now = clock.wall();
    let members = fetched.catalog.members.len();
    let result = writer
        .call_async(move |conn| {
            let f = fetched;
            grants::apply(
                conn,
                tz,
                &f.catalog,
                &f.name,
                &f.text,
                &f.validators,
                now,
                false,
            )
        })
        .await;
    match result {
        Ok(report) => {
            let c = report.counts;
            tracing::info!(source = %report.source, digest = %report.digest, issued = c.issued,
                adjusted = c.adjusted, voided = c.voided, closed = c.closed, members, "grants sync");
            true
        }
        Err(e) => {
            tracing::error!(source = %grants.source, error = %e, "grants sync failed; nothing changed");
            false
        }
    }
}

/// Syncs every `interval` of the current grants config, and at once when
/// asked (SIGHUP). The config may change under it (reload).
pub async fn syncer(
    writer: WriterHandle,
    site: LiveSite,
    clock: Clock,
    mut config: watch::Receiver<Option<GrantsConfig>>,
    mut now: mpsc::UnboundedReceiver<()>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let interval = config
            .borrow()
            .as_ref()
            .map_or(Duration::from_secs(3600), |g| g.interval);
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            Some(()) = now.recv() => {}
            _ = stop.changed() => return,
            _ = config.changed() => continue,
        }
        let current = config.borrow().clone();
        if let Some(g) = current {
            sync_grants(&writer, &site, &clock, &g).await;
        }
    }
}

/// Records expiry of lots past their date, now and every [`EXPIRY_SWEEP`].
pub async fn expiry_sweeper(writer: WriterHandle, clock: Clock, mut stop: watch::Receiver<bool>) {
    loop {
        let now = clock.wall();
        match writer
            .call_async(move |conn| lots::expire_due(conn, now))
            .await
        {
            Ok(e) if e.lots > 0 => {
                tracing::info!(
                    lots = e.lots,
                    amount = e.amount,
                    "expired lots past their date"
                )
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "expiry sweep failed; will retry"),
        }
        tokio::select! {
            _ = tokio::time::sleep(EXPIRY_SWEEP) => {}
            _ = stop.changed() => return,
        }
    }
}
