//! Fault servers: printers that misbehave on purpose (refuse, hang, answer
//! garbage, an HTTP error, an IPP error status, or a huge response), each a
//! std-thread TCP server on loopback.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::process::free_port;

/// How a [`FaultServer`] misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// A free port with nothing listening: connections are refused.
    Refuse,
    /// Accepts every connection (one thread each), reads and discards what
    /// comes, never answers, holds the connection until the client leaves.
    Hang,
    /// Reads the request, answers 512 random bytes that are not HTTP, closes.
    Garbage,
    /// Reads the request, answers this HTTP status (401 carries
    /// `WWW-Authenticate: Basic`) with a short text body, closes.
    Http(u16),
    /// HTTP 200 `application/ipp`: version, this status code, the request's
    /// request-id, charset + language, `status-message`, end-of-attributes.
    IppStatus(u16),
    /// HTTP 200 `application/ipp`, `successful-ok`, and after the operation
    /// group this many more bytes of VALID IPP (a job group with one
    /// `x-tallyd-padding` text attribute of many 1023-octet values, then
    /// end-of-attributes), streamed in 64 KiB chunks with a Content-Length.
    /// Below 23 bytes: end-of-attributes then zeros (document data); 0 still
    /// sends the end tag.
    Huge(usize),
}

/// A std-thread TCP server on `127.0.0.1:PORT` playing one [`Fault`]; every
/// thread and connection is stopped (and joined) on drop.
pub struct FaultServer {
    pub port: u16,
    pub fault: Fault,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
    /// A clone of every open connection, by connection number, so Drop can
    /// shut them down; a handler removes its own when it is done.
    streams: Arc<Mutex<HashMap<usize, TcpStream>>>,
    handlers: Arc<Mutex<Vec<JoinHandle<()>>>>,
    acceptor: Option<JoinHandle<()>>,
}

impl FaultServer {
    pub fn start(fault: Fault) -> FaultServer {
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let streams = Arc::new(Mutex::new(HashMap::new()));
        let handlers = Arc::new(Mutex::new(Vec::new()));
        let mut server = FaultServer {
            port: 0,
            fault,
            stop: stop.clone(),
            accepted: accepted.clone(),
            streams: streams.clone(),
            handlers: handlers.clone(),
            acceptor: None,
        };
        if fault == Fault::Refuse {
            server.port = free_port();
            return server;
        }
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a fault server");
        server.port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        server.acceptor = Some(thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let number = accepted.fetch_add(1, Ordering::SeqCst);
                        let _ = stream.set_nonblocking(false);
                        if let Ok(clone) = stream.try_clone() {
                            streams.lock().unwrap().insert(number, clone);
                        }
                        let stop = stop.clone();
                        let streams = streams.clone();
                        let handle = thread::spawn(move || {
                            serve_fault(fault, stream, &stop);
                            streams.lock().unwrap().remove(&number);
                        });
                        let mut handlers = handlers.lock().unwrap();
                        handlers.retain(|h| !h.is_finished());
                        handlers.push(handle);
                    }
                    Err(_) => thread::sleep(Duration::from_millis(2)),
                }
            }
        }));
        server
    }

    /// `ipp://127.0.0.1:PORT/ipp/print`.
    pub fn uri(&self) -> String {
        format!("ipp://127.0.0.1:{}/ipp/print", self.port)
    }

    /// How many connections it has accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        // The acceptor has stopped, so no handler or stream is added now.
        for (_, stream) in self.streams.lock().unwrap().drain() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        let handlers: Vec<_> = self.handlers.lock().unwrap().drain(..).collect();
        for handler in handlers {
            let _ = handler.join();
        }
    }
}

