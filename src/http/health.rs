//! `/healthz`: 200 while the ledger writer answers and the last good grants
//! sync and backup are recent enough, else 503 with one line saying why.
//! [`verdict`] decides from a snapshot; the route adds the writer's round
//! trip.

use crate::ledger::writer::WriterHandle;
use crate::observe::{Observer, Snapshot};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use std::time::Duration;

/// How long the writer has to answer a health check.
pub const WRITER_TIMEOUT: Duration = Duration::from_secs(2);

/// How old what must stay recent may be; `None`: not checked (no
/// `[grants]`, backups off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub grants: Option<Duration>,
    pub backup: Option<Duration>,
}

/// Whether the daemon is healthy at `now` (unix seconds) as `s` shows it;
/// the reason if not. Before the first good sync or backup, the age counts
/// from the daemon's start.
pub fn verdict(s: &Snapshot, now: i64, bounds: Bounds) -> Result<(), String> {
    if let Some(max) = bounds.grants {
        let g = &s.grants;
        if let Some(age) = too_old(g.last_good, s.started, now, max) {
            let why = g.last_error.as_deref().unwrap_or("no sync tried");
            return Err(format!(
                "grants: no good sync for {age}s (max {}s); last error: {why}",
                max.as_secs()
            ));
        }
    }
    if let Some(max) = bounds.backup {
        let b = &s.backups;
        if let Some(age) = too_old(b.last_good, s.started, now, max) {
            let why = b.last_error.as_deref().unwrap_or("none failed");
            return Err(format!(
                "backup: no good backup for {age}s (max {}s); last error: {why}",
                max.as_secs()
            ));
        }
    }
    Ok(())
}

/// The age of `last` (or of `started`) when it is beyond `max`.
fn too_old(last: Option<i64>, started: i64, now: i64, max: Duration) -> Option<u64> {
    let age = now.saturating_sub(last.unwrap_or(started)).max(0) as u64;
    (age > max.as_secs()).then_some(age)
}

/// The `/healthz` route.
pub fn routes(observer: Observer, writer: WriterHandle, bounds: Bounds) -> Router {
    Router::new().route(
        "/healthz",
        get(move || {
            let (observer, writer) = (observer.clone(), writer.clone());
            async move {
                match check(&observer, &writer, bounds).await {
                    Ok(()) => (StatusCode::OK, "ok\n".to_string()),
                    Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")),
                }
            }
        }),
    )
}

async fn check(observer: &Observer, writer: &WriterHandle, bounds: Bounds) -> Result<(), String> {
    let ping = writer.call_async(|_| Ok(()));
    match tokio::time::timeout(WRITER_TIMEOUT, ping).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            return Err(format!(
                "ledger: the writer failed: {}",
                crate::error_chain(&e)
            ))
        }
        Err(_) => {
            return Err(format!(
                "ledger: the writer did not answer within {}s",
                WRITER_TIMEOUT.as_secs()
            ))
        }
    }
    verdict(&observer.snapshot(), observer.now(), bounds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_grants_or_backups_are_unhealthy_and_age_from_the_start_until_the_first() {
        let o = Observer::new(|| 1000);
        let mut s = o.snapshot();
        let bounds = Bounds {
            grants: Some(Duration::from_secs(60)),
            backup: Some(Duration::from_secs(600)),
        };
        assert_eq!(verdict(&s, 1060, bounds), Ok(()));
        let e = verdict(&s, 1061, bounds).expect_err("grants never synced");
        assert_eq!(
            e,
            "grants: no good sync for 61s (max 60s); last error: no sync tried"
        );
        s.grants.last_good = Some(1050);
        s.grants.last_error = Some("404".into());
        assert_eq!(verdict(&s, 1100, bounds), Ok(()));
        let e = verdict(&s, 1601, bounds).expect_err("grants stale first");
        assert!(e.starts_with("grants: no good sync for 551s"), "{e}");
        s.grants.last_good = Some(1600);
        let e = verdict(&s, 1601, bounds).expect_err("backup stale");
        assert_eq!(
            e,
            "backup: no good backup for 601s (max 600s); last error: none failed"
        );
        let off = Bounds {
            grants: None,
            backup: None,
        };
        assert_eq!(verdict(&s, 99_999, off), Ok(()));
    }
}
