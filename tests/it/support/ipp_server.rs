//! JobServer: a small IPP printer on loopback whose finished jobs are a list
//! in memory, served a page at a time (`limit`, `first-index`) in the order
//! given (cupsd and ippeveprinter list newest first), with only the
//! `requested-attributes` asked for, over HTTP/1.1 keep-alive. Its jobs may
//! be broken as a real printer's can be: a `job-name` longer than IPP allows
//! (CUPS 2.4 lists one of 300 bytes after `lp -t`; the `ipp` crate refuses
//! names over 255), or a record too large for any response.
//!
//! It writes the IPP bytes itself, so it can send what the `ipp` crate would
//! refuse to encode; it reads requests with the crate.

use std::io::{self, Cursor, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use ipp::prelude::*;

/// One finished job as the server lists it.
#[derive(Debug, Clone)]
pub struct ServedJob {
    pub id: i32,
    pub user: String,
    pub impressions: i32,
    /// `job-name`, written as it is, whatever its length.
    pub name: Vec<u8>,
    /// About this many bytes more of `job-name` values (of 250 bytes, valid
    /// IPP): a record too large to send when this is over 8 MiB, unless
    /// only attributes that name the job are asked for.
    pub padding: usize,
}

impl ServedJob {
    /// A completed one-sided mono job of `user` that printed `impressions`.
    pub fn completed(id: i32, user: &str, impressions: i32) -> ServedJob {
        ServedJob {
            id,
            user: user.into(),
            impressions,
            name: format!("document-{id}.pdf").into_bytes(),
            padding: 0,
        }
    }

    /// With a `job-name` of `len` bytes.
    pub fn named(mut self, len: usize) -> ServedJob {
        self.name = vec![b'n'; len];
        self
    }

    /// With about `bytes` more bytes of (valid) `job-name` values.
    pub fn padded(mut self, bytes: usize) -> ServedJob {
        self.padding = bytes;
        self
    }

    /// Its `job-uuid`.
    pub fn uuid(&self) -> String {
        format!("urn:uuid:7a11d000-0000-4000-8000-{:012}", self.id)
    }

    /// Its group in a response, with only the attributes `wanted`.
    fn encode(&self, wanted: &dyn Fn(&str) -> bool, at: &[u8; 11], out: &mut Vec<u8>) {
        out.push(0x02);
        let add = |out: &mut Vec<u8>, tag: u8, name: &str, value: &[u8]| {
            if wanted(name) {
                attr(out, tag, name, value);
            }
        };
        add(out, 0x21, "job-id", &self.id.to_be_bytes());
        add(out, 0x45, "job-uuid", self.uuid().as_bytes());
        add(out, 0x23, "job-state", &9i32.to_be_bytes());
        add(out, 0x42, "job-name", &self.name);
        if wanted("job-name") {
            let value = [b'p'; 250];
            for _ in 0..self.padding / (5 + value.len()) {
                attr(out, 0x42, "", &value);
            }
        }
        add(out, 0x42, "job-originating-user-name", self.user.as_bytes());
        add(out, 0x21, "time-at-creation", &self.id.to_be_bytes());
        add(out, 0x31, "date-time-at-creation", at);
        add(out, 0x31, "date-time-at-completed", at);
        add(
            out,
            0x21,
            "job-impressions",
            &self.impressions.to_be_bytes(),
        );
        add(
            out,
            0x21,
            "job-impressions-completed",
            &self.impressions.to_be_bytes(),
        );
        add(out, 0x21, "copies", &1i32.to_be_bytes());
        add(out, 0x44, "sides", b"one-sided");
        add(out, 0x44, "print-color-mode", b"monochrome");
    }
}

fn attr(out: &mut Vec<u8>, tag: u8, name: &str, value: &[u8]) {
    out.push(tag);
    out.extend_from_slice(&(name.len() as u16).to_be_bytes());
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(&(value.len() as u16).to_be_bytes());
    out.extend_from_slice(value);
}

/// What the server has been asked.
#[derive(Debug, Default)]
pub struct Served {
    /// Get-Jobs answered.
    pub requests: AtomicUsize,
    /// The most jobs in one answer.
    pub most_jobs: AtomicUsize,
    /// Get-Jobs that came with `first-index` and `limit`.
    pub paged: AtomicUsize,
}

/// A std-thread server on `127.0.0.1:PORT`; its threads stop on drop.
pub struct JobServer {
    pub port: u16,
    pub served: Arc<Served>,
    stop: Arc<AtomicBool>,
    handlers: Arc<Mutex<Vec<JoinHandle<()>>>>,
    acceptor: Option<JoinHandle<()>>,
}

impl JobServer {
    /// Serves `jobs`, in this order, as the printer's finished jobs.
    pub fn start(jobs: Vec<ServedJob>) -> JobServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a job server");
        let port = listener.local_addr().expect("local address").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let jobs = Arc::new(jobs);
        let served = Arc::new(Served::default());
        let stop = Arc::new(AtomicBool::new(false));
        let handlers = Arc::new(Mutex::new(Vec::new()));
        let (s, st, h) = (served.clone(), stop.clone(), handlers.clone());
        let acceptor = thread::spawn(move || {
            while !st.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (jobs, s, st) = (jobs.clone(), s.clone(), st.clone());
                        let handle = thread::spawn(move || serve(stream, &jobs, &s, &st));
                        let mut h = h.lock().expect("handlers");
                        h.retain(|t: &JoinHandle<()>| !t.is_finished());
                        h.push(handle);
                    }
                    Err(_) => thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        JobServer {
            port,
            served,
            stop,
            handlers,
            acceptor: Some(acceptor),
        }
    }

    /// `ipp://127.0.0.1:PORT/ipp/print`.
    pub fn uri(&self) -> String {
        format!("ipp://127.0.0.1:{}/ipp/print", self.port)
    }
}

impl Drop for JobServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        let handlers: Vec<_> = self.handlers.lock().expect("handlers").drain(..).collect();
        for handler in handlers {
            let _ = handler.join();
        }
    }
}

