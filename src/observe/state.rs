//! The observed state, and the plain values a snapshot hands out.

use super::latency::Latency;
use std::collections::BTreeMap;

/// What became of a finished job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    /// Charged to a member (a released job settled included).
    Charged,
    /// No member has its print user name: recorded for reports only.
    Unattributed,
    /// Set aside for review: nothing charged.
    Review,
}

impl Outcome {
    pub const ALL: [Outcome; 3] = [Outcome::Charged, Outcome::Unattributed, Outcome::Review];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Charged => "charged",
            Outcome::Unattributed => "unattributed",
            Outcome::Review => "review",
        }
    }
}

/// Jobs counted with their impressions and cents.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub jobs: u64,
    pub impressions: u64,
    pub cents: i64,
}

/// A printer or card reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    /// `None` until it first answered or failed.
    pub up: Option<bool>,
    /// Since when it is in its current state (unix seconds); for `up:
    /// None`, since when it is known.
    pub since: i64,
    /// Why it is down, while it is.
    pub reason: Option<String>,
}

impl Component {
    pub fn new(now: i64) -> Component {
        Component {
            up: None,
            since: now,
            reason: None,
        }
    }
}

/// The grants syncs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrantsSync {
    pub succeeded: u64,
    pub failed: u64,
    /// The last sync that applied the file.
    pub last_good: Option<i64>,
    /// The first failure of the current streak, while syncs fail.
    pub failing_since: Option<i64>,
    pub last_error: Option<String>,
}

impl GrantsSync {
    pub(super) fn succeeded(&mut self, now: i64) {
        self.succeeded = self.succeeded.saturating_add(1);
        self.last_good = Some(now);
        self.failing_since = None;
        self.last_error = None;
    }

    pub(super) fn failed(&mut self, now: i64, error: &str) {
        self.failed = self.failed.saturating_add(1);
        self.failing_since.get_or_insert(now);
        self.last_error = Some(error.into());
    }
}

/// The scheduled backups.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backups {
    pub written: u64,
    pub failed: u64,
    pub last_good: Option<i64>,
    pub last_failure: Option<i64>,
    /// The last failure's error, while backups fail.
    pub last_error: Option<String>,
}

impl Backups {
    pub(super) fn written(&mut self, now: i64) {
        self.written = self.written.saturating_add(1);
        self.last_good = Some(now);
        self.last_error = None;
    }

    pub(super) fn failed(&mut self, now: i64, error: &str) {
        self.failed = self.failed.saturating_add(1);
        self.last_failure = Some(now);
        self.last_error = Some(error.into());
    }
}

/// A chain site's outbox, as the shipper last read it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CentralBacklog {
    /// Entries the centre has not acknowledged yet.
    pub unacknowledged: u64,
    /// When the oldest of them was written (unix seconds, the site's
    /// clock); `None` when everything is acknowledged.
    pub oldest_at: Option<i64>,
}

/// The state at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// When the observer was made (the daemon's start).
    pub started: i64,
    pub printers: BTreeMap<String, Component>,
    pub readers: BTreeMap<String, Component>,
    pub grants: GrantsSync,
    pub backups: Backups,
    /// Restarts per task name (tasks never restarted are absent).
    pub restarts: BTreeMap<String, u64>,
    /// Finished jobs per printer and outcome.
    pub jobs: BTreeMap<(String, Outcome), Tally>,
    /// Jobs waiting for a release, per held queue.
    pub held: BTreeMap<String, u64>,
    pub open_sessions: u64,
    pub commits: Latency,
    /// The outbox of a chain's site (`None`: not in a chain, or not read
    /// yet).
    pub central: Option<CentralBacklog>,
}

pub(super) type State = Snapshot;

impl State {
    pub(super) fn new(started: i64) -> State {
        Snapshot {
            started,
            printers: BTreeMap::new(),
            readers: BTreeMap::new(),
            grants: GrantsSync::default(),
            backups: Backups::default(),
            restarts: BTreeMap::new(),
            jobs: BTreeMap::new(),
            held: BTreeMap::new(),
            open_sessions: 0,
            commits: Latency::default(),
            central: None,
        }
    }

    pub(super) fn snapshot(&self) -> Snapshot {
        self.clone()
    }

    pub(super) fn tally(&mut self, printer: &str, outcome: Outcome, impressions: u64, cents: i64) {
        let t = self.jobs.entry((printer.into(), outcome)).or_default();
        t.jobs = t.jobs.saturating_add(1);
        t.impressions = t.impressions.saturating_add(impressions);
        t.cents = t.cents.saturating_add(cents);
    }
}

/// Marks `id` up (`reason` `None`) or down; `since` moves only when its
/// state changes (or the reason of a down one does not: it stays).
pub(super) fn mark(
    all: &mut BTreeMap<String, Component>,
    id: &str,
    now: i64,
    reason: Option<&str>,
) {
    let c = all.entry(id.into()).or_insert(Component::new(now));
    let up = reason.is_none();
    if c.up != Some(up) {
        c.up = Some(up);
        c.since = now;
    }
    c.reason = reason.map(str::to_string);
}
