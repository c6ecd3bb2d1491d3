//! The clock guard: the daemon's tasks read the time through it, so a wrong
//! wall clock cannot destroy credit.
//!
//! Every reading is judged by the clock rule ([`crate::clock::guard`])
//! against the last trusted reading on this boot (at start, the clock mark
//! the ledger keeps) and the ledger's newest row dated by a clock. While the
//! wall clock is judged wrong, [`Clock::trusted`] says no, and the
//! time-driven actions (the expiry sweep, the grants sync and its period
//! issue, hold timeouts, the overlong-session sweep) wait; the guard logs
//! ERROR once with both times, and INFO when the clock agrees again.
//!
//! Charges still record. Every wall time the guard hands out is at least
//! the ledger's newest row and every time handed out before; while the
//! clock is wrong it is the guard's best estimate (the boot clock since the
//! last trusted reading), so rows are not dated by a clock known to be
//! wrong.
//!
//! A supervised task ([`ClockGuard::watch`]) reads the rows written since
//! its last look every [`CLOCK_CHECK`], and saves the clock mark when rows
//! were written under a trusted clock, so that a restart on the same boot
//! has an anchor.

use crate::clock::guard::{Mark, Outcome, Reading, Verdict, Witnesses};
use crate::clock::{self, Clock, TimeSource};
use crate::ledger::clock_marks::{self, Seen};
use crate::ledger::writer::WriterHandle;
use crate::ledger::{Ledger, LedgerError, Ts};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How often the guard reads the ledger's new rows and judges the clock.
pub const CLOCK_CHECK: Duration = Duration::from_secs(30);

/// The guard; cheap to clone. [`ClockGuard::clock`] is the daemon's clock.
#[derive(Clone)]
pub struct ClockGuard(Arc<Inner>);

struct Inner {
    raw: Clock,
    boot_id: String,
    /// A std mutex: held only to judge one reading, never across an `.await`.
    state: Mutex<State>,
    /// Whether the wall clock is trusted, for tasks that wait for it.
    trusted: watch::Sender<bool>,
}

struct State {
    witnesses: Witnesses,
    held: bool,
    /// No wall time handed out is earlier than this.
    floor: Ts,
    seen: Seen,
    /// Clock-dated rows were written since the mark was last saved.
    unmarked: bool,
}

impl ClockGuard {
    /// A guard over `raw`, with what `ledger` says about time (read before
    /// the writer takes the ledger). Judges the clock at once.
    pub fn open(ledger: &Ledger, raw: Clock) -> Result<ClockGuard, LedgerError> {
        let newest = clock_marks::newest(ledger.conn())?;
        let mark = clock_marks::load_mark(ledger.conn())?;
        let boot_id = clock::boot_id();
        let anchor = mark.and_then(|m| m.anchor_on(&boot_id));
        let (trusted, _) = watch::channel(true);
        let guard = ClockGuard(Arc::new(Inner {
            raw,
            boot_id,
            state: Mutex::new(State {
                witnesses: Witnesses::new(anchor, newest.at),
                held: false,
                floor: newest.at.unwrap_or(Ts::MIN),
                seen: newest.seen,
                unmarked: false,
            }),
            trusted,
        }));
        guard.read();
        Ok(guard)
    }

    /// The clock every task reads: guarded wall time, the raw boot clock.
    pub fn clock(&self) -> Clock {
        Clock::new(self.clone())
    }

    /// Whether the wall clock is trusted; changes as the guard judges.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.0.trusted.subscribe()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads both clocks and judges them: the wall time to go by, and
    /// whether the wall clock is trusted.
    fn read(&self) -> (Ts, bool) {
        let now = Reading {
            wall: self.0.raw.wall(),
            boot_ms: self.0.raw.boot_ms(),
        };
        let mut s = self.lock();
        let outcome = s.witnesses.judge(now);
        log_change(outcome, s.held, now.wall);
        let trusted = outcome.trusted();
        if s.held == trusted {
            s.held = !trusted;
            self.0.trusted.send_replace(trusted);
        }
        let at = outcome.best_estimate(now.wall).max(s.floor);
        s.floor = at;
        (at, trusted)
    }

