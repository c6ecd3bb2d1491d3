//! A printer's job list read a page at a time, so memory stays bounded
//! however many jobs it keeps, and a job it cannot describe costs that job
//! alone.
//!
//! Each page is a `Get-Jobs` with `limit` and `first-index` (PWG 5100.13).
//! What the peers do with them (seen here, and in their sources):
//!
//! - cupsd 2.4 honours both. Its finished jobs are listed newest first, so
//!   a job finishing during a walk shifts the list by one and the next page
//!   repeats a job, never skips one. Asked for job details (as tallyd is)
//!   it lists at most 500 finished jobs per request, and says so with
//!   `limit 500` in its answer; without paging, jobs past the newest 500
//!   were never seen at all. Pages are [`PAGE`] = 500 jobs.
//! - ippeveprinter honours `limit`, silently ignores `first-index` (and
//!   `job-ids`), and lists newest first, so `first-job-id` cannot page it
//!   either: every page is its newest jobs. It forgets finished jobs after
//!   about 60 s, so its list is short; a full page that brings no job not
//!   already seen ends the walk ([`End::Repeated`]).
//!
//! A page the printer cannot send (over [`MAX_RESPONSE`]) is halved until
//! the one job that is too large is found; a page whose bytes stop making
//! sense is read up to that job, which is asked for alone. Such a job is
//! asked for once more with only the attributes that name it
//! ([`IDENTITY`]), and goes to the review queue under its usual key. When
//! not even that can be read, the job is skipped (and counted) if a job
//! before it could be read since the last one skipped; otherwise it is the
//! printer that fails (one that answers every request with too much, say).
//! A job whose values the `ipp` crate refuses costs no request at all: the
//! page is read job by job ([`super::listing`]).
//!
//! A job that moves between pages (the list shifts while it is read) may be
//! read twice (it is counted once) or, on a list that grows at its end and
//! shrinks at its start, skipped by one walk; the next poll reads it.
//!
//! [`MAX_RESPONSE`]: super::client::MAX_RESPONSE

use super::client::IppError;
use super::jobs::Job;
use super::listing::{Listing, Record, Unreadable};
use crate::error_chain;
use std::collections::HashSet;
use std::future::Future;
use std::hash::{BuildHasher, RandomState};

/// Jobs asked for per page: CUPS's own cut for job histories.
pub const PAGE: u32 = 500;

/// The most jobs one walk reads (200 pages); a list longer than this is
/// read up to here.
pub const MAX_JOBS: usize = 100_000;

/// What a job is asked for with when only its name for the ledger (its
/// key and owner) is wanted.
pub const IDENTITY: &[&str] = &[
    "job-id",
    "job-uuid",
    "job-state",
    "job-originating-user-name",
    "time-at-creation",
    "date-time-at-creation",
    "date-time-at-completed",
];

/// `client-error-not-found`: some printers answer it for a page past the end.
const NOT_FOUND: u16 = 0x0406;

/// Which attributes a page asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attrs {
    /// Everything tallyd uses ([`super::requests::REQUESTED`]).
    All,
    /// Only [`IDENTITY`].
    Identity,
}

/// Where pages of jobs come from: a printer, or in tests a list.
pub trait Source {
    /// At most `limit` jobs from the `first` (1-based) on.
    fn page(
        &self,
        first: u32,
        limit: u32,
        attrs: Attrs,
    ) -> impl Future<Output = Result<Listing, IppError>> + Send;
}

/// The new jobs of one page.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Page {
    pub jobs: Vec<Job>,
    /// Jobs whose record cannot be read (what could be), and why.
    pub unreadable: Vec<(Job, String)>,
    /// Records that cannot be read so far that not even their job id or
    /// uuid is known.
    pub nameless: usize,
}

/// Why a walk ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// A page shorter than asked for: the list is read.
    Listed,
    /// A full page brought no job not already read: the printer ignores
    /// `first-index`, and only its first page can be read.
    Repeated,
    /// [`MAX_JOBS`] read.
    Capped,
}

/// One walk through a printer's job list.
pub struct Walk {
    printer: String,
    /// `first-index` of the next page.
    next: u32,
    /// The jobs read so far: their keys hashed with `hasher`, 8 bytes each
    /// however long the keys. The hasher is keyed anew for every walk, so
    /// two keys that collide in one walk (one job then missed by it) do not
    /// in the next.
    seen: HashSet<u64>,
    hasher: RandomState,
    end: Option<End>,
    /// Whether a job was read since the last one that could not even be
    /// named (or since the start): a job nothing can be read of is skipped
    /// only among jobs that can be read.
    named_since: bool,
}

/// What a range of the list gave, narrowed where it had to be.
#[derive(Default)]
struct Read {
    records: Vec<Record>,
    /// Jobs the printer listed (each broken one counts).
    listed: u32,
    /// The `limit` it says it applied to the first request.
    limit: Option<u32>,
}

impl Walk {
    /// A walk from the start of `printer`'s list.
    pub fn new(printer: &str) -> Walk {
        Walk {
            printer: printer.to_string(),
            next: 1,
            seen: HashSet::new(),
            hasher: RandomState::new(),
            end: None,
            named_since: false,
        }
    }

    /// Why the walk ended, once it has.
    pub fn end(&self) -> Option<End> {
        self.end
    }

