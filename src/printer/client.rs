//! IPP over HTTP: one request, a timeout on the whole exchange, and a cap on
//! the response size. The `ipp` crate encodes and parses; the transport is a
//! `reqwest` client that keeps connections to a printer alive: one shared
//! by every printer the system's roots are enough for, and one of its own
//! for a printer with a `ca_file` or a pinned `tls_fingerprint`
//! ([`IppClient::for_printer`]).

use crate::config::PrinterConfig;
use crate::ipp_uri::http_url;
use crate::tls::{self, Trust};
use ipp::prelude::*;
use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::Arc;
use std::time::Duration;

/// Responses larger than this are refused (a sane Get-Jobs answer for a
/// busy CUPS queue is a few hundred KiB).
pub const MAX_RESPONSE: usize = 8 << 20;

/// How the `http` crate (under `ipp`) says a URI does not parse.
type InvalidUri = <Uri as std::str::FromStr>::Err;

/// Why a request to a printer failed. Each variant keeps what caused it;
/// its text says only what failed here, and [`crate::error_chain`] prints it
/// with its causes ("cannot connect: error sending request …: Connection
/// refused").
#[derive(Debug, thiserror::Error)]
pub enum IppError {
    /// Not an `ipp://`, `ipps://`, `http://` or `https://` URI with a host
    /// (the `http` crate's reason, when it was the one to refuse it).
    #[error("bad URI `{uri}`")]
    BadUri {
        uri: String,
        #[source]
        source: Option<InvalidUri>,
    },
    /// An attribute of the request the `ipp` crate would not encode.
    #[error("cannot encode IPP attribute `{name}`")]
    Attribute {
        name: &'static str,
        #[source]
        source: ipp::parser::IppParseError,
    },
    /// The shared HTTP client could not be set up (its TLS backend, say).
    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
    /// The TLS setup for a `ca_file` or a `tls_fingerprint` failed.
    #[error("cannot set up TLS")]
    Tls(#[source] rustls::Error),
    #[error("cannot connect")]
    Connect(#[source] reqwest::Error),
    /// The TLS handshake refused the printer's certificate (the reason as
    /// rustls gives it, or the pin's).
    #[error("certificate not trusted: {reason} (check the printer's ca_file or tls_fingerprint)")]
    Certificate { reason: String },
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("HTTP status {0}")]
    Http(u16),
    #[error("response larger than {} MiB", MAX_RESPONSE >> 20)]
    TooLarge,
    /// Larger than the cap (bytes) of a [`IppClient::post_capped`].
    #[error("response larger than {0} bytes")]
    OverCap(usize),
    /// Connected, but what came back was not an HTTP answer, or it stopped
    /// halfway.
    #[error("not an IPP response")]
    Transport(#[source] reqwest::Error),
    #[error("not an IPP response: {0} bytes, shorter than an IPP header")]
    TooShort(usize),
    #[error("not an IPP response: IPP version {0}")]
    UnknownVersion(u8),
    /// An HTTP answer whose body the `ipp` crate could not parse.
    #[error("not an IPP response")]
    Parse(#[source] ipp::parser::IppParseError),
    /// An answer whose attributes stop making sense part way (a length
    /// that runs past the end, no end tag), as the job-by-job reader of a
    /// job list ([`super::listing`]) found it.
    #[error("not an IPP response: {0}")]
    Malformed(String),
    /// A well-formed answer whose IPP status is not a success.
    #[error("IPP status {name} (0x{code:04x})")]
    Status { code: u16, name: String },
}

/// A client for printers; cheap to clone (clones share connections).
#[derive(Clone)]
pub struct IppClient {
    http: reqwest::Client,
}

impl IppClient {
    /// The client of every printer that trusts the system's roots.
    pub fn new() -> Result<IppClient, IppError> {
        IppClient::with_trust(&Trust::System)
    }

    /// `shared` for a printer that trusts the system's roots; a client of
    /// its own for one with a `ca_file` or a `tls_fingerprint`.
    pub fn for_printer(shared: &IppClient, cfg: &PrinterConfig) -> Result<IppClient, IppError> {
        match cfg.trust {
            Trust::System => Ok(shared.clone()),
            _ => IppClient::with_trust(&cfg.trust),
        }
    }

    /// A client that trusts whom `trust` says.
    pub fn with_trust(trust: &Trust) -> Result<IppClient, IppError> {
        let builder = reqwest::Client::builder()
            .no_proxy()
            // Queues of one CUPS server share a host: keep up to 32 of their
            // connections alive between polls (a sweep of 100 queues then
            // reuses most), well under cupsd's default MaxClients of 100.
            .pool_max_idle_per_host(32)
            .pool_idle_timeout(Duration::from_secs(90));
        let http = tls::client_builder(trust, builder)
            .map_err(IppError::Tls)?
            .build()
            .map_err(IppError::Client)?;
        Ok(IppClient { http })
    }

    /// Sends `request` to the printer at `uri` and returns its response if
    /// the IPP status is a success.
    pub async fn send(
        &self,
        uri: &str,
        request: IppRequestResponse,
        timeout: Duration,
    ) -> Result<IppRequestResponse, IppError> {
        let url = http_url(uri).ok_or_else(|| IppError::BadUri {
            uri: uri.to_string(),
            source: None,
        })?;
        // Encoded up front: the request's payload reader is not `Sync`, so it
        // must not be held across an await.
        let encoded = request.to_bytes();
        drop(request);
        self.send_encoded(&url, encoded, timeout).await
    }

    /// Posts an encoded IPP request to `url` (from [`http_url`]) and returns
    /// the response if its IPP status is a success.
    pub async fn send_encoded(
        &self,
        url: &str,
        encoded: bytes::Bytes,
        timeout: Duration,
    ) -> Result<IppRequestResponse, IppError> {
        let body = self.post(url, encoded, timeout).await?;
        successful(parse_response(body)?)
    }

    /// Posts an encoded IPP request to `url` and returns the response's
    /// bytes, unread: HTTP 200 within `timeout`, at most [`MAX_RESPONSE`].
    pub async fn post(
        &self,
        url: &str,
        encoded: bytes::Bytes,
        timeout: Duration,
    ) -> Result<Vec<u8>, IppError> {
        self.post_capped(url, encoded, timeout, MAX_RESPONSE).await
    }

    /// [`IppClient::post`] with a cap of `cap` bytes instead (a job's
    /// document, for one).
    pub async fn post_capped(
        &self,
        url: &str,
        encoded: bytes::Bytes,
        timeout: Duration,
        cap: usize,
    ) -> Result<Vec<u8>, IppError> {
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
                return Err(IppError::Http(status));
            }
            if response.content_length().is_some_and(|n| n > cap as u64) {
                return Err(if cap == MAX_RESPONSE {
                    IppError::TooLarge
                } else {
                    IppError::OverCap(cap)
                });
            }
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(|e| classify(e, timeout))? {
                if body.len() + chunk.len() > cap {
                    return Err(if cap == MAX_RESPONSE {
                        IppError::TooLarge
                    } else {
                        IppError::OverCap(cap)
                    });
                }
                body.extend_from_slice(&chunk);
            }
            Ok(body)
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| IppError::Timeout(timeout))?
    }
}

/// Each printer's client: the shared one, or its own (see
/// [`IppClient::for_printer`]). Cheap to clone.
#[derive(Clone)]
pub struct PrinterClients {
    shared: IppClient,
    own: Arc<BTreeMap<String, IppClient>>,
}

impl PrinterClients {
    /// The clients of `printers`, or the first printer whose client could
    /// not be set up.
    pub fn new(printers: &[PrinterConfig]) -> Result<PrinterClients, (String, IppError)> {
        let shared = IppClient::new().map_err(|e| (String::new(), e))?;
        PrinterClients::with_shared(shared, printers)
    }

