//! The IPP requests tallyd sends a printer: `Get-Jobs` (encoded once per
//! printer as a [`JobsQuery`] and sent at every poll), and `Release-Job` and
//! `Cancel-Job` for one held job.

use super::client::{IppClient, IppError};
use super::jobs::{parse_jobs, Job};
use crate::config::PrinterConfig;
use crate::ipp_uri::http_url;
use ipp::prelude::*;
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
];

/// Which jobs a `Get-Jobs` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Completed,
    NotCompleted,
}

/// A `Get-Jobs` request for the printer at `uri`.
pub fn get_jobs(uri: &str, which: Which) -> Result<IppRequestResponse, IppError> {
    let mut req = new_request(Operation::GetJobs, uri)?;
    let which = match which {
        Which::Completed => "completed",
        Which::NotCompleted => "not-completed",
    };
    let mut wanted = Vec::with_capacity(REQUESTED.len());
    for name in REQUESTED {
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
    Ok(req)
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

/// A `Get-Jobs` for one printer, encoded once and sent at every poll.
#[derive(Clone)]
pub struct JobsQuery {
    url: String,
    body: bytes::Bytes,
    timeout: Duration,
}

impl JobsQuery {
    /// Finished jobs, or those still to print, at `cfg`'s printer.
    pub fn new(cfg: &PrinterConfig, which: Which) -> Result<JobsQuery, IppError> {
        let url = http_url(&cfg.uri).ok_or_else(|| IppError::BadUri {
            uri: cfg.uri.clone(),
            source: None,
        })?;
        let request = get_jobs(&cfg.uri, which)?;
        Ok(JobsQuery {
            url,
            body: request.to_bytes(),
            timeout: cfg.timeout,
        })
    }

    /// The jobs the printer lists now.
    pub async fn fetch(&self, client: &IppClient) -> Result<Vec<Job>, IppError> {
        let response = client
            .send_encoded(&self.url, self.body.clone(), self.timeout)
            .await?;
        Ok(parse_jobs(&response))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_carry_which_jobs_and_requested_attributes() {
        let r = get_jobs("ipp://127.0.0.1:631/printers/q", Which::Completed).expect("request");
        let ops = r
            .attributes()
            .first_of(DelimiterTag::OperationAttributes)
            .expect("operation group");
        assert!(ops.get("which-jobs").is_some());
        let wanted = ops
            .get("requested-attributes")
            .expect("requested-attributes");
        assert!(matches!(wanted.value(), IppValue::Array(a) if a.len() == REQUESTED.len()));
        let r =
            job_request(Operation::ReleaseJob, "ipp://127.0.0.1:631/printers/q", 5).expect("req");
        assert_eq!(r.header().operation_or_status, Operation::ReleaseJob as i16);
    }
}
