//! The `alerts` task: feeds the alert rules with the observer's notices and,
//! every [`TICK`], its snapshot; delivers what they decide to the command
//! and the webhook, one alert after the other. One INFO line per alert, one
//! WARN line per delivery that failed; nothing is retried. The rules' state
//! outlives a run (a restart does not alert again what was sent).

use crate::alerts::command::{self, CommandError};
use crate::alerts::webhook::Poster;
use crate::alerts::{Alert, Alerter, Origin, Rules};
use crate::config::AlertsConfig;
use crate::observe::Observer;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

/// How often the snapshot is looked at.
pub const TICK: Duration = Duration::from_secs(1);

/// What one run of the task needs; cheap to clone.
#[derive(Clone)]
pub struct AlertsTask {
    pub config: AlertsConfig,
    pub origin: Origin,
    pub observer: Observer,
    /// The rules' state, kept across runs and reloads.
    pub state: Arc<Mutex<Alerter>>,
}

/// The host's name for the alerts' `host`.
pub fn host_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
}

/// Runs until `stop`.
pub async fn alerter(task: AlertsTask, stop: CancellationToken) {
    let cfg = &task.config;
    let rules = Rules {
        after: secs(cfg.after),
        repeat: secs(cfg.repeat),
        central_lag: secs(cfg.central_lag),
    };
    let poster = match &cfg.webhook {
        None => None,
        Some(hook) => match Poster::new(hook, cfg.timeout) {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::error!(error = %crate::error_chain(&e),
                    "alerts: cannot set up the webhook's client; alerts go to the command only");
                None
            }
        },
    };
    let mut notices = task.observer.subscribe();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let alerts = tokio::select! {
            _ = stop.cancelled() => return,
            notice = notices.recv() => match notice {
                Ok(n) => task.decide(|a, now| a.notice(rules, &n, now)),
                Err(RecvError::Lagged(lost)) => {
                    tracing::warn!(lost, "alerts fell behind: notices lost");
                    continue;
                }
                // The observer lives as long as the daemon.
                Err(RecvError::Closed) => return stop.cancelled().await,
            },
            _ = tick.tick() => {
                let snap = task.observer.snapshot();
                task.decide(|a, now| a.observe(rules, &snap, now))
            }
        };
        for alert in alerts {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = deliver(&task, poster.as_ref(), &alert) => {}
            }
        }
    }
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

impl AlertsTask {
    fn decide(&self, f: impl FnOnce(&mut Alerter, i64) -> Vec<Alert>) -> Vec<Alert> {
        let now = self.observer.now();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut state, now)
    }
}

/// Sends `alert` to the command and the webhook at once; logs it.
async fn deliver(task: &AlertsTask, poster: Option<&Poster>, alert: &Alert) {
    let json = alert.to_json(&task.origin);
    let limit = task.config.timeout;
    let by_command = async {
        match &task.config.command {
            None => None,
            Some(path) => Some(command::run(path, format!("{json}\n").as_bytes(), limit).await),
        }
    };
    let by_webhook = async {
        match poster {
            None => None,
            Some(p) => Some(p.post(json.clone()).await),
        }
    };
    let (by_command, by_webhook) = tokio::join!(by_command, by_webhook);
    let (kind, subject, state) = (alert.kind.as_str(), &alert.subject, alert.state.as_str());
    let mut delivered = Vec::new();
    match by_command {
        Some(Ok(())) => delivered.push("command"),
        Some(Err(e)) => {
            let why = match e {
                CommandError::TimedOut { .. } => "the alert command timed out and was killed",
                _ => "the alert command failed",
            };
            tracing::warn!(kind = %kind, subject = %subject, state = %state, error = %crate::error_chain(&e),
                "alert not delivered: {why}; not retried");
        }
        None => {}
    }
    match by_webhook {
        Some(Ok(())) => delivered.push("webhook"),
        Some(Err(e)) => {
            tracing::warn!(kind = %kind, subject = %subject, state = %state, error = %crate::error_chain(&e),
                "alert not delivered: the webhook failed; not retried");
        }
        None => {}
    }
    tracing::info!(kind = %kind, subject = %subject, state = %state, delivered = %delivered.join(","), "alert");
}