/// Answers requests on one connection until the client leaves or the
/// server stops.
fn serve(mut stream: TcpStream, jobs: &[ServedJob], served: &Served, stop: &AtomicBool) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
    let at = date_time_now();
    let mut pending = Vec::new();
    while let Some(body) = read_request(&mut stream, &mut pending, stop) {
        let answer = answer(&body, jobs, served, &at);
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/ipp\r\nContent-Length: {}\r\n\r\n",
            answer.len()
        );
        if stream.write_all(head.as_bytes()).is_err() || stream.write_all(&answer).is_err() {
            break;
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
}

/// The IPP answer to one request: Get-Jobs from the list, anything else
/// `server-error-operation-not-supported`.
fn answer(body: &[u8], jobs: &[ServedJob], served: &Served, at: &[u8; 11]) -> Vec<u8> {
    let request =
        ipp::parser::IppParser::new(ipp::reader::IppReader::new(Cursor::new(body.to_vec())))
            .parse();
    let mut out = Vec::new();
    let Ok(request) = request else {
        out.extend_from_slice(&[1, 1, 0x04, 0x00, 0, 0, 0, 1, 0x01]);
        attr(&mut out, 0x47, "attributes-charset", b"utf-8");
        attr(&mut out, 0x48, "attributes-natural-language", b"en");
        out.push(0x03);
        return out;
    };
    let header = request.header();
    let get_jobs = header.operation_or_status == Operation::GetJobs as i16;
    let status: u16 = if get_jobs { 0 } else { 0x0501 };
    out.extend_from_slice(&header.version.0.to_be_bytes());
    out.extend_from_slice(&status.to_be_bytes());
    out.extend_from_slice(&header.request_id.to_be_bytes());
    out.push(0x01);
    attr(&mut out, 0x47, "attributes-charset", b"utf-8");
    attr(&mut out, 0x48, "attributes-natural-language", b"en");
    if get_jobs {
        list_jobs(&request, jobs, served, at, &mut out);
    }
    out.push(0x03);
    out
}

fn list_jobs(
    request: &IppRequestResponse,
    jobs: &[ServedJob],
    served: &Served,
    at: &[u8; 11],
    out: &mut Vec<u8>,
) {
    let ops = request
        .attributes()
        .first_of(DelimiterTag::OperationAttributes);
    let get = |name: &str| ops.and_then(|g| g.get(name)).map(|a| a.value().clone());
    let int = |name: &str| match get(name) {
        Some(IppValue::Integer(n)) => Some(n),
        _ => None,
    };
    let wanted: Vec<String> = match get("requested-attributes") {
        Some(IppValue::Array(values)) => values.iter().map(|v| v.to_string()).collect(),
        Some(v) => vec![v.to_string()],
        None => Vec::new(),
    };
    let wanted = |name: &str| wanted.is_empty() || wanted.iter().any(|w| w == name);
    let completed = get("which-jobs").is_some_and(|w| w.to_string() == "completed");
    let (first, limit) = (int("first-index"), int("limit"));
    served.requests.fetch_add(1, Ordering::SeqCst);
    if first.is_some() && limit.is_some() {
        served.paged.fetch_add(1, Ordering::SeqCst);
    }
    if !completed {
        return;
    }
    let skip = first.map_or(0, |f| f.max(1) as usize - 1);
    let take = limit.filter(|&l| l > 0).map_or(usize::MAX, |l| l as usize);
    let page: Vec<&ServedJob> = jobs.iter().skip(skip).take(take).collect();
    served.most_jobs.fetch_max(page.len(), Ordering::SeqCst);
    for job in page {
        job.encode(&wanted, at, out);
    }
}

/// Now as an IPP dateTime in UTC.
fn date_time_now() -> [u8; 11] {
    use chrono::{Datelike, Timelike};
    let now = chrono::Utc::now();
    let year = (now.year() as u16).to_be_bytes();
    [
        year[0],
        year[1],
        now.month() as u8,
        now.day() as u8,
        now.hour() as u8,
        now.minute() as u8,
        now.second() as u8,
        0,
        b'+',
        0,
        0,
    ]
}

/// Reads one HTTP request with a Content-Length body (as reqwest sends
/// IPP) and returns its body; `None` when the client leaves or the server
/// stops. `pending` keeps bytes read past it.
fn read_request(
    stream: &mut TcpStream,
    pending: &mut Vec<u8>,
    stop: &AtomicBool,
) -> Option<Vec<u8>> {
    let mut buf = [0u8; 65536];
    let mut fill = |pending: &mut Vec<u8>| -> bool {
        loop {
            if stop.load(Ordering::SeqCst) {
                return false;
            }
            match stream.read(&mut buf) {
                Ok(0) => return false,
                Ok(n) => {
                    pending.extend_from_slice(&buf[..n]);
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
    };
    let end = loop {
        if let Some(pos) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        if !fill(pending) {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&pending[..end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while pending.len() < end + length {
        if !fill(pending) {
            return None;
        }
    }
    let body = pending[end..end + length].to_vec();
    pending.drain(..end + length);
    Some(body)
}