fn serve_fault(fault: Fault, mut stream: TcpStream, stop: &AtomicBool) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
    match fault {
        Fault::Refuse => {}
        Fault::Hang => {
            let mut buf = [0u8; 8192];
            while !stop.load(Ordering::SeqCst) {
                match stream.read(&mut buf) {
                    Ok(0) => return,
                    Ok(_) => {}
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                        ) => {}
                    Err(_) => return,
                }
            }
        }
        Fault::Garbage => {
            let _ = read_request(&mut stream, stop, false);
            let mut seed = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
                | 1;
            let mut bytes = Vec::with_capacity(512);
            while bytes.len() < 512 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                bytes.extend_from_slice(&seed.to_le_bytes());
            }
            bytes[0] = 0xFF; // never "HTTP/"
            let _ = stream.write_all(&bytes);
            let _ = stream.shutdown(Shutdown::Write);
        }
        Fault::Http(status) => {
            let _ = read_request(&mut stream, stop, true);
            let body = format!("tallyd test fault: HTTP {status}\n");
            let auth = if status == 401 {
                "WWW-Authenticate: Basic realm=\"tallyd-test\"\r\n"
            } else {
                ""
            };
            let response = format!(
                "HTTP/1.1 {status} {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{auth}\
                 Connection: close\r\n\r\n{body}",
                reason(status),
                body.len()
            );
            let _ = stream.write_all(response.as_bytes());
            let _ = stream.shutdown(Shutdown::Write);
        }
        Fault::IppStatus(status) => {
            let request = read_request(&mut stream, stop, true).unwrap_or_default();
            let mut body = ipp_response_head(&request, status);
            ipp_attr(&mut body, 0x41, "status-message", b"tallyd test fault");
            body.push(0x03);
            let mut response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/ipp\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n",
                body.len()
            )
            .into_bytes();
            response.extend_from_slice(&body);
            let _ = stream.write_all(&response);
            let _ = stream.shutdown(Shutdown::Write);
        }
        Fault::Huge(n) => {
            let request = read_request(&mut stream, stop, true).unwrap_or_default();
            let head = ipp_response_head(&request, 0x0000);
            let extra = n.max(1);
            let header = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/ipp\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n",
                head.len() + extra
            );
            if stream.write_all(header.as_bytes()).is_err() || stream.write_all(&head).is_err() {
                return;
            }
            let _ = stream_padding(&mut stream, extra, stop);
            let _ = stream.shutdown(Shutdown::Write);
        }
    }
}

/// Writes exactly `n` (>= 1) bytes of valid IPP after an operation group.
fn stream_padding(stream: &mut TcpStream, n: usize, stop: &AtomicBool) -> io::Result<()> {
    const CHUNK: usize = 64 * 1024;
    const MAX_VALUE: usize = 1023;
    const NAME: &[u8] = b"x-tallyd-padding";
    let value = [b'x'; MAX_VALUE];
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK + 2 * MAX_VALUE);
    let first_overhead = 1 + 2 + NAME.len() + 2;
    if n < 2 + first_overhead {
        buf.push(0x03);
        buf.resize(n, 0);
        return stream.write_all(&buf);
    }
    buf.push(0x02); // job-attributes-tag
    let mut rem = n - 2; // the group tag and the final end tag
    let mut first = true;
    while rem > 0 {
        let overhead = if first { first_overhead } else { 5 };
        let mut len = (rem - overhead).min(MAX_VALUE);
        let left = rem - overhead - len;
        if left > 0 && left < 5 {
            len -= 5; // leave room for one more (small) value
        }
        buf.push(0x41); // textWithoutLanguage
        if first {
            buf.extend_from_slice(&(NAME.len() as u16).to_be_bytes());
            buf.extend_from_slice(NAME);
        } else {
            buf.extend_from_slice(&0u16.to_be_bytes()); // additional value
        }
        buf.extend_from_slice(&(len as u16).to_be_bytes());
        buf.extend_from_slice(&value[..len]);
        rem -= overhead + len;
        first = false;
        if buf.len() >= CHUNK {
            if stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            stream.write_all(&buf)?;
            buf.clear();
        }
    }
    buf.push(0x03);
    stream.write_all(&buf)
}

