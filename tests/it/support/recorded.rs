//! Recorded: a small IPP server that answers `Get-Jobs` with a REAL recorded
//! response (`fixtures/ipp/*.ipp`, see `fixtures/ipp/README.md`), decoded
//! with the `ipp` crate and re-encoded with single attributes changed, as a
//! printer whose counters went wrong would send it.
//!
//! A [`Recorded`] printer serves one [`Script`]: the recorded finished jobs
//! (`which-jobs=completed`) and, for a held queue, the recorded held jobs
//! (`not-completed`). With held jobs, a job is listed held until tallyd sends
//! `Release-Job` for it, and from then on listed finished (with whatever
//! counts the script gives it). Any other operation gets `successful-ok`.
//! Each connection answers one request and closes.
//!
//! [`record`] is how the fixtures were made: it posts the daemon's own
//! `Get-Jobs` request (`tallyd::printer::requests::get_jobs`) to a real
//! printer and returns the response's bytes as they came.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use ipp::prelude::*;
use tallyd::printer::paging::{Attrs, PAGE};
use tallyd::printer::requests::{get_jobs, Which};

use super::fault::read_request;

/// The recorded responses, in `fixtures/ipp/`.
pub fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/ipp")
        .join(name)
}

/// A recorded response, decoded.
pub fn fixture(name: &str) -> IppRequestResponse {
    let path = fixture_path(name);
    let bytes = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("tests/it/support: read {}: {e}", path.display()));
    decode(bytes)
}

/// Decodes an IPP message with the `ipp` crate.
pub fn decode(bytes: Vec<u8>) -> IppRequestResponse {
    ipp::parser::IppParser::new(ipp::reader::IppReader::new(std::io::Cursor::new(bytes)))
        .parse()
        .expect("tests/it/support: an IPP message that parses")
}

/// The `job-id` of a job group.
fn job_id(group: &IppAttributeGroup) -> Option<i32> {
    match group.get("job-id").map(|a| a.value()) {
        Some(IppValue::Integer(n)) => Some(*n),
        _ => None,
    }
}

/// The job ids of a response, in its order.
pub fn job_ids(response: &IppRequestResponse) -> Vec<i32> {
    response
        .attributes()
        .groups_of(DelimiterTag::JobAttributes)
        .filter_map(job_id)
        .collect()
}

/// The value of `name` on job `job` of `response`.
pub fn job_attr<'a>(
    response: &'a IppRequestResponse,
    job: i32,
    name: &str,
) -> Option<&'a IppValue> {
    response
        .attributes()
        .groups_of(DelimiterTag::JobAttributes)
        .find(|g| job_id(g) == Some(job))
        .and_then(|g| g.get(name))
        .map(|a| a.value())
}

/// `response` with job `job`'s attribute `name` set to `value` (replaced
/// where it was, appended where the printer did not send it); everything
/// else stays as recorded. Panics when the job is not in the response.
pub fn with_attr(
    mut response: IppRequestResponse,
    job: i32,
    name: &str,
    value: IppValue,
) -> IppRequestResponse {
    let group = response
        .attributes_mut()
        .groups_of_mut(DelimiterTag::JobAttributes)
        .find(|g| job_id(g) == Some(job))
        .unwrap_or_else(|| panic!("tests/it/support: no job {job} in the recorded response"));
    let attr = IppAttribute::with_name(name, value).expect("an attribute name");
    let attrs = group.attributes_mut();
    match attrs.iter_mut().find(|a| a.name().as_str() == name) {
        Some(slot) => *slot = attr,
        None => attrs.push(attr),
    }
    response
}

/// What a [`Recorded`] printer lists.
#[derive(Clone)]
pub struct Script {
    /// The finished jobs (`which-jobs=completed`).
    pub completed: IppAttributes,
    /// The held jobs (`not-completed`) of a held queue; each moves to the
    /// finished list once released. `None`: every finished job is listed at
    /// once and nothing is held.
    pub held: Option<IppAttributes>,
}

impl Script {
    /// A direct printer that lists `completed`.
    pub fn finished(completed: &IppRequestResponse) -> Script {
        Script {
            completed: completed.attributes().clone(),
            held: None,
        }
    }

    /// A held queue: each job of `held` until it is released, then as in
    /// `completed`.
    pub fn held(held: &IppRequestResponse, completed: &IppRequestResponse) -> Script {
        Script {
            completed: completed.attributes().clone(),
            held: Some(held.attributes().clone()),
        }
    }
}

struct State {
    script: Script,
    released: BTreeSet<i32>,
    get_jobs: usize,
}

/// A small IPP server on `127.0.0.1:PORT` serving a [`Script`]; its
/// threads are stopped and joined on drop.
pub struct Recorded {
    pub port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl Recorded {
    pub fn start(script: Script) -> Recorded {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a recorded printer");
        let port = listener.local_addr().expect("its address").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let state = Arc::new(Mutex::new(State {
            script,
            released: BTreeSet::new(),
            get_jobs: 0,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (state.clone(), stop.clone());
        let acceptor = thread::spawn(move || {
            let mut handlers: Vec<JoinHandle<()>> = Vec::new();
            while !st.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (s, st) = (s.clone(), st.clone());
                        handlers.retain(|h| !h.is_finished());
                        handlers.push(thread::spawn(move || serve(stream, &s, &st)));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(2)),
                }
            }
            for h in handlers {
                let _ = h.join();
            }
        });
        Recorded {
            port,
            state,
            stop,
            acceptor: Some(acceptor),
        }
    }

    /// `ipp://127.0.0.1:PORT/ipp/print`.
    pub fn uri(&self) -> String {
        format!("ipp://127.0.0.1:{}/ipp/print", self.port)
    }

    /// Jobs released so far (by `Release-Job`).
    pub fn released(&self) -> Vec<i32> {
        self.state
            .lock()
            .unwrap()
            .released
            .iter()
            .copied()
            .collect()
    }

    /// How many `Get-Jobs` it has answered.
    pub fn get_jobs_answered(&self) -> usize {
        self.state.lock().unwrap().get_jobs
    }
}

impl Drop for Recorded {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
    }
}

