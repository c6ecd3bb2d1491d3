//! Recording a finished job in the ledger: runs inside the writer, so the
//! check that the job is new, the debit and the printer's progress commit
//! together.

use super::jobs::{self, Job, PricedJob};
use crate::ledger::usage::{self, Charge};
use crate::ledger::{Origin, Payable, Result, Site, UsageRequest};
use rusqlite::{Connection, OptionalExtension};

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
}

/// Whether a usage with this key exists.
pub fn is_recorded(conn: &Connection, key: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM usages WHERE key = ?1")?
        .query_row([key], |_| Ok(()))
        .optional()?
        .is_some())
}

/// The member whose print user name is `user` (already normalised).
pub fn member_of_print_user(conn: &Connection, user: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT member_id FROM member_print_users WHERE user = ?1")?
        .query_row([user], |r| r.get(0))
        .optional()?)
}

/// Charges a finished job once: a job already in the ledger is left alone.
pub fn record_job(
    conn: &Connection,
    site: &Site,
    printer: &str,
    job: &Job,
    priced: &PricedJob,
    now: i64,
) -> Result<Recorded> {
    let key = job.key(printer);
    if is_recorded(conn, &key)? {
        return Ok(Recorded::Already);
    }
    let member = match job.owner() {
        Some(user) => member_of_print_user(conn, &user)?,
        None => None,
    };
    let req = UsageRequest {
        key: key.clone(),
        member: member.clone(),
        origin: Origin::Print {
            printer: printer.to_string(),
        },
        payable: Payable::Printing,
        amount: priced.cents,
        detail: jobs::detail(job, priced),
        at: job.completed_at.unwrap_or(now),
    };
    let charge = usage::debit(conn, site, &req)?;
    conn.prepare_cached(
        "INSERT INTO printer_progress (printer, jobs_charged, last_job_id, last_job_key, last_charged_at)
         VALUES (?1, 1, ?2, ?3, ?4)
         ON CONFLICT(printer) DO UPDATE SET jobs_charged = jobs_charged + 1,
            last_job_id = excluded.last_job_id, last_job_key = excluded.last_job_key,
            last_charged_at = excluded.last_charged_at",
    )?
    .execute(rusqlite::params![printer, job.id, key, now])?;
    Ok(Recorded::Charged { member, charge })
}
