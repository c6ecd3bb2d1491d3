//! The daemon's tasks besides the printers' pollers: a card reader (its
//! serial thread and its taps), the grants syncer, the expiry sweep and the
//! session sweep. Each runs until its token is cancelled; the supervisor
//! restarts one that fails. The syncer and the sweeps are time-driven: they
//! wait while the clock guard judges the wall clock wrong, and the syncer
//! and the expiry sweep run as soon as it agrees again.

use super::clock_guard::regained;
use super::taps::{self, TapContext};
use crate::clock::Clock;
use crate::config::{GrantsConfig, ReaderConfig};
use crate::grants::{self, source::Access, source::Source};
use crate::ledger::expiry;
use crate::ledger::writer::WriterHandle;
use crate::observe::Observer;
use crate::reader::port::{self, Seen};
use crate::site::LiveSite;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{mpsc, watch, Notify};
use tokio_util::sync::CancellationToken;

/// How often lots past their expiry are recorded as expired.
pub const EXPIRY_SWEEP: Duration = Duration::from_secs(600);

/// How often the session sweep looks for sessions past their maximum.
pub const SESSION_SWEEP: Duration = Duration::from_secs(30);

/// The grants sync's failure while it lasts: a failure is logged when it
/// starts or its reason changes, and the recovery once, not every sync.
#[derive(Clone, Default)]
pub struct SyncOutage(Arc<Mutex<Option<String>>>);

impl SyncOutage {
    /// Records a failure; whether it starts an outage or changes its reason.
    fn failed(&self, reason: &str) -> bool {
        let mut now = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let new = now.as_deref() != Some(reason);
        *now = Some(reason.to_string());
        new
    }

    /// Records a success; the reason of the outage it ends, if any.
    fn ended(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

/// One sync of the grants file through the writer, told to `observer`.
/// Logs one line, except for a fetch that fails as the last one did (see
/// [`SyncOutage`]).
pub async fn sync_grants(
    writer: &WriterHandle,
    site: &LiveSite,
    clock: &Clock,
    grants: &GrantsConfig,
    outage: &SyncOutage,
    observer: &Observer,
) -> bool {
    let synced = sync_grants_once(writer, site, clock, grants, outage).await;
    match &synced {
        Ok(()) => observer.grants_synced(),
        Err(error) => observer.grants_failed(error),
    }
    synced.is_ok()
}

/// [`sync_grants`]: `Err` with the failure as logged.
async fn sync_grants_once(
    writer: &WriterHandle,
    site: &LiveSite,
    clock: &Clock,
    grants: &GrantsConfig,
    outage: &SyncOutage,
) -> Result<(), String> {
    let src = Source::parse(&grants.source);
    // The source as logs show it: a URL's userinfo redacted.
    let shown = src.name();
    let name = shown.clone();
    let last = match writer
        .call_async(move |conn| grants::last_good(conn, &name))
        .await
    {
        Ok(last) => last,
        Err(e) => {
            tracing::error!(source = %shown, error = %e, "grants sync failed: cannot read the ledger");
            return Err(e.to_string());
        }
    };
    let fetched = match grants::fetch(&src, Access::of(grants), last, grants.timeout).await {
        Ok(f) => f,
        Err(e) => {
            log_fetch_failure(&shown, &e, outage);
            return Err(e.to_string());
        }
    };
    if let Some(was) = outage.ended() {
        tracing::info!(source = %shown, was = %was, "grants source is reachable again");
    }
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
            grants::log_overridden(&report);
            Ok(())
        }
        Err(e) => {
            tracing::error!(source = %shown, error = %e, "grants sync failed; nothing changed");
            Err(e.to_string())
        }
    }
}

/// Logs a failed fetch once per outage (again if its reason changes).
fn log_fetch_failure(source: &str, e: &grants::GrantsError, outage: &SyncOutage) {
    let error = e.to_string();
    if !outage.failed(&error) {
        tracing::debug!(source = %source, error = %error, "grants sync still failing");
    } else if matches!(
        e,
        grants::GrantsError::Fetch(grants::source::FetchError::Certificate { .. })
    ) {
        tracing::error!(source = %source, error = %error,
            "grants sync failed: the server's TLS certificate is not trusted (set [grants] ca_file); retrying every interval");
    } else {
        tracing::error!(source = %source, error = %error, "grants sync failed");
    }
}

/// What wakes the grants syncer besides its interval.
#[derive(Clone)]
pub struct SyncWakers {
    /// The current grants config (reload changes it).
    pub config: watch::Receiver<Option<GrantsConfig>>,
    /// Sync at once (SIGHUP).
    pub now: Arc<Notify>,
    /// The clock guard's verdict: sync when the wall clock is trusted again.
    pub trust: watch::Receiver<bool>,
}