    /// Reads the rows written since the last look, judges the clock, and
    /// saves the mark if rows were written and the clock is trusted.
    pub async fn refresh(&self, writer: &WriterHandle) {
        let since = self.lock().seen;
        let newest = match writer
            .call_async(move |conn| clock_marks::newest_since(conn, since))
            .await
        {
            Ok(newest) => newest,
            Err(e) => {
                tracing::error!(error = %e, "clock guard cannot read the ledger's newest rows; will retry");
                return;
            }
        };
        {
            let mut s = self.lock();
            s.seen = newest.seen;
            if let Some(at) = newest.at {
                s.witnesses.saw_row(at);
                s.floor = s.floor.max(at);
                s.unmarked = true;
            }
        }
        let (_, trusted) = self.read();
        if let Some(mark) = self.mark_due(trusted) {
            let saved = writer
                .call_async(move |conn| clock_marks::save_mark(conn, &mark))
                .await;
            if let Err(e) = saved {
                tracing::warn!(error = %e, "cannot save the clock mark; will retry");
                self.lock().unmarked = true;
            }
        }
    }

    /// The mark to save now, if any: the last trusted reading, once rows
    /// were written since the last mark, on a boot with an id.
    fn mark_due(&self, trusted: bool) -> Option<Mark> {
        let mut s = self.lock();
        let anchor = s.witnesses.anchor?;
        if !trusted || !s.unmarked || self.0.boot_id.is_empty() {
            return None;
        }
        s.unmarked = false;
        Some(Mark {
            wall: anchor.wall,
            boot_ms: anchor.boot_ms,
            boot_id: self.0.boot_id.clone(),
        })
    }

    /// The supervised task: [`Self::refresh`] now and every [`CLOCK_CHECK`].
    pub async fn watch(self, writer: WriterHandle, stop: CancellationToken) {
        loop {
            self.refresh(&writer).await;
            tokio::select! {
                _ = tokio::time::sleep(CLOCK_CHECK) => {}
                _ = stop.cancelled() => return,
            }
        }
    }
}

impl TimeSource for ClockGuard {
    fn wall(&self) -> i64 {
        self.read().0
    }

    fn boot_ms(&self) -> i64 {
        self.0.raw.boot_ms()
    }

    fn trusted(&self) -> bool {
        self.read().1
    }
}

/// Resolves when the wall clock is trusted again after it was not (never
/// if the guard is gone).
pub async fn regained(trust: &mut watch::Receiver<bool>) {
    loop {
        if trust.changed().await.is_err() {
            return std::future::pending().await;
        }
        if *trust.borrow_and_update() {
            return;
        }
    }
}

fn show(ts: Ts) -> String {
    clock::format_rfc3339(chrono_tz::UTC, ts)
}

/// One line when the judgement changes: ERROR when the clock is first
/// judged wrong, INFO when it agrees again, WARN when a step is accepted.
fn log_change(outcome: Outcome, was_held: bool, wall: Ts) {
    match outcome {
        Outcome::Held(Verdict::Stepped { expected }) if !was_held => tracing::error!(
            wall = %show(wall), expected = %show(expected),
            "wall clock stepped: more than 5 minutes from where the boot clock puts it; holding expiry, \
             the grants sync (period issue), hold timeouts and the overlong-session sweep until it \
             agrees again; charges still record"
        ),
        Outcome::Held(Verdict::BeforeNewestRow { newest }) if !was_held => tracing::error!(
            wall = %show(wall), newest_row = %show(newest),
            "wall clock is more than 5 minutes earlier than the ledger's newest row; holding expiry, \
             the grants sync (period issue), hold timeouts and the overlong-session sweep until it \
             agrees again; charges still record, dated no earlier than that row"
        ),
        Outcome::Trusted if was_held => tracing::info!(
            wall = %show(wall),
            "wall clock agrees again; expiry, the grants sync, hold timeouts and the overlong-session sweep resume"
        ),
        Outcome::Accepted { expected } => tracing::warn!(
            wall = %show(wall), expected = %show(expected),
            "wall clock accepted: it stepped and has run steadily with the boot clock for a day since; \
             expiry, the grants sync, hold timeouts and the overlong-session sweep resume by it"
        ),
        _ => {}
    }
}

#[cfg(test)]
mod tests;