    /// Whether the job under `key` was read: once the walk ended, whether
    /// the printer lists it.
    pub fn has_read(&self, key: &str) -> bool {
        self.seen.contains(&self.hasher.hash_one(key))
    }

    /// How many jobs were read.
    pub fn read_count(&self) -> usize {
        self.seen.len()
    }

    /// The next page's new jobs; `None` once the list is read. An error
    /// only when the printer itself fails (see the module docs).
    pub async fn next<S: Source>(&mut self, source: &S) -> Result<Option<Page>, IppError> {
        if self.end.is_some() {
            return Ok(None);
        }
        let first = self.next;
        let read = match read(source, first, PAGE, &mut self.named_since).await {
            Err(IppError::Status {
                code: NOT_FOUND, ..
            }) if first > 1 => {
                self.end = Some(End::Listed);
                return Ok(None);
            }
            read => read?,
        };
        let asked = read.limit.map_or(PAGE, |l| l.clamp(1, PAGE));
        let mut page = Page::default();
        let mut new = 0;
        for record in read.records {
            let (job, error) = match record {
                Record::Job(job) => (job, None),
                Record::Unreadable(Unreadable {
                    job: Some(job),
                    error,
                }) => (job, Some(error)),
                Record::Unreadable(Unreadable { job: None, .. }) => {
                    page.nameless += 1;
                    continue;
                }
            };
            if !self
                .seen
                .insert(self.hasher.hash_one(job.key(&self.printer)))
            {
                continue;
            }
            new += 1;
            match error {
                None => page.jobs.push(job),
                Some(error) => page.unreadable.push((job, error)),
            }
        }
        self.next = first.saturating_add(read.listed);
        self.end = if read.listed < asked {
            Some(End::Listed)
        } else if new == 0 {
            Some(End::Repeated)
        } else if self.seen.len() >= MAX_JOBS {
            Some(End::Capped)
        } else {
            None
        };
        Ok(Some(page))
    }
}

/// Jobs `first` .. `first + count`, narrowing a range that cannot be read
/// whole down to the job that breaks it. `named_since`: see [`Walk`].
async fn read<S: Source>(
    source: &S,
    first: u32,
    count: u32,
    named_since: &mut bool,
) -> Result<Read, IppError> {
    let mut out = Read::default();
    // Ranges still to read, the lowest last (popped first).
    let mut todo = vec![(first, count)];
    let mut top = true;
    while let Some((first, count)) = todo.pop() {
        let top = std::mem::replace(&mut top, false);
        // What failed, and the range from its first unread job.
        let (failure, at, left) = match source.page(first, count, Attrs::All).await {
            Ok(listing) => {
                if top {
                    out.limit = listing.limit;
                }
                let whole = u32::try_from(listing.records.len()).unwrap_or(u32::MAX);
                *named_since |= listing
                    .records
                    .iter()
                    .any(|r| !matches!(r, Record::Unreadable(Unreadable { job: None, .. })));
                out.listed = out.listed.saturating_add(whole);
                out.records.extend(listing.records);
                match listing.broken {
                    // The job after the whole ones broke the bytes.
                    Some(why) if whole < count => (
                        IppError::Malformed(why),
                        first.saturating_add(whole),
                        count - whole,
                    ),
                    _ => continue,
                }
            }
            Err(IppError::TooLarge) => (IppError::TooLarge, first, count),
            Err(e) => return Err(e),
        };
        if left == 1 {
            let record = match identify(source, at, failure).await {
                Ok(record) => {
                    *named_since |= record.is_some();
                    record
                }
                // Nothing of it can be read, not even its name, but jobs
                // before it could: skipped (and counted), not the printer.
                Err(e @ (IppError::TooLarge | IppError::Malformed(_))) if *named_since => {
                    *named_since = false;
                    Some(Record::Unreadable(Unreadable {
                        job: None,
                        error: error_chain(&e),
                    }))
                }
                Err(e) => return Err(e),
            };
            if let Some(record) = record {
                out.listed = out.listed.saturating_add(1);
                out.records.push(record);
            }
        } else if matches!(failure, IppError::Malformed(_)) {
            // The breaking job alone, then the rest.
            todo.push((at.saturating_add(1), left - 1));
            todo.push((at, 1));
        } else {
            let half = left / 2;
            todo.push((at.saturating_add(half), left - half));
            todo.push((at, half));
        }
    }
    Ok(out)
}

/// The job at `at`, which cannot be read (`failure`), asked for with only
/// the attributes that name it: a record for the review queue, or `None`
/// when the printer no longer lists a job there. An error when not even
/// its name can be read: then it is the printer that fails.
async fn identify<S: Source>(
    source: &S,
    at: u32,
    failure: IppError,
) -> Result<Option<Record>, IppError> {
    let listing = match source.page(at, 1, Attrs::Identity).await {
        Ok(listing) => listing,
        Err(IppError::TooLarge) => return Err(failure),
        Err(e) => return Err(e),
    };
    let broken = listing.broken.is_some();
    match listing.records.into_iter().next() {
        Some(Record::Job(job)) | Some(Record::Unreadable(Unreadable { job: Some(job), .. })) => {
            Ok(Some(Record::Unreadable(Unreadable {
                job: Some(job),
                error: error_chain(&failure),
            })))
        }
        None if !broken => Ok(None),
        _ => Err(failure),
    }
}

#[cfg(test)]
mod tests;
