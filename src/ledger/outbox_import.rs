//! What a ledger restored from a backup lost, brought back from the centre
//! (multi-site.md 3.8): the usages, hold resolutions and refunds the site
//! wrote after the backup and shipped before the restore are charged again
//! locally, under their keys and with their content, so a printer job
//! polled again after the restore is already recorded (no second charge,
//! no conflict at the centre) and the site's balances include what was
//! spent there.
//!
//! Each entry is imported once: a key the ledger already holds (charged
//! again after the restore, or never lost) is left as it is. An entry that
//! cannot be imported faithfully (a fingerprint this ledger cannot
//! rebuild, a hold the member's policy now refuses, a resolution of a
//! usage it does not hold) is skipped and counted, and stays counted at
//! the centre as it was. The import writes outbox entries like any charge;
//! shipped again, they change nothing at the centre (same keys, same
//! fingerprints).

use super::usage::{self, HoldOutcome, Origin, Payable, UsageRequest};
use super::{Result, Site, Ts};
use rusqlite::{Connection, OptionalExtension};
use serde_json::Value;

/// One journal entry the centre held: `usage`, `settle`, `void` or
/// `refund`, with the body the site shipped.
#[derive(Debug, Clone, PartialEq)]
pub struct Lost {
    pub kind: String,
    pub body: Value,
    pub at: Ts,
}

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Imported {
    /// Usages (debits and holds) charged again.
    pub usages: usize,
    /// Holds settled or voided again.
    pub resolutions: usize,
    pub refunds: usize,
    /// Entries the ledger already held.
    pub present: usize,
    /// Entries that could not be imported (see the module docs).
    pub skipped: usize,
}

/// What to do with one entry, decided from the body alone.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Usage {
        req: UsageRequest,
        hold: bool,
    },
    Settle {
        of: Of,
        actual: i64,
        at: Ts,
    },
    Void {
        of: Of,
        at: Ts,
    },
    Refund {
        of: Of,
        reason: String,
        at: Ts,
    },
    /// The body is not one this ledger writes.
    Unreadable,
}

/// The usage a resolution or refund is of: its key and fingerprint (under
/// a key the restored ledger charged again with other content, it is not
/// this ledger's usage).
#[derive(Debug, Clone, PartialEq)]
struct Of {
    key: String,
    fingerprint: Option<String>,
}

/// A usage's fingerprint, as the site wrote it: `[member, origin, payable,
/// amount, is_hold, detail]`.
type Fingerprint = (Option<String>, Origin, Payable, i64, bool, String);

fn text(body: &Value, field: &str) -> Option<String> {
    body.get(field)?.as_str().map(str::to_string)
}

fn number(body: &Value, field: &str) -> Option<i64> {
    body.get(field)?.as_i64()
}

/// Reads one entry: a usage's request is rebuilt from its fingerprint
/// (which names everything the charge was made of), must give the same
/// fingerprint again and agree with the body's member, amount and kind.
fn step(lost: &Lost) -> Step {
    let b = &lost.body;
    let (Some(key), Some(at)) = (text(b, "key"), number(b, "at")) else {
        return Step::Unreadable;
    };
    let of = Of {
        key: key.clone(),
        fingerprint: text(b, "fingerprint"),
    };
    match lost.kind.as_str() {
        "usage" => {
            let Some(fp) = text(b, "fingerprint") else {
                return Step::Unreadable;
            };
            let Ok((member, origin, payable, amount, hold, detail)) =
                serde_json::from_str::<Fingerprint>(&fp)
            else {
                return Step::Unreadable;
            };
            let req = UsageRequest {
                key,
                member,
                origin,
                payable,
                amount,
                detail,
                at,
            };
            let agrees = number(b, "amount") == Some(amount)
                && text(b, "member") == req.member
                && number(b, "is_hold") == Some(i64::from(hold));
            if !agrees || usage::fingerprint(&req, hold) != fp {
                return Step::Unreadable;
            }
            Step::Usage { req, hold }
        }
        "settle" => match number(b, "actual") {
            Some(actual) => Step::Settle { of, actual, at },
            None => Step::Unreadable,
        },
        "void" => Step::Void { of, at },
        "refund" => Step::Refund {
            of,
            reason: text(b, "reason").unwrap_or_default(),
            at,
        },
        _ => Step::Unreadable,
    }
}

