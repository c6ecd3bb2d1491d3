//! The pure core of alerting: from what the daemon observes (a
//! [`Snapshot`], the one-off [`Notice`]s) and the time, which alerts to send.
//!
//! A *condition* is one kind about one subject (printer `lobby` down, grants
//! syncs failing, task `printer:lobby` restarting). It alerts once, when it
//! has held for `after` (at once for a failed backup or a restarting task),
//! and not again until it clears; when it clears, a resolved alert follows
//! only if its firing one was sent. A condition fires at most once per
//! `repeat`: one that clears and comes back sooner (a flapping printer) is
//! alerted when `repeat` has passed since its last firing alert, if it still
//! holds then. A job set aside for review is its own condition and alerts
//! once, with no resolved alert.
//!
//! A task is restarting when it restarted [`RESTARTS`] times within `after`;
//! it clears once `after` has passed without a restart.

use super::alert::{Alert, JobRef, Kind, State};
use crate::observe::{Component, Notice, Snapshot};
use std::collections::{BTreeMap, VecDeque};

/// Restarts within `after` that make a task's condition fire.
pub const RESTARTS: usize = 3;

/// When conditions alert, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// How long a printer or reader is down, or grants syncs fail, before it
    /// alerts; the window restarts are counted in.
    pub after: i64,
    /// The least time between two firing alerts of one condition.
    pub repeat: i64,
    /// How old the oldest unacknowledged outbox entry of a chain's site
    /// may grow before it alerts.
    pub central_lag: i64,
}

type Key = (Kind, String);

/// One condition's bookkeeping.
#[derive(Debug, Clone)]
struct Condition {
    /// Whether it holds now.
    holds: bool,
    since: i64,
    reason: String,
    /// Whether this episode's firing alert was sent.
    sent: bool,
    /// The last firing alert, across episodes (for `repeat`).
    last_fired: Option<i64>,
}

/// Every condition's state; feed it notices and snapshots, send what it
/// returns.
#[derive(Debug, Clone, Default)]
pub struct Alerter {
    conditions: BTreeMap<Key, Condition>,
    /// Each task's recent restarts (within `after`).
    restarts: BTreeMap<String, VecDeque<i64>>,
}

impl Alerter {
    /// A one-off event at `now`.
    pub fn notice(&mut self, rules: Rules, notice: &Notice, now: i64) -> Vec<Alert> {
        match notice {
            Notice::JobToReview {
                printer,
                job_id,
                owner,
                why,
                at,
            } => vec![Alert {
                kind: Kind::JobToReview,
                subject: format!("{printer}/{job_id}"),
                state: State::Firing,
                since: *at,
                reason: why.clone(),
                at: now,
                job: Some(JobRef {
                    printer: printer.clone(),
                    job_id: *job_id,
                    owner: owner.clone(),
                }),
            }],
            Notice::BackupFailed { error, at } => {
                let key = (Kind::BackupFailed, "backup".to_string());
                self.hold(rules, key, *at, error, true, now)
                    .into_iter()
                    .collect()
            }
            Notice::TaskRestarted {
                task, cause, at, ..
            } => {
                let recent = self.restarts.entry(task.clone()).or_default();
                recent.push_back(*at);
                while recent.front().is_some_and(|t| *t <= at - rules.after) {
                    recent.pop_front();
                }
                if recent.len() < RESTARTS {
                    return Vec::new();
                }
                let first = recent.front().copied().unwrap_or(*at);
                let reason = format!("{} restarts since; last cause: {cause}", recent.len());
                let key = (Kind::TaskRestarting, task.clone());
                self.hold(rules, key, first, &reason, true, now)
                    .into_iter()
                    .collect()
            }
        }
    }

    /// The state at `now`: printers, readers, grants syncs, backups, and
    /// whether restarting tasks calmed down.
    pub fn observe(&mut self, rules: Rules, snap: &Snapshot, now: i64) -> Vec<Alert> {
        let mut out = Vec::new();
        self.components(rules, Kind::PrinterDown, &snap.printers, now, &mut out);
        self.components(rules, Kind::ReaderDown, &snap.readers, now, &mut out);
        let grants = (Kind::GrantsFailing, "grants".to_string());
        out.extend(match snap.grants.failing_since {
            Some(since) => {
                let reason = snap.grants.last_error.as_deref().unwrap_or("failing");
                self.hold(
                    rules,
                    grants,
                    since,
                    reason,
                    now - since >= rules.after,
                    now,
                )
            }
            None => self.clear(&grants, "a grants sync worked again", now),
        });
        let backup = (Kind::BackupFailed, "backup".to_string());
        out.extend(match &snap.backups.last_error {
            Some(error) => {
                let since = snap.backups.last_failure.unwrap_or(now);
                self.hold(rules, backup, since, error, true, now)
            }
            None => self.clear(&backup, "a backup was written", now),
        });
        self.calm_tasks(rules, now, &mut out);
        out.extend(self.central(rules, snap, now));
        self.forget(rules, now);
        out
    }

