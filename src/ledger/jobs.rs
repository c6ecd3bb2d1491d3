//! Finished print jobs. The printer side hands over plain values (the job's
//! key, its owner's print user name, what it cost and why, and when) and the
//! ledger decides, inside the writer's transaction: recorded already, settle
//! the job's open hold, or debit it. A job whose counts make no sense is set
//! aside in [`review`] instead.

pub mod review;

use super::detail::UsageDetail;
use super::owners;
use super::usage::{self, Charge, Origin, Payable, UsageRequest};
use super::{Result, Site, Ts};
use rusqlite::{Connection, OptionalExtension};

/// A job the printer reports as finished, priced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishedJob {
    /// The job's idempotency key (`print:PRINTER:UUID`, ...).
    pub key: String,
    pub printer: String,
    /// The normalised print user name, if the job had one.
    pub print_user: Option<String>,
    pub cents: i64,
    pub detail: UsageDetail,
    /// When it finished (the printer's time, else now).
    pub at: Ts,
}

/// What happened to a finished job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// Its key was already in the ledger: charged before, nothing done.
    Already,
    /// Charged now; `member` is `None` for unattributed usage.
    Charged {
        member: Option<String>,
        charge: Charge,
    },
    /// A released job finished: its hold settled to the real cost.
    Settled {
        member: String,
        estimate: i64,
        charge: Charge,
    },
    /// A released job ended with nothing printed: its hold was voided.
    Voided { member: String, estimate: i64 },
    /// Its counts make no sense: set aside for review, charged nothing.
    SetAside,
}

/// Whether a usage with this key exists.
pub fn is_recorded(conn: &Connection, key: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM usages WHERE key = ?1")?
        .query_row([key], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Charges a finished job once: a job already in the ledger (charged, or in
/// review) is left alone, a released job settles its hold, any other is
/// debited to the member whose print user name it carries (or recorded
/// unattributed).
pub fn record_finished(conn: &Connection, site: &Site, job: &FinishedJob) -> Result<Recorded> {
    if review::exists(conn, &job.key)? {
        return Ok(Recorded::Already);
    }
    charge_finished(conn, site, job)
}

fn charge_finished(conn: &Connection, site: &Site, job: &FinishedJob) -> Result<Recorded> {
    if let Some(hold) = usage::open_hold(conn, &job.key)? {
        let detail = job.detail.to_json();
        let charge = usage::settle(conn, site, &job.key, job.cents, &detail, job.at)?;
        return Ok(Recorded::Settled {
            member: hold.member,
            estimate: hold.amount,
            charge,
        });
    }
    if is_recorded(conn, &job.key)? {
        return Ok(Recorded::Already);
    }
    let member = match &job.print_user {
        Some(user) => owners::member_of_print_user(conn, user)?,
        None => None,
    };
    let req = UsageRequest {
        key: job.key.clone(),
        member: member.clone(),
        origin: Origin::Print {
            printer: job.printer.clone(),
        },
        payable: Payable::Printing,
        amount: job.cents,
        detail: job.detail.to_json(),
        at: job.at,
    };
    let charge = usage::debit(conn, site, &req)?;
    Ok(Recorded::Charged { member, charge })
}

/// A finished job that printed nothing: voids its hold, if it had one (a
/// job in review keeps its hold until the review is resolved).
pub fn record_nothing_printed(
    conn: &Connection,
    key: &str,
    reason: &str,
    at: Ts,
) -> Result<Recorded> {
    if review::exists(conn, key)? {
        return Ok(Recorded::Already);
    }
    void_hold(conn, key, reason, at)
}

fn void_hold(conn: &Connection, key: &str, reason: &str, at: Ts) -> Result<Recorded> {
    match usage::open_hold(conn, key)? {
        Some(hold) => {
            usage::void(conn, key, reason, at)?;
            Ok(Recorded::Voided {
                member: hold.member,
                estimate: hold.amount,
            })
        }
        None => Ok(Recorded::Already),
    }
}