/// What the ledger holds under a key: the usage's fingerprint, and
/// whether it is resolved (a hold) and refunded.
struct Held {
    fingerprint: String,
    resolved: bool,
    refunded: bool,
}

fn held(conn: &Connection, key: &str) -> Result<Option<Held>> {
    Ok(conn
        .prepare_cached(
            "SELECT u.fingerprint,
                    EXISTS (SELECT 1 FROM hold_resolutions h WHERE h.usage_id = u.id),
                    EXISTS (SELECT 1 FROM refunds r WHERE r.usage_id = u.id)
             FROM usages u WHERE u.key = ?1",
        )?
        .query_row([key], |r| {
            Ok(Held {
                fingerprint: r.get(0)?,
                resolved: r.get(1)?,
                refunded: r.get(2)?,
            })
        })
        .optional()?)
}

/// The usage a resolution or refund is of, if this ledger holds it.
fn usage_of(conn: &Connection, of: &Of) -> Result<Option<Held>> {
    Ok(
        held(conn, &of.key)?
            .filter(|h| of.fingerprint.as_ref().is_none_or(|f| *f == h.fingerprint)),
    )
}

/// What importing one step came to.
enum Done {
    Usage,
    Resolution,
    Refund,
    Present,
    Skipped,
}

fn apply(conn: &Connection, site: &Site, step: &Step) -> Result<Done> {
    match step {
        Step::Usage { req, hold } => {
            if held(conn, &req.key)?.is_some() {
                return Ok(Done::Present);
            }
            if !hold {
                usage::debit(conn, site, req)?;
                return Ok(Done::Usage);
            }
            Ok(match usage::hold(conn, site, req)? {
                HoldOutcome::Placed(_) => Done::Usage,
                HoldOutcome::Refused { .. } => Done::Skipped,
            })
        }
        Step::Settle { of, actual, at } => match usage_of(conn, of)? {
            None => Ok(Done::Skipped),
            Some(h) if h.resolved => Ok(Done::Present),
            Some(_) => {
                usage::settle(conn, site, &of.key, *actual, "", *at)?;
                Ok(Done::Resolution)
            }
        },
        Step::Void { of, at } => match usage_of(conn, of)? {
            None => Ok(Done::Skipped),
            Some(h) if h.resolved => Ok(Done::Present),
            Some(_) => {
                usage::void(conn, &of.key, "imported from the centre", *at)?;
                Ok(Done::Resolution)
            }
        },
        Step::Refund { of, reason, at } => match usage_of(conn, of)? {
            None => Ok(Done::Skipped),
            Some(h) if h.refunded => Ok(Done::Present),
            Some(_) => {
                usage::refund(conn, &of.key, reason, *at)?;
                Ok(Done::Refund)
            }
        },
        Step::Unreadable => Ok(Done::Skipped),
    }
}

/// Imports `lost` in order, each entry in its own savepoint: one the
/// ledger refuses (an error) is rolled back, skipped and counted, and the
/// rest go on. Runs inside the caller's transaction.
pub fn import(conn: &Connection, site: &Site, lost: &[Lost]) -> Result<Imported> {
    let mut out = Imported::default();
    for entry in lost {
        conn.execute_batch("SAVEPOINT import_entry")?;
        let done = apply(conn, site, &step(entry));
        let done = match done {
            Ok(d) => {
                conn.execute_batch("RELEASE import_entry")?;
                d
            }
            Err(e) => {
                conn.execute_batch("ROLLBACK TO import_entry; RELEASE import_entry")?;
                let key = text(&entry.body, "key").unwrap_or_default();
                tracing::warn!(kind = %entry.kind, key = ?key, error = %crate::error_chain(&e),
                    "an entry the restored ledger lost cannot be imported; the centre keeps it");
                Done::Skipped
            }
        };
        match done {
            Done::Usage => out.usages += 1,
            Done::Resolution => out.resolutions += 1,
            Done::Refund => out.refunds += 1,
            Done::Present => out.present += 1,
            Done::Skipped => out.skipped += 1,
        }
    }
    Ok(out)
}

#[cfg(test)]
#[path = "outbox_import_tests.rs"]
mod tests;
