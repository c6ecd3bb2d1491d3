//! The IPP requests tallyd sends a printer: `Get-Jobs` a page at a time
//! (a [`JobsQuery`] per printer, read through a [`Walk`]), and `Release-Job`
//! and `Cancel-Job` for one held job.

use super::client::{IppClient, IppError};
use super::jobs::Job;
use super::listing::{self, Listing};
use super::paging::{Attrs, Source, Walk, IDENTITY, PAGE};
use crate::config::PrinterConfig;
use crate::ipp_uri::http_url;
use ipp::prelude::*;
use std::future::Future;
use std::time::Duration;

/// The job attributes tallyd asks for in every `Get-Jobs`.
pub const REQUESTED: &[&str] = &[
    "job-id",
    "job-uuid",
    "job-state",
    "job-name",
    "job-originating-user-name",
    "time-at-creation",
    "date-time-at-creation",
    "date-time-at-completed",
    "job-impressions",
    "job-impressions-completed",
    "job-impressions-completed-col",
    "job-media-sheets-completed",
    "sides",
    "print-color-mode",
    "media",
    "media-col",
    "copies",
    "number-up",
    "page-ranges",
];

/// Which jobs a `Get-Jobs` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Completed,
    NotCompleted,
}

/// A `Get-Jobs` request for the printer at `uri`: at most `limit` jobs
/// from the `first` (1-based) on, with `attrs`.
pub fn get_jobs(
    uri: &str,
    which: Which,
    attrs: Attrs,
    first: u32,
    limit: u32,
) -> Result<IppRequestResponse, IppError> {
    let mut req = new_request(Operation::GetJobs, uri)?;
    let which = match which {
        Which::Completed => "completed",
        Which::NotCompleted => "not-completed",
    };
    let names = match attrs {
        Attrs::All => REQUESTED,
        Attrs::Identity => IDENTITY,
    };
    let mut wanted = Vec::with_capacity(names.len());
    for name in names {
        let keyword = IppValue::new_keyword(*name).map_err(|source| IppError::Attribute {
            name: "requested-attributes",
            source,
        })?;
        wanted.push(keyword);
    }
    add(
        &mut req,
        "requesting-user-name",
        IppValue::new_name_without_language("tallyd"),
    )?;
    add(&mut req, "which-jobs", IppValue::new_keyword(which))?;
    add(
        &mut req,
        "requested-attributes",
        Ok(IppValue::Array(wanted)),
    )?;
    add(&mut req, "first-index", Ok(integer(first)))?;
    add(&mut req, "limit", Ok(integer(limit)))?;
    Ok(req)
}

/// An IPP `integer(1:MAX)`.
fn integer(n: u32) -> IppValue {
    IppValue::Integer(i32::try_from(n).unwrap_or(i32::MAX).max(1))
}

/// A request about one job (`Release-Job`, `Cancel-Job`), by printer URI and
/// job id.
pub fn job_request(op: Operation, uri: &str, job_id: i32) -> Result<IppRequestResponse, IppError> {
    let mut req = new_request(op, uri)?;
    add(&mut req, "job-id", Ok(IppValue::Integer(job_id)))?;
    add(
        &mut req,
        "requesting-user-name",
        IppValue::new_name_without_language("tallyd"),
    )?;
    Ok(req)
}

/// A `Get-Printer-Attributes` for `names` of the printer at `uri`.
pub fn printer_attributes_request(
    uri: &str,
    names: &[&str],
) -> Result<IppRequestResponse, IppError> {
    let mut req = new_request(Operation::GetPrinterAttributes, uri)?;
    add(
        &mut req,
        "requesting-user-name",
        IppValue::new_name_without_language("tallyd"),
    )?;
    let mut wanted = Vec::with_capacity(names.len());
    for name in names {
        wanted.push(
            IppValue::new_keyword(*name).map_err(|source| IppError::Attribute {
                name: "requested-attributes",
                source,
            })?,
        );
    }
    add(
        &mut req,
        "requested-attributes",
        Ok(IppValue::Array(wanted)),
    )?;
    Ok(req)
}

/// A `CUPS-Move-Job` of job `job_id` at the queue `uri` to the queue
/// `target` of the same CUPS; the target goes in the job attributes group.
pub fn move_job_request(
    uri: &str,
    job_id: i32,
    target: &str,
) -> Result<IppRequestResponse, IppError> {
    let mut req = job_request(Operation::CupsMoveJob, uri, job_id)?;
    let attr = IppValue::new_uri(target)
        .and_then(|v| IppAttribute::with_name("job-printer-uri", v))
        .map_err(|source| IppError::Attribute {
            name: "job-printer-uri",
            source,
        })?;
    req.attributes_mut().add(DelimiterTag::JobAttributes, attr);
    Ok(req)
}