    /// A chain site's shipping: lagging while its oldest unacknowledged
    /// entry is `central_lag` old.
    fn central(&mut self, rules: Rules, snap: &Snapshot, now: i64) -> Option<Alert> {
        let key = (Kind::CentralLagging, "central".to_string());
        let backlog = snap.central.unwrap_or_default();
        match backlog.oldest_at {
            Some(oldest) if now - oldest >= rules.central_lag => {
                let reason = format!(
                    "{} entries unacknowledged by the centre, the oldest written {}s ago",
                    backlog.unacknowledged,
                    now - oldest
                );
                self.hold(rules, key, oldest, &reason, true, now)
            }
            _ => self.clear(&key, "the centre acknowledged the backlog", now),
        }
    }

    /// Printers or readers: down ones hold, the others clear.
    fn components(
        &mut self,
        rules: Rules,
        kind: Kind,
        all: &BTreeMap<String, Component>,
        now: i64,
        out: &mut Vec<Alert>,
    ) {
        for (id, c) in all {
            if c.up == Some(false) {
                let reason = c.reason.as_deref().unwrap_or("down");
                let due = now - c.since >= rules.after;
                out.extend(self.hold(rules, (kind, id.clone()), c.since, reason, due, now));
            }
        }
        let holding: Vec<Key> = self.holding(kind).collect();
        for key in holding {
            let why = match all.get(&key.1) {
                Some(c) if c.up == Some(false) => continue,
                Some(_) => "up again",
                None => "no longer in the config",
            };
            out.extend(self.clear(&key, why, now));
        }
    }

    /// Tasks with no restart within `after` clear.
    fn calm_tasks(&mut self, rules: Rules, now: i64, out: &mut Vec<Alert>) {
        self.restarts.retain(|_, recent| {
            while recent.front().is_some_and(|t| *t <= now - rules.after) {
                recent.pop_front();
            }
            !recent.is_empty()
        });
        let holding: Vec<Key> = self.holding(Kind::TaskRestarting).collect();
        for key in holding {
            if !self.restarts.contains_key(&key.1) {
                out.extend(self.clear(&key, "no restart since", now));
            }
        }
    }

    fn holding(&self, kind: Kind) -> impl Iterator<Item = Key> + '_ {
        self.conditions
            .iter()
            .filter(move |(k, c)| k.0 == kind && c.holds)
            .map(|(k, _)| k.clone())
    }

    /// Condition `key` holds (since `since`, for `reason`); it fires if
    /// `due`, not sent yet this episode, and `repeat` has passed since its
    /// last firing alert.
    fn hold(
        &mut self,
        rules: Rules,
        key: Key,
        since: i64,
        reason: &str,
        due: bool,
        now: i64,
    ) -> Option<Alert> {
        let c = self.conditions.entry(key.clone()).or_insert(Condition {
            holds: false,
            since,
            reason: String::new(),
            sent: false,
            last_fired: None,
        });
        if !c.holds {
            c.holds = true;
            c.since = since;
            c.sent = false;
        }
        c.reason = reason.to_string();
        let quiet = c.last_fired.is_some_and(|t| now - t < rules.repeat);
        if !due || c.sent || quiet {
            return None;
        }
        c.sent = true;
        c.last_fired = Some(now);
        Some(alert(&key, State::Firing, c.since, reason, now))
    }

    /// Condition `key` cleared (`how`): resolved if its firing alert was
    /// sent.
    fn clear(&mut self, key: &Key, how: &str, now: i64) -> Option<Alert> {
        let c = self.conditions.get_mut(key)?;
        let was_sent = c.holds && c.sent;
        c.holds = false;
        c.sent = false;
        was_sent.then(|| alert(key, State::Resolved, c.since, how, now))
    }

    /// Drops cleared conditions whose `repeat` is over: nothing left to
    /// remember about them.
    fn forget(&mut self, rules: Rules, now: i64) {
        self.conditions
            .retain(|_, c| c.holds || c.last_fired.is_some_and(|t| now - t < rules.repeat));
    }
}

fn alert(key: &Key, state: State, since: i64, reason: &str, now: i64) -> Alert {
    Alert {
        kind: key.0,
        subject: key.1.clone(),
        state,
        since,
        reason: reason.to_string(),
        at: now,
        job: None,
    }
}

#[cfg(test)]
mod tests;
