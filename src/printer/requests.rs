//! The IPP requests tallyd sends a printer: `Get-Jobs` (encoded once per
//! printer as a [`JobsQuery`] and sent at every poll), and `Release-Job` and
//! `Cancel-Job` for one held job.

use super::client::{IppCallError, IppClient};
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
pub fn get_jobs(uri: &str, which: Which) -> Result<IppRequestResponse, String> {
    let mut req = new_request(Operation::GetJobs, uri)?;
    let which = match which {
        Which::Completed => "completed",
        Which::NotCompleted => "not-completed",
    };
    let mut wanted = Vec::with_capacity(REQUESTED.len());
    for name in REQUESTED {
        wanted.push(IppValue::new_keyword(*name).map_err(|e| e.to_string())?);
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
pub fn job_request(op: Operation, uri: &str, job_id: i32) -> Result<IppRequestResponse, String> {
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
    name: &str,
    value: Result<IppValue, ipp::parser::IppParseError>,
) -> Result<(), String> {
    let attr = value
        .and_then(|v| IppAttribute::with_name(name, v))
        .map_err(|e| format!("{name}: {e}"))?;
    req.attributes_mut()
        .add(DelimiterTag::OperationAttributes, attr);
    Ok(())
}

fn new_request(op: Operation, uri: &str) -> Result<IppRequestResponse, String> {
    let parsed: Uri = uri.parse().map_err(|e| format!("bad URI `{uri}`: {e}"))?;
    IppRequestResponse::new(IppVersion::v1_1(), op, Some(parsed)).map_err(|e| e.to_string())
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
    pub fn new(cfg: &PrinterConfig, which: Which) -> Result<JobsQuery, IppCallError> {
        let bad = || IppCallError::Connect(format!("bad URI `{}`", cfg.uri));
        let url = http_url(&cfg.uri).ok_or_else(bad)?;
        let request = get_jobs(&cfg.uri, which).map_err(IppCallError::Connect)?;
        Ok(JobsQuery {
            url,
            body: request.to_bytes(),
            timeout: cfg.timeout,
        })
    }

    /// The jobs the printer lists now.
    pub async fn fetch(&self, client: &IppClient) -> Result<Vec<Job>, IppCallError> {
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
