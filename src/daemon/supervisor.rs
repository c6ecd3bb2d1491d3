//! Supervised tasks. Every long-running part of the daemon (a printer's
//! poller, a card reader, the grants syncer, the sweeps) runs under a name
//! and a child of the daemon's one cancellation token.
//!
//! A task that panics, or ends while nobody asked it to stop, is logged at
//! ERROR with its name and cause and started again after a backoff: 1 s,
//! doubling up to 60 s, and back to 1 s once a run lasted a minute. Restarts
//! are counted per name for the status line. Stopping is cancelling: one
//! task's token (a reload), or the root (shutdown), after which every task
//! has one shared grace period to end before it is aborted.

use crate::observe::Observer;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::task::{JoinError, JoinHandle};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::{AbortOnDropHandle, TaskTracker};

/// The wait before the first restart.
pub const FIRST_RESTART_DELAY: Duration = Duration::from_secs(1);
/// The longest wait before a restart.
pub const MAX_RESTART_DELAY: Duration = Duration::from_secs(60);
/// A run at least this long was healthy: the next restart waits
/// [`FIRST_RESTART_DELAY`] again.
pub const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// Restarts per task name, shared by the supervising tasks and the status
/// line. A std mutex: it is only held to bump or copy the counts, never
/// across an `.await`.
type Restarts = Arc<Mutex<BTreeMap<String, u32>>>;

/// A supervised task: the token that stops it, and the task that runs and
/// restarts it.
struct Supervised {
    token: CancellationToken,
    handle: JoinHandle<()>,
}

/// Starts, restarts and stops the daemon's named tasks.
pub struct Supervisor {
    root: CancellationToken,
    /// Every supervising task and every run of a task, to wait for them all.
    tracker: TaskTracker,
    running: BTreeMap<String, Supervised>,
    restarts: Restarts,
    /// Told of every restart.
    observer: Observer,
}

impl Supervisor {
    /// Tasks started here stop when `root` is cancelled; restarts are
    /// reported to `observer`.
    pub fn new(root: CancellationToken, observer: Observer) -> Supervisor {
        Supervisor {
            root,
            tracker: TaskTracker::new(),
            running: BTreeMap::new(),
            restarts: Arc::default(),
            observer,
        }
    }

    /// Starts task `name`. `make` builds one run of it from the task's token
    /// (a child of the root), at the start and at every restart; a run ends
    /// soon after that token is cancelled.
    pub fn start<F, Fut>(&mut self, name: impl Into<String>, make: F)
    where
        F: FnMut(CancellationToken) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let name = name.into();
        let token = self.root.child_token();
        let handle = self.tracker.spawn(supervise(
            name.clone(),
            token.clone(),
            make,
            self.tracker.clone(),
            self.restarts.clone(),
            self.observer.clone(),
        ));
        if let Some(old) = self.running.insert(name, Supervised { token, handle }) {
            // Callers stop a task before starting it again; if one did not,
            // the older run must not poll on unseen.
            old.token.cancel();
        }
    }

    /// Stops task `name` and waits until it has ended, at most `grace`;
    /// then aborts it.
    pub async fn stop(&mut self, name: &str, grace: Duration) {
        let Some(task) = self.running.remove(name) else {
            return;
        };
        task.token.cancel();
        let abort = task.handle.abort_handle();
        if tokio::time::timeout(grace, task.handle).await.is_err() {
            tracing::warn!(task = %name, "task did not stop within the grace period; aborted");
            abort.abort();
        }
    }

    /// Stops every task whose name starts with `prefix` (see [`Self::stop`]).
    pub async fn stop_prefixed(&mut self, prefix: &str, grace: Duration) {
        let names: Vec<String> = self
            .running
            .keys()
            .filter(|n| n.starts_with(prefix))
            .cloned()
            .collect();
        for name in names {
            self.stop(&name, grace).await;
        }
    }

    /// How many times each task was restarted (tasks never restarted are
    /// not listed).
    pub fn restarts(&self) -> BTreeMap<String, u32> {
        self.restarts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Cancels the root token and waits until every task has ended, at most
    /// `grace` for all of them together; then aborts the ones still running.
    pub async fn shutdown(self, grace: Duration) {
        self.root.cancel();
        self.tracker.close();
        if tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_ok()
        {
            return;
        }
        let late: Vec<&str> = self
            .running
            .iter()
            .filter(|(_, t)| !t.handle.is_finished())
            .map(|(name, _)| name.as_str())
            .collect();
        tracing::warn!(tasks = %late.join(","), "tasks did not stop within the grace period; aborted");
        for task in self.running.values() {
            task.handle.abort();
        }
        // An aborted supervising task drops its run, which aborts that run
        // too; both are gone at their next poll, so this wait is short.
        let _ = tokio::time::timeout(Duration::from_secs(1), self.tracker.wait()).await;
    }
}

