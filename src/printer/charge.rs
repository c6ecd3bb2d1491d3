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
    /// A released job finished: its hold settled to the real cost.
    Settled {
        member: String,
        estimate: i64,
        charge: Charge,
    },
    /// A released job ended with nothing printed: its hold was voided.
    Voided { member: String, estimate: i64 },
}

/// The unresolved hold under `key`: (member, amount reserved).
pub fn open_hold(conn: &Connection, key: &str) -> Result<Option<(String, i64)>> {
    Ok(conn
        .prepare_cached(
            "SELECT u.member_id, u.amount FROM usages u
             LEFT JOIN hold_resolutions r ON r.usage_id = u.id
             WHERE u.key = ?1 AND u.is_hold = 1 AND r.usage_id IS NULL",
        )?
        .query_row([key], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

/// A finished job that printed nothing: voids its hold, if it had one.
pub fn record_nothing_printed(
    conn: &Connection,
    printer: &str,
    job: &Job,
    now: i64,
) -> Result<Recorded> {
    let key = job.key(printer);
    match open_hold(conn, &key)? {
        Some((member, estimate)) => {
            let reason = format!(
                "job {} {} with nothing printed",
                job.id,
                jobs::state_name(job.state)
            );
            usage::void(conn, &key, &reason, now)?;
            Ok(Recorded::Voided { member, estimate })
        }
        None => Ok(Recorded::Already),
    }
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
    if let Some((member, estimate)) = open_hold(conn, &key)? {
        let detail = jobs::detail(job, priced);
        let at = job.completed_at.unwrap_or(now);
        let charge = usage::settle(conn, site, &key, priced.cents, &detail, at)?;
        progress(conn, printer, job, &key, now)?;
        return Ok(Recorded::Settled {
            member,
            estimate,
            charge,
        });
    }
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
    progress(conn, printer, job, &key, now)?;
    Ok(Recorded::Charged { member, charge })
}

fn progress(conn: &Connection, printer: &str, job: &Job, key: &str, now: i64) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO printer_progress (printer, jobs_charged, last_job_id, last_job_key, last_charged_at)
         VALUES (?1, 1, ?2, ?3, ?4)
         ON CONFLICT(printer) DO UPDATE SET jobs_charged = jobs_charged + 1,
            last_job_id = excluded.last_job_id, last_job_key = excluded.last_job_key,
            last_charged_at = excluded.last_charged_at",
    )?
    .execute(rusqlite::params![printer, job.id, key, now])?;
    Ok(())
}
