//! IPP over HTTP: one request, a timeout on the whole exchange, and a cap on
//! the response size. The `ipp` crate encodes and parses; the transport is a
//! shared `reqwest` client so connections to a printer are kept alive.

use crate::ipp_uri::http_url;
use ipp::prelude::*;
use std::io::Cursor;
use std::time::Duration;

/// Responses larger than this are refused (a sane Get-Jobs answer for a
/// busy CUPS queue is a few hundred KiB).
pub const MAX_RESPONSE: usize = 8 << 20;

/// Why a request to a printer failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IppCallError {
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("HTTP status {0}")]
    Http(u16),
    #[error("response larger than {} MiB", MAX_RESPONSE >> 20)]
    TooLarge,
    #[error("not an IPP response: {0}")]
    Garbage(String),
    #[error("IPP status {name} (0x{code:04x})")]
    Status { code: u16, name: String },
}

/// A client for all printers; cheap to clone.
#[derive(Clone)]
pub struct IppClient {
    http: reqwest::Client,
}

impl IppClient {
    pub fn new() -> Result<IppClient, IppCallError> {
        let http = reqwest::Client::builder()
            .no_proxy()
            // Queues of one CUPS server share a host: keep up to 32 of their
            // connections alive between polls (a sweep of 100 queues then
            // reuses most), well under cupsd's default MaxClients of 100.
            .pool_max_idle_per_host(32)
            .pool_idle_timeout(Duration::from_secs(90))
            .build()
            .map_err(|e| IppCallError::Connect(e.to_string()))?;
        Ok(IppClient { http })
    }

    /// Sends `request` to the printer at `uri` and returns its response if
    /// the IPP status is a success.
    pub async fn send(
        &self,
        uri: &str,
        request: IppRequestResponse,
        timeout: Duration,
    ) -> Result<IppRequestResponse, IppCallError> {
        let url = http_url(uri).ok_or_else(|| IppCallError::Connect(format!("bad URI `{uri}`")))?;
        // Encoded up front: the request's payload reader is not `Sync`, so it
        // must not be held across an await.
        let encoded = request.to_bytes();
        drop(request);
        self.send_encoded(&url, encoded, timeout).await
    }

    /// Posts an encoded IPP request to `url` (from [`http_url`]).
    pub async fn send_encoded(
        &self,
        url: &str,
        encoded: bytes::Bytes,
        timeout: Duration,
    ) -> Result<IppRequestResponse, IppCallError> {
        let exchange = async {
            let mut response = self
                .http
                .post(url)
                .header("content-type", "application/ipp")
                .body(encoded)
                .send()
                .await
                .map_err(|e| classify(e, timeout))?;
            let status = response.status().as_u16();
            if status != 200 {
                return Err(IppCallError::Http(status));
            }
            if response
                .content_length()
                .is_some_and(|n| n > MAX_RESPONSE as u64)
            {
                return Err(IppCallError::TooLarge);
            }
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(|e| classify(e, timeout))? {
                if body.len() + chunk.len() > MAX_RESPONSE {
                    return Err(IppCallError::TooLarge);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(body)
        };
        let body = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| IppCallError::Timeout(timeout))??;
        let parsed = parse_response(body)?;
        let status = parsed.header().status_code();
        if !status.is_success() {
            return Err(IppCallError::Status {
                code: parsed.header().operation_or_status as u16,
                name: format!("{status:?}"),
            });
        }
        Ok(parsed)
    }
}

/// Parses a whole IPP response held in memory.
pub fn parse_response(body: Vec<u8>) -> Result<IppRequestResponse, IppCallError> {
    if body.len() < 8 {
        return Err(IppCallError::Garbage(format!(
            "{} bytes, shorter than an IPP header",
            body.len()
        )));
    }
    if body[0] != 1 && body[0] != 2 {
        return Err(IppCallError::Garbage(format!("IPP version {}", body[0])));
    }
    ipp::parser::IppParser::new(ipp::reader::IppReader::new(Cursor::new(body)))
        .parse()
        .map_err(|e| IppCallError::Garbage(e.to_string()))
}

fn classify(e: reqwest::Error, timeout: Duration) -> IppCallError {
    if e.is_timeout() {
        return IppCallError::Timeout(timeout);
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    if e.is_connect() {
        IppCallError::Connect(text)
    } else {
        IppCallError::Garbage(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for body in [
            vec![],
            b"HTTP/1.1 200 OK".to_vec(),
            vec![0xff; 64],
            vec![1, 1, 0, 0, 0, 0, 0, 1, 0x47, 0xff, 0xff],
        ] {
            assert!(parse_response(body).is_err());
        }
    }
}