/// Runs task `name` until `token` is cancelled, restarting it with backoff
/// whenever a run panics or ends on its own.
async fn supervise<F, Fut>(
    name: String,
    token: CancellationToken,
    mut make: F,
    tracker: TaskTracker,
    restarts: Restarts,
    observer: Observer,
) where
    F: FnMut(CancellationToken) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut delay = None;
    loop {
        let started = Instant::now();
        // A run is its own task, so that its panic is caught (as a
        // `JoinError`) instead of taking this loop down; dropping the handle
        // (this task aborted) aborts the run.
        let run = AbortOnDropHandle::new(tracker.spawn(make(token.clone())));
        let ended = run.await;
        let cause = match ended {
            Ok(()) if token.is_cancelled() => return,
            Ok(()) => "ended on its own".to_string(),
            Err(e) => cause_of(e),
        };
        if token.is_cancelled() {
            tracing::error!(task = %name, cause = %cause, "task failed while stopping");
            return;
        }
        let wait = restart_delay(delay, started.elapsed());
        delay = Some(wait);
        let count = {
            let mut counts = restarts.lock().unwrap_or_else(PoisonError::into_inner);
            let count = counts.entry(name.clone()).or_default();
            *count += 1;
            *count
        };
        tracing::error!(task = %name, cause = %cause, restarts = count,
            delay_ms = wait.as_millis() as u64, "task failed; restarting it after a backoff");
        observer.task_restarted(&name, &cause);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = token.cancelled() => return,
        }
    }
}

/// What made a run end: its panic message, or why it was cancelled.
fn cause_of(e: JoinError) -> String {
    if !e.is_panic() {
        return e.to_string();
    }
    let payload = e.into_panic();
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into());
    format!("panicked: {message}")
}

/// The wait before the next run of a task whose last run lasted `ran`, when
/// the wait before that one was `previous` (`None`: it never failed).
pub fn restart_delay(previous: Option<Duration>, ran: Duration) -> Duration {
    match previous {
        Some(previous) if ran < HEALTHY_RUN => (previous * 2).min(MAX_RESTART_DELAY),
        _ => FIRST_RESTART_DELAY,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn the_restart_delay_doubles_to_a_minute_and_resets_after_a_healthy_run() {
        let s = Duration::from_secs;
        assert_eq!(restart_delay(None, s(0)), s(1));
        assert_eq!(restart_delay(Some(s(1)), s(2)), s(2));
        assert_eq!(restart_delay(Some(s(16)), s(2)), s(32));
        assert_eq!(restart_delay(Some(s(32)), s(2)), s(60));
        assert_eq!(restart_delay(Some(s(60)), s(2)), s(60));
        assert_eq!(restart_delay(Some(s(60)), HEALTHY_RUN), s(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_that_panics_is_restarted_and_counted_until_it_is_stopped() {
        let runs = Arc::new(AtomicU32::new(0));
        let mut sup = Supervisor::new(CancellationToken::new(), Observer::default());
        let counted = runs.clone();
        sup.start("printer:lobby", move |stop: CancellationToken| {
            let run = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                if run < 2 {
                    panic!("run {run} fails");
                }
                stop.cancelled().await;
            }
        });
        // Restarts after 1 s, then 2 s (the clock is paused: no real wait).
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        assert_eq!(sup.restarts().get("printer:lobby"), Some(&2));
        sup.stop("printer:lobby", Duration::from_secs(10)).await;
        assert!(sup.running.is_empty());
        sup.shutdown(Duration::from_secs(10)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_that_ignores_its_token_is_aborted_after_the_grace_period() {
        let mut sup = Supervisor::new(CancellationToken::new(), Observer::default());
        sup.start("stuck", |_stop| std::future::pending::<()>());
        sup.start("polite", |stop: CancellationToken| async move {
            stop.cancelled().await
        });
        let started = Instant::now();
        sup.shutdown(Duration::from_secs(10)).await;
        assert!(started.elapsed() >= Duration::from_secs(10));
        assert!(started.elapsed() < Duration::from_secs(12));
    }
}