fn serve(mut stream: TcpStream, state: &Mutex<State>, stop: &AtomicBool) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
    let Some(body) = read_request(&mut stream, stop, true) else {
        return;
    };
    let Ok(request) =
        ipp::parser::IppParser::new(ipp::reader::IppReader::new(std::io::Cursor::new(body)))
            .parse()
    else {
        return;
    };
    let answer = answer(&request, &mut state.lock().unwrap()).to_bytes();
    let mut out = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/ipp\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        answer.len()
    )
    .into_bytes();
    out.extend_from_slice(&answer);
    let _ = stream.write_all(&out);
    let _ = stream.shutdown(Shutdown::Write);
}

/// An operation attribute of `request`.
fn operation_attr<'a>(request: &'a IppRequestResponse, name: &str) -> Option<&'a IppValue> {
    request
        .attributes()
        .first_of(DelimiterTag::OperationAttributes)
        .and_then(|g| g.get(name))
        .map(|a| a.value())
}

fn answer(request: &IppRequestResponse, state: &mut State) -> IppRequestResponse {
    let header = request.header();
    let mut response = IppRequestResponse::new_response(
        header.version,
        StatusCode::SuccessfulOk,
        header.request_id,
    )
    .expect("a response header");
    let op = header.operation_or_status;
    if op == Operation::ReleaseJob as i16 {
        if let Some(IppValue::Integer(id)) = operation_attr(request, "job-id") {
            state.released.insert(*id);
        }
    } else if op == Operation::GetJobs as i16 {
        state.get_jobs += 1;
        let completed = matches!(
            operation_attr(request, "which-jobs"),
            Some(IppValue::Keyword(k)) if k.as_str() == "completed"
        );
        // With held jobs: the finished list shows the released jobs only,
        // the held list the others.
        let (listed, released_wanted) = match (&state.script.held, completed) {
            (None, true) => (Some(&state.script.completed), None),
            (None, false) => (None, None),
            (Some(_), true) => (Some(&state.script.completed), Some(true)),
            (Some(held), false) => (Some(held), Some(false)),
        };
        if let Some(attrs) = listed {
            let mut attrs = attrs.clone();
            if let Some(wanted) = released_wanted {
                attrs.groups_mut().retain(|g| {
                    g.tag() != DelimiterTag::JobAttributes
                        || job_id(g).is_some_and(|id| state.released.contains(&id) == wanted)
                });
            }
            // The recorded answer's own groups: its operation group, then
            // one group per job.
            *response.attributes_mut() = attrs;
        }
    }
    response
}

/// Posts the daemon's own `Get-Jobs` (`which`, its first page) to the
/// printer at `uri` and returns the IPP response's bytes exactly as they
/// came (de-chunked).
pub fn record(uri: &str, which: Which) -> Vec<u8> {
    let request = get_jobs(uri, which, Attrs::All, 1, PAGE)
        .expect("the daemon's Get-Jobs")
        .to_bytes();
    let url = tallyd::ipp_uri::http_url(uri).expect("an ipp:// URI");
    let rest = url.strip_prefix("http://").expect("plain http");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut stream = TcpStream::connect(authority).expect("connect to the printer");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/ipp\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        request.len()
    );
    stream.write_all(head.as_bytes()).expect("send");
    stream.write_all(&request).expect("send");
    // Read the answer by its framing: a printer may keep the connection
    // open whatever the request said.
    let mut raw = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        if let Some(body) = http_body(&raw) {
            return body;
        }
        let n = stream.read(&mut buf).expect("read the answer");
        assert!(n > 0, "the printer closed before its answer was whole");
        raw.extend_from_slice(&buf[..n]);
    }
}

/// The IPP body of a whole HTTP 200 answer in `raw` (de-chunked), or `None`
/// while more of it is to come.
fn http_body(raw: &[u8]) -> Option<Vec<u8>> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let headers = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    assert!(headers.starts_with("http/1.1 200"), "{headers}");
    let body = &raw[end..];
    if !headers.contains("transfer-encoding: chunked") {
        let length: usize = headers
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("a Content-Length or chunks");
        return (body.len() >= length).then(|| body[..length].to_vec());
    }
    let (mut out, mut pos) = (Vec::new(), 0);
    loop {
        let eol = pos + body.get(pos..)?.windows(2).position(|w| w == b"\r\n")?;
        let text = String::from_utf8_lossy(&body[pos..eol]);
        let size = usize::from_str_radix(text.split(';').next().unwrap_or("").trim(), 16)
            .expect("a chunk size");
        pos = eol + 2;
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(body.get(pos..pos + size)?);
        pos += size + 2;
    }
}