/// Syncs every `interval` of the current grants config, at once when `now`
/// is notified (SIGHUP), and when the wall clock is trusted again (`trust`);
/// never while it is judged wrong. The config may change under it (reload).
/// A sync in progress finishes before it stops.
pub async fn syncer(
    writer: WriterHandle,
    site: LiveSite,
    clock: Clock,
    wakers: SyncWakers,
    outage: SyncOutage,
    observer: Observer,
    stop: CancellationToken,
) {
    let SyncWakers {
        mut config,
        now,
        mut trust,
    } = wakers;
    loop {
        let interval = config
            .borrow()
            .as_ref()
            .map_or(Duration::from_secs(3600), |g| g.interval);
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = now.notified() => {}
            _ = regained(&mut trust) => {}
            _ = stop.cancelled() => return,
            _ = config.changed() => continue,
        }
        let current = config.borrow().clone();
        match current {
            Some(_) if !clock.trusted() => {
                tracing::debug!("grants sync held until the wall clock agrees")
            }
            Some(g) => {
                sync_grants(&writer, &site, &clock, &g, &outage, &observer).await;
            }
            None => {}
        }
    }
}

/// Gives back expiries a wall clock that was ahead recorded, and records
/// expiry of lots past their date: now, every [`EXPIRY_SWEEP`] and when the
/// wall clock is trusted again; never while it is judged wrong.
pub async fn expiry_sweeper(
    writer: WriterHandle,
    clock: Clock,
    mut trust: watch::Receiver<bool>,
    stop: CancellationToken,
) {
    loop {
        if clock.trusted() {
            sweep_expiry(&writer, clock.wall()).await;
        } else {
            tracing::debug!("expiry sweep held until the wall clock agrees");
        }
        tokio::select! {
            _ = tokio::time::sleep(EXPIRY_SWEEP) => {}
            _ = regained(&mut trust) => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// One expiry sweep at `now` (a trusted time), in one transaction.
async fn sweep_expiry(writer: &WriterHandle, now: i64) {
    let swept = writer
        .call_async(move |conn| {
            let reversed = expiry::reverse_future_expiries(conn, now)?;
            Ok((reversed, expiry::expire_due(conn, now)?))
        })
        .await;
    match swept {
        Ok((reversed, expired)) => {
            if reversed.lots > 0 {
                tracing::warn!(lots = reversed.lots, amount = reversed.amount,
                    "expiries reversed: they were recorded under a wall clock that was ahead; the credit is usable again");
            }
            if expired.lots > 0 {
                tracing::info!(
                    lots = expired.lots,
                    amount = expired.amount,
                    "expired lots past their date"
                )
            }
        }
        Err(e) => tracing::error!(error = %e, "expiry sweep failed; will retry"),
    }
}

/// Ends sessions that reached their room's maximum length, now and every
/// [`SESSION_SWEEP`]; not while the wall clock is judged wrong.
pub async fn session_sweeper(ctx: TapContext, stop: CancellationToken) {
    loop {
        if ctx.clock.trusted() {
            taps::close_overlong(&ctx).await;
        } else {
            tracing::debug!("overlong-session sweep held until the wall clock agrees");
        }
        tokio::select! {
            _ = tokio::time::sleep(SESSION_SWEEP) => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// One card reader: its serial thread, and its taps handled in order. Ends
/// once `stop` is cancelled and the thread has ended too (within the port's
/// read timeout). The thread stops whenever this run ends, a panic included;
/// if the thread panics, this run panics with its message, so the
/// supervisor restarts both.
pub async fn reader(cfg: ReaderConfig, ctx: TapContext, stop: CancellationToken) {
    let thread_stop = stop.child_token();
    let stop_thread = thread_stop.clone().drop_guard();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let thread = match port::spawn(cfg.clone(), tx, thread_stop, ctx.observer.clone()) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(reader = %cfg.id, error = %e, "cannot start the reader's thread");
            return;
        }
    };
    // A survey of the reader's printer started as a frame began.
    let mut early: Option<taps::Early> = None;
    loop {
        tokio::select! {
            seen = rx.recv() => match seen {
                Some(Seen::Arriving) => early = taps::Early::start(&ctx, &cfg),
                Some(Seen::Tap(tap)) => taps::handle(&ctx, tap, early.take()).await,
                // The thread ended: it panicked, or was stopped.
                None => break,
            },
            _ = stop.cancelled() => break,
        }
    }
    drop(stop_thread);
    while !thread.is_finished() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if let Err(panic) = thread.join() {
        std::panic::resume_unwind(panic);
    }
}