/// IPP response header: the request's version (or 2.0), `status`, the
/// request's request-id (or 1), and an operation group with charset and
/// natural language.
fn ipp_response_head(request: &[u8], status: u16) -> Vec<u8> {
    let (version, request_id) = if request.len() >= 8 {
        (
            [request[0], request[1]],
            [request[4], request[5], request[6], request[7]],
        )
    } else {
        ([2, 0], 1u32.to_be_bytes())
    };
    let mut body = vec![version[0], version[1]];
    body.extend_from_slice(&status.to_be_bytes());
    body.extend_from_slice(&request_id);
    body.push(0x01);
    ipp_attr(&mut body, 0x47, "attributes-charset", b"utf-8");
    ipp_attr(&mut body, 0x48, "attributes-natural-language", b"en");
    body
}

fn ipp_attr(out: &mut Vec<u8>, tag: u8, name: &str, value: &[u8]) {
    out.push(tag);
    out.extend_from_slice(&(name.len() as u16).to_be_bytes());
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(&(value.len() as u16).to_be_bytes());
    out.extend_from_slice(value);
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        413 => "Request Entity Too Large",
        426 => "Upgrade Required",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// Reads more bytes into `data`; false on EOF, error, stop or deadline.
fn fill(stream: &mut TcpStream, data: &mut Vec<u8>, stop: &AtomicBool, deadline: Instant) -> bool {
    let mut buf = [0u8; 16384];
    loop {
        if stop.load(Ordering::SeqCst) || Instant::now() > deadline {
            return false;
        }
        match stream.read(&mut buf) {
            Ok(0) => return false,
            Ok(n) => {
                data.extend_from_slice(&buf[..n]);
                return true;
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return false,
        }
    }
}

/// Reads one HTTP request (headers, then a Content-Length or chunked body)
/// and returns its body; gives up after 5 s or when the server stops.
/// Answers `Expect: 100-continue` when `continue_ok`.
pub(super) fn read_request(
    stream: &mut TcpStream,
    stop: &AtomicBool,
    continue_ok: bool,
) -> Option<Vec<u8>> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut data = Vec::new();
    let header_end = loop {
        if let Some(pos) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        if !fill(stream, &mut data, stop, deadline) {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&data[..header_end]).to_ascii_lowercase();
    let header = |name: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
    };
    let content_length: Option<usize> = header("content-length:").and_then(|v| v.parse().ok());
    let chunked = header("transfer-encoding:").is_some_and(|v| v.contains("chunked"));
    if continue_ok && header("expect:").is_some_and(|v| v.contains("100-continue")) {
        let _ = stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
    }
    let mut raw = data.split_off(header_end);
    if let Some(len) = content_length {
        while raw.len() < len {
            if !fill(stream, &mut raw, stop, deadline) {
                break;
            }
        }
        raw.truncate(len);
        return Some(raw);
    }
    if !chunked {
        return Some(raw);
    }
    // De-chunk: size line, data, CRLF ... until a zero-size chunk.
    let mut body = Vec::new();
    let mut pos = 0;
    loop {
        let line_end = loop {
            if let Some(p) = raw[pos..].windows(2).position(|w| w == b"\r\n") {
                break pos + p;
            }
            if !fill(stream, &mut raw, stop, deadline) {
                return Some(body);
            }
        };
        let size_text = String::from_utf8_lossy(&raw[pos..line_end]).into_owned();
        let size =
            usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16).ok()?;
        pos = line_end + 2;
        if size == 0 {
            return Some(body);
        }
        while raw.len() < pos + size + 2 {
            if !fill(stream, &mut raw, stop, deadline) {
                body.extend_from_slice(&raw[pos.min(raw.len())..]);
                return Some(body);
            }
        }
        body.extend_from_slice(&raw[pos..pos + size]);
        pos += size + 2;
    }
}