    /// New clients for `printers` (a reloaded config), keeping the shared
    /// one and its connections.
    pub fn renew(&self, printers: &[PrinterConfig]) -> Result<PrinterClients, (String, IppError)> {
        PrinterClients::with_shared(self.shared.clone(), printers)
    }

    fn with_shared(
        shared: IppClient,
        printers: &[PrinterConfig],
    ) -> Result<PrinterClients, (String, IppError)> {
        let mut own = BTreeMap::new();
        for p in printers.iter().filter(|p| p.trust != Trust::System) {
            let client = IppClient::for_printer(&shared, p).map_err(|e| (p.id.clone(), e))?;
            own.insert(p.id.clone(), client);
        }
        Ok(PrinterClients {
            shared,
            own: Arc::new(own),
        })
    }

    /// The client of the printer `id` (the shared one unless it has its own).
    pub fn get(&self, id: &str) -> &IppClient {
        self.own.get(id).unwrap_or(&self.shared)
    }
}

/// `response` if its IPP status is a success.
fn successful(response: IppRequestResponse) -> Result<IppRequestResponse, IppError> {
    success(response.header())?;
    Ok(response)
}

/// `Ok` if the status in `header` (of a response) is a success.
pub fn success(header: &IppHeader) -> Result<(), IppError> {
    let status = header.status_code();
    if !status.is_success() {
        return Err(IppError::Status {
            code: header.operation_or_status as u16,
            name: format!("{status:?}"),
        });
    }
    Ok(())
}

/// Parses a whole IPP response held in memory. A value the `ipp` crate
/// would panic on is refused first ([`check_with_language`]).
pub fn parse_response(body: Vec<u8>) -> Result<IppRequestResponse, IppError> {
    if body.len() < 8 {
        return Err(IppError::TooShort(body.len()));
    }
    if body[0] != 1 && body[0] != 2 {
        return Err(IppError::UnknownVersion(body[0]));
    }
    check_with_language(&body, 8)
        .map_err(|name| IppError::Malformed(format!("{name}: {LENGTHS_PAST_VALUE}")))?;
    ipp::parser::IppParser::new(ipp::reader::IppReader::new(Cursor::new(body)))
        .parse()
        .map_err(IppError::Parse)
}

/// Why [`check_with_language`] refuses a value.
pub const LENGTHS_PAST_VALUE: &str = "a value with a language whose lengths run past it";

/// Checks the attributes framed in `bytes` from `at` on before the `ipp`
/// crate reads them: version 8 of the crate takes the two inner lengths of
/// a `textWithLanguage` or `nameWithLanguage` value on trust and panics when
/// one runs past the value (found by the `ipp_jobs` fuzz target). `Err` is
/// the name of the first such value (why: [`LENGTHS_PAST_VALUE`]). Framing
/// that stops making sense is left to the crate (or [`super::listing`]) to
/// refuse.
pub fn check_with_language(bytes: &[u8], mut at: usize) -> Result<(), String> {
    const FIRST_VALUE_TAG: u8 = 0x10;
    const END_OF_ATTRIBUTES: u8 = 0x03;
    const TEXT_WITH_LANGUAGE: u8 = 0x35;
    const NAME_WITH_LANGUAGE: u8 = 0x36;
    while let Some(&tag) = bytes.get(at) {
        if tag == END_OF_ATTRIBUTES {
            break;
        }
        at += 1;
        if tag < FIRST_VALUE_TAG {
            continue;
        }
        let Some((name, rest)) = length_prefixed(bytes.get(at..).unwrap_or_default()) else {
            break;
        };
        let Some((value, _)) = length_prefixed(rest) else {
            break;
        };
        if (tag == TEXT_WITH_LANGUAGE || tag == NAME_WITH_LANGUAGE) && !two_strings(value) {
            let name: String = String::from_utf8_lossy(name)
                .chars()
                .map(|c| if c.is_control() { '?' } else { c })
                .take(64)
                .collect();
            return Err(name);
        }
        at += 4 + name.len() + value.len();
    }
    Ok(())
}

/// A two-byte length, that many bytes, and what follows them.
fn length_prefixed(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = bytes.split_first_chunk::<2>()?;
    let len = usize::from(u16::from_be_bytes(*len));
    Some((rest.get(..len)?, rest.get(len..)?))
}

/// Whether `value` begins with two strings, each after its two-byte length
/// (a language, then the text: RFC 8010 §3.9).
fn two_strings(value: &[u8]) -> bool {
    length_prefixed(value)
        .and_then(|(_, rest)| length_prefixed(rest))
        .is_some()
}

/// Sorts a transport error by what a printer's status should say.
fn classify(e: reqwest::Error, timeout: Duration) -> IppError {
    if let Some(reason) = tls::certificate_problem(&e) {
        IppError::Certificate { reason }
    } else if e.is_timeout() {
        IppError::Timeout(timeout)
    } else if e.is_connect() {
        IppError::Connect(e)
    } else {
        IppError::Transport(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error_chain;
    use std::error::Error as _;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    /// Any request: these printers fail before they would read it.
    fn body() -> bytes::Bytes {
        bytes::Bytes::from_static(&[1, 1, 0, 0x0a, 0, 0, 0, 1, 3])
    }

    fn url(listener: &TcpListener) -> String {
        let port = listener.local_addr().expect("local address").port();
        format!("http://127.0.0.1:{port}/ipp/print")
    }

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

    #[tokio::test]
    async fn a_refused_connection_says_so_through_its_transport_error() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = url(&listener);
        drop(listener); // nothing listens there now
        let client = IppClient::new().expect("client");
        let e = client
            .send_encoded(&url, body(), Duration::from_secs(5))
            .await
            .err()
            .expect("refused");
        assert!(matches!(e, IppError::Connect(_)), "{e:?}");
        let line = error_chain(&e);
        assert!(line.starts_with("cannot connect: "), "{line}");
        assert!(line.to_lowercase().contains("refused"), "{line}");
    }

    #[tokio::test]
    async fn a_printer_that_never_answers_times_out_with_its_limit() {
        // Bound but never accepted: the kernel takes the connection and the
        // request, and nothing answers.
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let client = IppClient::new().expect("client");
        let limit = Duration::from_millis(200);
        let e = client
            .send_encoded(&url(&listener), body(), limit)
            .await
            .err()
            .expect("no answer");
        assert!(matches!(e, IppError::Timeout(d) if d == limit), "{e:?}");
        assert_eq!(error_chain(&e), "no answer within 200ms");
    }

    #[tokio::test]
    async fn bytes_that_are_not_http_keep_the_transport_error() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = url(&listener);
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().expect("accept");
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .expect("read timeout");
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let _ = stream.write_all(&[0xff; 64]);
            let _ = stream.shutdown(std::net::Shutdown::Write);
            // Until the client leaves, so it reads the bytes, not a reset.
            let _ = stream.read(&mut request);
        });
        let client = IppClient::new().expect("client");
        let e = client
            .send_encoded(&url, body(), Duration::from_secs(5))
            .await
            .err()
            .expect("garbage");
        server.join().expect("server thread");
        assert!(matches!(e, IppError::Transport(_)), "{e:?}");
        let cause = e.source().expect("keeps the reqwest error").to_string();
        let line = error_chain(&e);
        assert!(line.starts_with("not an IPP response: "), "{line}");
        assert!(line.contains(&cause), "{line}");
    }

    #[test]
    fn bytes_that_are_not_ipp_keep_the_parse_error() {
        // Version 1.1, then an attribute whose name runs past the end.
        let e = parse_response(vec![1, 1, 0, 0, 0, 0, 0, 1, 1, 0x47, 0xff, 0xff])
            .err()
            .expect("garbage");
        assert!(matches!(e, IppError::Parse(_)), "{e:?}");
        let cause = e.source().expect("keeps the parse error").to_string();
        assert_eq!(error_chain(&e), format!("not an IPP response: {cause}"));
        let e = parse_response(vec![9; 16]).err().expect("version 9");
        assert_eq!(error_chain(&e), "not an IPP response: IPP version 9");
    }

    #[test]
    fn an_ipp_status_that_is_not_a_success_keeps_its_code_and_name() {
        let status = ipp::model::StatusCode::ClientErrorNotAuthorized;
        let response = IppRequestResponse::new_response(IppVersion::v1_1(), status, 7)
            .expect("response")
            .to_bytes();
        let parsed = parse_response(response.to_vec()).expect("well-formed");
        let e = successful(parsed).err().expect("not a success");
        assert!(
            matches!(&e, IppError::Status { code: 0x0403, name } if name == "ClientErrorNotAuthorized"),
            "{e:?}"
        );
        assert_eq!(
            error_chain(&e),
            "IPP status ClientErrorNotAuthorized (0x0403)"
        );
    }
}
