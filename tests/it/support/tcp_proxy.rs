//! A TCP proxy on 127.0.0.1 between one site and the centre, in std
//! threads, whose behaviour the test sets at any moment: pass requests on,
//! cut every connection, delay each request, forward a request and drop
//! its response (the centre applied it, the site never heard), and replay
//! a request it forwarded before.
//!
//! It works a request at a time: it reads one HTTP/1.1 request (headers and
//! a `Content-Length` body, as the site's shipper sends), forwards it on a
//! fresh connection with `Connection: close` and reads the whole response,
//! then answers (or not). Every request it forwarded is kept, to replay.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// What the proxy does with the next request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Pass,
    /// Connections are accepted and closed at once, nothing forwarded.
    Cut,
    /// Each request waits this long before it is forwarded.
    Delay(Duration),
    /// Each request is forwarded and applied, and its response dropped:
    /// the client's connection is closed without an answer.
    DropResponse,
}

struct Shared {
    mode: Mutex<Mode>,
    upstream: u16,
    /// Requests forwarded so far, as sent upstream.
    seen: Mutex<Vec<Vec<u8>>>,
    /// Responses dropped so far.
    dropped: AtomicUsize,
    stop: AtomicBool,
}

/// A proxy listening on a free port of 127.0.0.1, forwarding to
/// `127.0.0.1:upstream`; stops accepting when dropped.
pub struct TcpProxy {
    pub port: u16,
    shared: Arc<Shared>,
}

impl TcpProxy {
    pub fn start(upstream: u16) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let shared = Arc::new(Shared {
            mode: Mutex::new(Mode::Pass),
            upstream,
            seen: Mutex::new(Vec::new()),
            dropped: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        });
        let accepting = Arc::clone(&shared);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if accepting.stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                let shared = Arc::clone(&accepting);
                std::thread::spawn(move || serve(&shared, client));
            }
        });
        TcpProxy { port, shared }
    }

    pub fn set(&self, mode: Mode) {
        *self
            .shared
            .mode
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = mode;
    }

    /// How many requests were forwarded, and how many responses dropped.
    pub fn counts(&self) -> (usize, usize) {
        let seen = self
            .shared
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        (seen.len(), self.shared.dropped.load(Ordering::SeqCst))
    }

    /// Sends the `index`-th forwarded request (modulo how many there were)
    /// to the centre once more; returns its request line and the
    /// response's status line, or `None` when nothing was forwarded yet.
    pub fn replay(&self, index: usize) -> Option<String> {
        let request = {
            let seen = self
                .shared
                .seen
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if seen.is_empty() {
                return None;
            }
            seen[index % seen.len()].clone()
        };
        let response = forward(self.shared.upstream, &request).unwrap_or_default();
        let first = |bytes: &[u8]| {
            let text = String::from_utf8_lossy(bytes);
            text.lines().next().unwrap_or("no answer").to_string()
        };
        Some(format!("{} -> {}", first(&request), first(&response)))
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wakes the accepting thread so it sees `stop`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Serves one client connection: one request, then closed (the centre is
/// asked with `Connection: close`, and its answer says so to the client).
fn serve(shared: &Shared, mut client: TcpStream) {
    let _ = client.set_read_timeout(Some(Duration::from_secs(60)));
    let mode = || *shared.mode.lock().unwrap_or_else(PoisonError::into_inner);
    if mode() == Mode::Cut || shared.stop.load(Ordering::SeqCst) {
        let _ = client.shutdown(Shutdown::Both);
        return;
    }
    let Some(request) = read_request(&mut client) else {
        return;
    };
    // The mode may have changed while the request came in.
    let now = mode();
    match now {
        Mode::Cut => {
            let _ = client.shutdown(Shutdown::Both);
            return;
        }
        Mode::Delay(d) => std::thread::sleep(d),
        Mode::Pass | Mode::DropResponse => {}
    }
    let request = with_connection_close(&request);
    let response = forward(shared.upstream, &request);
    shared
        .seen
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(request);
    match response {
        Some(_) if now == Mode::DropResponse => {
            shared.dropped.fetch_add(1, Ordering::SeqCst);
        }
        Some(response) => {
            let _ = client.write_all(&response);
        }
        None => {}
    }
    let _ = client.shutdown(Shutdown::Both);
}

/// Reads one request: headers, then as many body bytes as
/// `Content-Length` says. `None` on EOF or a malformed request.
fn read_request(client: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buffered = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(i) = find(&buffered, b"\r\n\r\n") {
            break i + 4;
        }
        let n = client.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buffered.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffered[..head_end]).to_string();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buffered.len() < head_end + length {
        let n = client.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buffered.extend_from_slice(&chunk[..n]);
    }
    buffered.truncate(head_end + length);
    Some(buffered)
}

/// The request with its `Connection` header replaced by `close`.
fn with_connection_close(request: &[u8]) -> Vec<u8> {
    let head_end = find(request, b"\r\n\r\n").map_or(request.len(), |i| i + 4);
    let head = String::from_utf8_lossy(&request[..head_end]);
    let mut out = String::new();
    for line in head.split("\r\n").filter(|l| !l.is_empty()) {
        let is_connection = line
            .split_once(':')
            .is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case("connection"));
        if !is_connection {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&request[head_end..]);
    bytes
}

/// Sends `request` to the centre and reads its whole response (the centre
/// closes after it); `None` if the centre is not there or says nothing.
fn forward(upstream: u16, request: &[u8]) -> Option<Vec<u8>> {
    let mut centre = TcpStream::connect(("127.0.0.1", upstream)).ok()?;
    let _ = centre.set_read_timeout(Some(Duration::from_secs(30)));
    centre.write_all(request).ok()?;
    let mut response = Vec::new();
    let _ = centre.read_to_end(&mut response);
    (!response.is_empty()).then_some(response)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
