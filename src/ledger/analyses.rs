//! What the spool analysis found in a job's document, kept by the job's
//! identity (its `job-uuid`) so a restart, a move to another queue or a
//! second poll never analyses it again. Written once per job, never changed.

use super::{Result, Ts};
use rusqlite::{params, Connection, OptionalExtension};

/// What the analysis of one job's document came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// Its pages were counted: impressions with the job's copies, sides,
    /// number-up and page ranges applied.
    Analysed {
        pages: i64,
        colour_pages: i64,
        mono_impressions: i64,
        colour_impressions: i64,
        blank_backs: i64,
    },
    /// It could not be analysed (too big, too slow, encrypted, an unknown
    /// format, no document): the job is priced as before.
    Fallback { reason: String },
}

/// One job's analysis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Analysis {
    /// The job's identity: `job-uuid`, else `PRINTER:job-ID:created-T`.
    pub job: String,
    pub printer: String,
    pub job_id: i32,
    /// The document's format as analysed (`application/pdf`, ...), or the
    /// one its job gave when it was not.
    pub format: String,
    pub finding: Finding,
    pub at: Ts,
}

/// Records `a` unless its job has one already; `true` when recorded now.
pub fn record(conn: &Connection, a: &Analysis) -> Result<bool> {
    let (outcome, reason, counts) = match &a.finding {
        Finding::Analysed {
            pages,
            colour_pages,
            mono_impressions,
            colour_impressions,
            blank_backs,
        } => (
            "analysed",
            None,
            [
                Some(*pages),
                Some(*colour_pages),
                Some(*mono_impressions),
                Some(*colour_impressions),
                Some(*blank_backs),
            ],
        ),
        Finding::Fallback { reason } => ("fallback", Some(reason.as_str()), [None; 5]),
    };
    let n = conn
        .prepare_cached(
            "INSERT INTO job_analyses (job, printer, job_id, format, outcome, pages, colour_pages,
                 mono_impressions, colour_impressions, blank_backs, reason, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
             ON CONFLICT(job) DO NOTHING",
        )?
        .execute(params![
            a.job, a.printer, a.job_id, a.format, outcome, counts[0], counts[1], counts[2],
            counts[3], counts[4], reason, a.at
        ])?;
    Ok(n == 1)
}

/// The analysis of `job`, if there is one.
pub fn get(conn: &Connection, job: &str) -> Result<Option<Analysis>> {
    Ok(conn
        .prepare_cached(
            "SELECT job, printer, job_id, format, outcome, pages, colour_pages, mono_impressions,
                    colour_impressions, blank_backs, reason, at
             FROM job_analyses WHERE job = ?1",
        )?
        .query_row([job], |r| {
            let outcome: String = r.get(4)?;
            let finding = if outcome == "analysed" {
                Finding::Analysed {
                    pages: r.get(5)?,
                    colour_pages: r.get(6)?,
                    mono_impressions: r.get(7)?,
                    colour_impressions: r.get(8)?,
                    blank_backs: r.get(9)?,
                }
            } else {
                Finding::Fallback {
                    reason: r.get::<_, Option<String>>(10)?.unwrap_or_default(),
                }
            };
            Ok(Analysis {
                job: r.get(0)?,
                printer: r.get(1)?,
                job_id: r.get(2)?,
                format: r.get(3)?,
                finding,
                at: r.get(11)?,
            })
        })
        .optional()?)
}

/// The analyses of `jobs` that exist, in no order.
pub fn get_many(conn: &Connection, jobs: &[String]) -> Result<Vec<Analysis>> {
    let mut out = Vec::new();
    for job in jobs {
        if let Some(a) = get(conn, job)? {
            out.push(a);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger() -> Connection {
        let mut conn = Connection::open_in_memory().expect("open");
        crate::ledger::schema::migrate(&mut conn).expect("migrate");
        conn
    }

    #[test]
    fn an_analysis_is_recorded_once_and_read_back() {
        let conn = ledger();
        let a = Analysis {
            job: "urn:uuid:1".into(),
            printer: "upstairs".into(),
            job_id: 7,
            format: "application/pdf".into(),
            finding: Finding::Analysed {
                pages: 20,
                colour_pages: 1,
                mono_impressions: 19,
                colour_impressions: 1,
                blank_backs: 0,
            },
            at: 100,
        };
        assert!(record(&conn, &a).expect("record"));
        let again = Analysis {
            finding: Finding::Fallback {
                reason: "late".into(),
            },
            ..a.clone()
        };
        assert!(!record(&conn, &again).expect("second"), "kept once");
        assert_eq!(get(&conn, "urn:uuid:1").expect("get"), Some(a));
        let fb = Analysis {
            job: "urn:uuid:2".into(),
            finding: Finding::Fallback {
                reason: "encrypted".into(),
            },
            ..again
        };
        record(&conn, &fb).expect("fallback");
        assert_eq!(
            get_many(&conn, &["urn:uuid:2".into(), "x".into()]).expect("many"),
            vec![fb]
        );
        let err = conn.execute("UPDATE job_analyses SET pages = 1", []);
        assert!(err.is_err(), "append-only");
    }
}
