//! A held job's document, fetched once with `CUPS-Get-Document` for the
//! spool analysis. CUPS (2.4.3 and later) lets only the job's owner and
//! its admins do it: the queue's policy must allow tallyd's user (see the
//! README). The document is written to a private temporary file that is
//! removed when dropped.

use super::client::{success, IppClient, IppError};
use super::jobs::text;
use super::requests::job_request;
use crate::config::PrinterConfig;
use ipp::prelude::*;
use std::io::Write;
use std::time::Duration;
use tempfile::NamedTempFile;

/// A fetched document.
pub struct Document {
    /// Its `document-format` as CUPS gave it (`application/pdf`, ...).
    pub format: String,
    /// The document's bytes, in a file only this process can read.
    pub file: NamedTempFile,
}

/// Why a document could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error("CUPS-Get-Document failed")]
    Ipp(#[from] IppError),
    #[error("cannot write the document to a temporary file")]
    Write(#[source] std::io::Error),
    #[error("the document reader stopped")]
    Gone,
}

/// Fetches job `job_id`'s first document from `cfg`'s queue: at most `cap`
/// bytes, within `timeout`.
pub async fn fetch(
    cfg: &PrinterConfig,
    client: &IppClient,
    job_id: i32,
    cap: usize,
    timeout: Duration,
) -> Result<Document, DocumentError> {
    let mut request = job_request(Operation::CupsGetDocument, &cfg.uri, job_id)?;
    let number =
        IppAttribute::with_name("document-number", IppValue::Integer(1)).map_err(|source| {
            IppError::Attribute {
                name: "document-number",
                source,
            }
        })?;
    request
        .attributes_mut()
        .add(DelimiterTag::OperationAttributes, number);
    let url = crate::ipp_uri::http_url(&cfg.uri).ok_or_else(|| IppError::BadUri {
        uri: cfg.uri.clone(),
        source: None,
    })?;
    let body = client
        .post_capped(&url, request.to_bytes(), timeout, cap)
        .await?;
    tokio::task::spawn_blocking(move || write(body))
        .await
        .map_err(|_| DocumentError::Gone)?
}

/// Splits a `CUPS-Get-Document` response into its format and its data,
/// written to a temporary file.
fn write(body: Vec<u8>) -> Result<Document, DocumentError> {
    let response = super::client::parse_response(body)?;
    success(response.header())?;
    let format = response
        .attributes()
        .groups_of(DelimiterTag::OperationAttributes)
        .find_map(|g| g.get("document-format").and_then(|a| text(a.value())))
        .unwrap_or_else(|| "application/octet-stream".into());
    let mut file = NamedTempFile::with_prefix("tallyd-document-").map_err(DocumentError::Write)?;
    let mut payload = response.into_payload();
    std::io::copy(&mut payload, &mut file).map_err(DocumentError::Write)?;
    file.flush().map_err(DocumentError::Write)?;
    Ok(Document { format, file })
}
