//! One alert: what it is about, whether it fires or is resolved, and the
//! JSON the command and the webhook receive.

use crate::clock;
use chrono_tz::Tz;
use serde::Serialize;

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// A printer has been down for `after`; subject: its id.
    PrinterDown,
    /// A card reader's device has been gone for `after`; subject: its id.
    ReaderDown,
    /// Grants syncs have failed for `after`; subject: `grants`.
    GrantsFailing,
    /// A scheduled backup failed; subject: `backup`.
    BackupFailed,
    /// A finished job was set aside for review; subject: `printer/job`.
    JobToReview,
    /// A task restarted [`RESTARTS`](super::rules::RESTARTS) times within
    /// `after`; subject: the task's name.
    TaskRestarting,
    /// A chain site's oldest unacknowledged outbox entry is older than
    /// `central_lag`; subject: `central`.
    CentralLagging,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::PrinterDown => "printer_down",
            Kind::ReaderDown => "reader_down",
            Kind::GrantsFailing => "grants_failing",
            Kind::BackupFailed => "backup_failed",
            Kind::JobToReview => "job_to_review",
            Kind::TaskRestarting => "task_restarting",
            Kind::CentralLagging => "central_lagging",
        }
    }
}

/// Whether the condition holds (`firing`) or has cleared (`resolved`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Firing,
    Resolved,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Firing => "firing",
            State::Resolved => "resolved",
        }
    }
}

/// The job a [`Kind::JobToReview`] alert is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRef {
    pub printer: String,
    pub job_id: i32,
    /// The print user name the printer gave, if any.
    pub owner: Option<String>,
}

/// One alert to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub kind: Kind,
    pub subject: String,
    pub state: State,
    /// When the condition began (unix seconds).
    pub since: i64,
    /// Why it fired, or how it cleared.
    pub reason: String,
    /// When the alert was decided (unix seconds).
    pub at: i64,
    pub job: Option<JobRef>,
}

/// Where an alert comes from: the site's name, its time zone (times are
/// written in it, with their offset) and the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub site: String,
    pub host: String,
    pub tz: Tz,
}

/// The JSON an alert is written as, its keys in this order.
#[derive(Serialize)]
struct Json<'a> {
    kind: &'static str,
    subject: &'a str,
    state: &'static str,
    since: String,
    reason: &'a str,
    site: &'a str,
    host: &'a str,
    time: String,
    #[serde(flatten)]
    job: Option<JobJson<'a>>,
}

#[derive(Serialize)]
struct JobJson<'a> {
    printer: &'a str,
    job_id: i32,
    owner: Option<&'a str>,
}

impl Alert {
    /// The alert as one line of JSON (no newline inside; serde escapes every
    /// control character a reason may hold).
    pub fn to_json(&self, origin: &Origin) -> String {
        let time = |t: i64| clock::format_rfc3339(origin.tz, t);
        let json = Json {
            kind: self.kind.as_str(),
            subject: &self.subject,
            state: self.state.as_str(),
            since: time(self.since),
            reason: &self.reason,
            site: &origin.site,
            host: &origin.host,
            time: time(self.at),
            job: self.job.as_ref().map(|j| JobJson {
                printer: &j.printer,
                job_id: j.job_id,
                owner: j.owner.as_deref(),
            }),
        };
        // Strings and integers only: serializing cannot fail.
        serde_json::to_string(&json).unwrap_or_default()
    }
}