/// Adds an operation attribute.
fn add(
    req: &mut IppRequestResponse,
    name: &'static str,
    value: Result<IppValue, ipp::parser::IppParseError>,
) -> Result<(), IppError> {
    let attr = value
        .and_then(|v| IppAttribute::with_name(name, v))
        .map_err(|source| IppError::Attribute { name, source })?;
    req.attributes_mut()
        .add(DelimiterTag::OperationAttributes, attr);
    Ok(())
}

fn new_request(op: Operation, uri: &str) -> Result<IppRequestResponse, IppError> {
    let parsed: Uri = uri.parse().map_err(|e| IppError::BadUri {
        uri: uri.to_string(),
        source: Some(e),
    })?;
    // The crate refuses only a URI too long for an IPP value here.
    IppRequestResponse::new(IppVersion::v1_1(), op, Some(parsed)).map_err(|source| {
        IppError::Attribute {
            name: "printer-uri",
            source,
        }
    })
}

/// The `Get-Jobs` of one printer's finished jobs, or of those still to
/// print, with what each request needs (URL, timeout, the printer id that
/// names its jobs' keys).
#[derive(Clone)]
pub struct JobsQuery {
    printer: String,
    uri: String,
    url: String,
    which: Which,
    timeout: Duration,
    /// The first page's request, encoded once: most polls need no other.
    first_page: bytes::Bytes,
}

impl JobsQuery {
    /// Finished jobs, or those still to print, at `cfg`'s printer. An error
    /// when no request can be made for it (its URI).
    pub fn new(cfg: &PrinterConfig, which: Which) -> Result<JobsQuery, IppError> {
        let url = http_url(&cfg.uri).ok_or_else(|| IppError::BadUri {
            uri: cfg.uri.clone(),
            source: None,
        })?;
        let first_page = get_jobs(&cfg.uri, which, Attrs::All, 1, PAGE)?.to_bytes();
        Ok(JobsQuery {
            first_page,
            printer: cfg.id.clone(),
            uri: cfg.uri.clone(),
            url,
            which,
            timeout: cfg.timeout,
        })
    }

    /// The printer as a [`Source`] of pages, for a [`Walk`].
    pub fn pages<'a>(&'a self, client: &'a IppClient) -> Pages<'a> {
        Pages {
            query: self,
            client,
        }
    }

    /// Every job the printer lists now that can be read (every page).
    pub async fn fetch(&self, client: &IppClient) -> Result<Vec<Job>, IppError> {
        let pages = self.pages(client);
        let mut walk = Walk::new(&self.printer);
        let mut jobs = Vec::new();
        while let Some(page) = walk.next(&pages).await? {
            jobs.extend(page.jobs);
        }
        Ok(jobs)
    }
}

/// One printer's job list, a page per request.
pub struct Pages<'a> {
    query: &'a JobsQuery,
    client: &'a IppClient,
}

impl Source for Pages<'_> {
    fn page(
        &self,
        first: u32,
        limit: u32,
        attrs: Attrs,
    ) -> impl Future<Output = Result<Listing, IppError>> + Send {
        let q = self.query;
        // Encoded up front: a request's payload reader is not `Sync`.
        let encoded = if (first, limit, attrs) == (1, PAGE, Attrs::All) {
            Ok(q.first_page.clone())
        } else {
            get_jobs(&q.uri, q.which, attrs, first, limit).map(|r| r.to_bytes())
        };
        async move {
            let body = self.client.post(&q.url, encoded?, q.timeout).await?;
            listing::read(&body)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_carry_which_jobs_and_requested_attributes() {
        let uri = "ipp://127.0.0.1:631/printers/q";
        let r = get_jobs(uri, Which::Completed, Attrs::All, 501, 500).expect("request");
        let ops = r
            .attributes()
            .first_of(DelimiterTag::OperationAttributes)
            .expect("operation group");
        assert!(ops.get("which-jobs").is_some());
        let wanted = ops
            .get("requested-attributes")
            .expect("requested-attributes");
        assert!(matches!(wanted.value(), IppValue::Array(a) if a.len() == REQUESTED.len()));
        let int = |name: &str| ops.get(name).map(|a| a.value().clone());
        assert_eq!(int("first-index"), Some(IppValue::Integer(501)));
        assert_eq!(int("limit"), Some(IppValue::Integer(500)));
        let r = get_jobs(uri, Which::Completed, Attrs::Identity, 7, 1).expect("request");
        let ops = r
            .attributes()
            .first_of(DelimiterTag::OperationAttributes)
            .expect("operation group");
        let wanted = ops
            .get("requested-attributes")
            .expect("requested-attributes");
        assert!(matches!(wanted.value(), IppValue::Array(a) if a.len() == IDENTITY.len()));
        let r =
            job_request(Operation::ReleaseJob, "ipp://127.0.0.1:631/printers/q", 5).expect("req");
        assert_eq!(r.header().operation_or_status, Operation::ReleaseJob as i16);
    }
}
