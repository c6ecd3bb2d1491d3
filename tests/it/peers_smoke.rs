//! Proves each peer of `support` works against the real programs:
//! an ippeveprinter with scripted counts (and its restart), a private cupsd in
//! front of it plus a held queue, every fault server, and the recorded-answer
//! server (held jobs, Release-Job, a changed count) as ipptool sees it.

use crate::support::fault::{Fault, FaultServer};
use crate::support::pdf::{pdf_pages, write_pdf};
use crate::support::peers::Peers;
use crate::support::process::free_port;

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);

fn job(jobs: &[HashMap<String, String>], id: u32) -> &HashMap<String, String> {
    jobs.iter()
        .find(|j| j.get("job-id").map(String::as_str) == Some(&id.to_string()))
        .unwrap_or_else(|| panic!("job {id} not in {jobs:#?}"))
}

fn get<'a>(job: &'a HashMap<String, String>, name: &str) -> &'a str {
    job.get(name).map(String::as_str).unwrap_or("<absent>")
}

#[test]
fn eve_scripted_counts_busy_retry_and_restart() {
    let t = Instant::now();
    let peers = Peers::new();
    println!(
        "[eve] Peers::new (tempdir + dbus-daemon): {:?}",
        t.elapsed()
    );

    let t = Instant::now();
    let mut eve = peers.eve("smoke eve");
    println!(
        "[eve] ippeveprinter answering at {} after {:?}",
        eve.uri(),
        t.elapsed()
    );
    assert_eq!(eve.printer_state(), Some(3), "a fresh Eve is idle");

    let t = Instant::now();
    let a = eve.submit("alice", 3);
    let submitted_a = t.elapsed();
    let b = eve.submit_with(
        "bob",
        5,
        &[
            ("sides", "two-sided-long-edge"),
            ("print-color-mode", "color"),
            ("copies", "2"),
        ],
    );
    println!(
        "[eve] Print-Job {a} took {submitted_a:?}; Print-Job {b} accepted {:?} after the first \
         (retrying server-error-busy meanwhile)",
        t.elapsed() - submitted_a
    );
    eve.wait_completed(a, WAIT);
    eve.wait_completed(b, WAIT);
    println!(
        "[eve] both completed {:?} after the first submit",
        t.elapsed()
    );

    let jobs = eve.jobs("completed");
    let (ja, jb) = (job(&jobs, a), job(&jobs, b));
    println!("[eve] Get-Jobs which-jobs=completed: {jobs:?}");
    assert_eq!(get(ja, "job-impressions-completed"), "3");
    assert_eq!(get(ja, "job-originating-user-name"), "alice");
    assert_eq!(get(jb, "job-impressions-completed"), "5");
    assert_eq!(get(jb, "job-originating-user-name"), "bob");
    assert_eq!(get(jb, "job-state"), "completed");
    assert_eq!(get(ja, "job-name"), "impressions=3");

    let env = eve.job_env(b).expect("the job script logged job b");
    let mut names: Vec<&String> = env.keys().collect();
    names.sort();
    println!("[eve] the -c command of job {b} got: {names:?}");
    assert_eq!(env["IPP_JOB_ORIGINATING_USER_NAME"], "bob");
    assert_eq!(env["IPP_SIDES"], "two-sided-long-edge");
    assert_eq!(env["IPP_PRINT_COLOR_MODE"], "color");
    assert_eq!(env["IPP_COPIES"], "2");
    assert_eq!(env["IPP_JOB_NAME"], "impressions=5");
    assert_eq!(env["IPP_JOB_ID"], b.to_string());

    // `fail` in the job name aborts the job; quotes, `\` and `$` survive.
    let name = r#"re"po\rt $HOME, fail"#;
    let c = eve.submit_with("carol", 1, &[("job-name", name)]);
    eve.wait_state(c, 8, WAIT);
    let jobs = eve.jobs("completed");
    assert_eq!(get(job(&jobs, c), "job-state"), "aborted");
    assert_eq!(
        get(job(&jobs, c), "job-name"),
        format!("{name} impressions=1")
    );

    // Restart on the same port: job ids start at 1 again, old jobs are gone.
    let port = eve.port;
    let t = Instant::now();
    eve.restart();
    println!(
        "[eve] restart (kill + start + answer) took {:?}",
        t.elapsed()
    );
    assert_eq!(eve.port, port);
    assert!(eve.jobs("all").is_empty(), "a restarted Eve has no jobs");
    let d = eve.submit("dave", 2);
    assert_eq!(d, 1, "job ids restart at 1");
    eve.wait_completed(d, WAIT);
    let attrs = eve.job_attrs(d);
    assert_eq!(attrs.int("job-impressions-completed"), Some(2));
    assert_eq!(attrs.attrs["job-originating-user-name"], "dave");

    eve.stop();
    let refused = TcpStream::connect(("127.0.0.1", port)).unwrap_err();
    assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
    println!("[eve] stopped; port {port} refuses connections");
}

#[test]
fn cupsd_in_front_of_an_eve_and_held_queues() {
    let peers = Peers::new();
    let eve = peers.eve("behind-cupsd");
    let t = Instant::now();
    let cupsd = peers.cupsd();
    println!(
        "[cupsd] answering on {} after {:?}",
        cupsd.host(),
        t.elapsed()
    );

    let pdf = write_pdf(peers.dir(), "three.pdf", 3);
    assert_eq!(pdf_pages(&pdf), 3, "pdfinfo counts the hand-written PDF");
    assert_eq!(pdf_pages(&write_pdf(peers.dir(), "one.pdf", 1)), 1);

    let t = Instant::now();
    cupsd.add_queue("direct", &eve.uri(), false);
    println!(
        "[cupsd] lpadmin -m everywhere to the Eve: {:?}",
        t.elapsed()
    );
    let t = Instant::now();
    cupsd.add_queue("held", "file:///dev/null", true);
    println!("[cupsd] lpadmin file:///dev/null, held: {:?}", t.elapsed());
    assert_eq!(
        cupsd.queue_uri("held"),
        format!("ipp://127.0.0.1:{}/printers/held", cupsd.port)
    );

    // Who counts when cupsd fronts an Eve? The larger of CUPS's own page count
    // and the Eve's scripted one (see `support::cupsd`).
    let t = Instant::now();
    let plain = cupsd.lp("direct", "alice", &pdf, &[]);
    let more = cupsd.lp("direct", "bob", &pdf, &["-t", "impressions=9"]);
    let less = cupsd.lp("direct", "carol", &pdf, &["-t", "impressions=2"]);
    for id in [plain, more, less] {
        cupsd.wait_state("direct", id, 9, WAIT);
        println!(
            "[cupsd] direct-{id} completed {:?} after the first lp",
            t.elapsed()
        );
    }
    let jobs = cupsd.jobs("direct", "completed");
    println!("[cupsd] Get-Jobs on direct: {jobs:?}");
    assert_eq!(get(job(&jobs, plain), "job-impressions-completed"), "3");
    assert_eq!(get(job(&jobs, more), "job-impressions-completed"), "9");
    assert_eq!(get(job(&jobs, less), "job-impressions-completed"), "3");
    assert_eq!(get(job(&jobs, more), "job-originating-user-name"), "bob");
    let at_eve = eve.jobs("completed");
    println!("[cupsd] the Eve saw: {at_eve:?}");
    let users: Vec<&str> = at_eve
        .iter()
        .map(|j| get(j, "job-originating-user-name"))
        .collect();
    assert_eq!(
        users,
        ["carol", "bob", "alice"],
        "cupsd forwards the user name"
    );
    let counts: Vec<&str> = at_eve
        .iter()
        .map(|j| get(j, "job-impressions-completed"))
        .collect();
    assert_eq!(counts, ["2", "9", "0"]);

    // Per-job hold on a direct queue, released with IPP Release-Job.
    let held = cupsd.lp("direct", "dave", &pdf, &["-H", "indefinite"]);
    assert_eq!(cupsd.job_state("direct", held), 4);
    let attrs = cupsd.job_attrs("direct", held);
    assert_eq!(attrs.attrs["job-state-reasons"], "job-hold-until-specified");
    assert_eq!(attrs.attrs["job-originating-user-name"], "dave");
    assert!(
        !attrs.attrs.contains_key("job-impressions"),
        "no page count while held"
    );
    let t = Instant::now();
    cupsd.release_job("direct", held).expect("Release-Job");
    cupsd.wait_state("direct", held, 9, WAIT);
    println!(
        "[cupsd] released direct-{held} completed after {:?}",
        t.elapsed()
    );
    assert_eq!(
        cupsd
            .job_attrs("direct", held)
            .int("job-impressions-completed"),
        Some(3)
    );

    // A queue held by default; 2 copies two-sided.
    let k = cupsd.lp(
        "held",
        "erin",
        &pdf,
        &["-n", "2", "-o", "sides=two-sided-long-edge"],
    );
    cupsd.wait_state("held", k, 4, WAIT);
    let t = Instant::now();
    cupsd.release_job("held", k).expect("Release-Job");
    cupsd.wait_state("held", k, 9, WAIT);
    println!(
        "[cupsd] released held-{k} completed after {:?}",
        t.elapsed()
    );
    let done = cupsd.job_attrs("held", k);
    assert_eq!(
        done.int("job-impressions-completed"),
        Some(8),
        "3 pages x 2 copies, duplex"
    );
    assert_eq!(done.int("job-media-sheets-completed"), Some(4));
    assert_eq!(
        cupsd.release_job("held", k),
        Err("client-error-not-possible".to_string())
    );
    assert_eq!(
        cupsd.release_job("held", 999),
        Err("client-error-not-found".to_string())
    );

    assert!(cupsd.page_log().contains(&format!("held erin {k} ")));
    assert!(!cupsd.error_log().contains("Unable to open listen socket"));

    // A cupsd that cannot listen panics instead of running deaf.
    let squatter = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = squatter.local_addr().unwrap().port();
    println!("[cupsd] starting a cupsd on occupied port {port}: the panic below is expected");
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| peers.cupsd_on(port)));
    let message = match caught {
        Ok(_) => panic!("cupsd on an occupied port must panic"),
        Err(e) => e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default(),
    };
    assert!(
        message.contains("Unable to open listen socket"),
        "{message}"
    );
    println!("[cupsd] occupied port {port}: panicked with {message:?}");
}

// ---------------------------------------------------------------------------
// Fault servers, probed with a hand-written IPP request
// ---------------------------------------------------------------------------

fn get_printer_attributes(port: u16, request_id: u32) -> Vec<u8> {
    let mut body = vec![0x02, 0x00, 0x00, 0x0B];
    body.extend_from_slice(&request_id.to_be_bytes());
    body.push(0x01);
    let uri = format!("ipp://127.0.0.1:{port}/ipp/print");
    for (tag, name, value) in [
        (0x47u8, "attributes-charset", "utf-8"),
        (0x48, "attributes-natural-language", "en"),
        (0x45, "printer-uri", uri.as_str()),
    ] {
        body.push(tag);
        body.extend_from_slice(&(name.len() as u16).to_be_bytes());
        body.extend_from_slice(name.as_bytes());
        body.extend_from_slice(&(value.len() as u16).to_be_bytes());
        body.extend_from_slice(value.as_bytes());
    }
    body.push(0x03);
    let mut request = format!(
        "POST /ipp/print HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/ipp\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    request
}

/// Sends a Get-Printer-Attributes and reads until the server closes.
fn exchange(port: u16, timeout: Duration) -> io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.write_all(&get_printer_attributes(port, 77))?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    Ok(response)
}

fn split_http(response: &[u8]) -> (String, &[u8]) {
    let end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP header")
        + 4;
    (
        String::from_utf8_lossy(&response[..end]).into_owned(),
        &response[end..],
    )
}

/// Walks an IPP response: (status, request-id, attribute values, bytes after
/// end-of-attributes); Err if it is not well-formed.
fn walk_ipp(body: &[u8]) -> Result<(u16, u32, usize, usize), String> {
    if body.len() < 9 {
        return Err(format!("only {} bytes", body.len()));
    }
    let status = u16::from_be_bytes([body[2], body[3]]);
    let request_id = u32::from_be_bytes([body[4], body[5], body[6], body[7]]);
    let mut i = 8;
    let mut values = 0;
    let u16_at = |i: usize| -> Result<usize, String> {
        body.get(i..i + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]) as usize)
            .ok_or_else(|| format!("truncated at {i}"))
    };
    loop {
        let tag = *body
            .get(i)
            .ok_or_else(|| format!("no end-of-attributes (at {i})"))?;
        if tag == 0x03 {
            return Ok((status, request_id, values, body.len() - i - 1));
        }
        if tag < 0x10 {
            i += 1;
            continue;
        }
        let name_len = u16_at(i + 1)?;
        let value_len = u16_at(i + 3 + name_len)?;
        i += 5 + name_len + value_len;
        if i > body.len() {
            return Err("value runs past the end".into());
        }
        values += 1;
    }
}

#[test]
fn fault_servers_misbehave_as_promised() {
    let refuse = FaultServer::start(Fault::Refuse);
    let err = TcpStream::connect(("127.0.0.1", refuse.port)).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
    assert_eq!(
        refuse.uri(),
        format!("ipp://127.0.0.1:{}/ipp/print", refuse.port)
    );
    println!("[fault] Refuse: {err}");

    let hang = FaultServer::start(Fault::Hang);
    let t = Instant::now();
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(("127.0.0.1", hang.port)).unwrap();
        stream
            .write_all(&get_printer_attributes(hang.port, 1))
            .unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut buf = [0u8; 64];
        let err = stream.read(&mut buf).expect_err("Hang never answers");
        assert!(matches!(
            err.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ));
        held.push(stream);
    }
    assert_eq!(hang.accepted(), 2, "Hang keeps accepting");
    println!(
        "[fault] Hang: 2 connections held, reads timed out ({:?})",
        t.elapsed()
    );
    let t = Instant::now();
    drop(hang);
    println!(
        "[fault] Hang dropped with open connections in {:?}",
        t.elapsed()
    );
    let mut buf = [0u8; 64];
    held[0]
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    assert!(
        matches!(held[0].read(&mut buf), Ok(0) | Err(_)),
        "closed on drop"
    );

    let garbage = FaultServer::start(Fault::Garbage);
    let bytes = exchange(garbage.port, Duration::from_secs(5)).unwrap();
    assert!(!bytes.is_empty() && !bytes.starts_with(b"HTTP/"));
    println!(
        "[fault] Garbage: {} bytes, starting {:02x?}",
        bytes.len(),
        &bytes[..8]
    );

    for status in [401u16, 500] {
        let server = FaultServer::start(Fault::Http(status));
        let response = exchange(server.port, Duration::from_secs(5)).unwrap();
        let (head, body) = split_http(&response);
        assert!(head.starts_with(&format!("HTTP/1.1 {status} ")), "{head}");
        assert_eq!(status == 401, head.contains("WWW-Authenticate: Basic"));
        println!(
            "[fault] Http({status}): {:?} + {:?}",
            head.lines().next().unwrap(),
            String::from_utf8_lossy(body)
        );
    }

    let ipp = FaultServer::start(Fault::IppStatus(0x0400));
    let response = exchange(ipp.port, Duration::from_secs(5)).unwrap();
    let (head, body) = split_http(&response);
    assert!(head.starts_with("HTTP/1.1 200 OK") && head.contains("application/ipp"));
    let (status, request_id, values, trailing) = walk_ipp(body).unwrap();
    assert_eq!((status, request_id, values, trailing), (0x0400, 77, 3, 0));
    println!("[fault] IppStatus(0x0400): {} byte IPP body, status 0x{status:04x}, request-id {request_id}", body.len());

    for n in [0usize, 1, 22, 23, 24, 1048, 1049, 1050, 1054, 100_000] {
        let server = FaultServer::start(Fault::Huge(n));
        let response = exchange(server.port, Duration::from_secs(5)).unwrap();
        let (head, body) = split_http(&response);
        assert!(
            head.contains(&format!("Content-Length: {}", body.len())),
            "{head}"
        );
        let (status, _, _, trailing) = walk_ipp(body).unwrap_or_else(|e| panic!("Huge({n}): {e}"));
        assert_eq!(status, 0);
        assert_eq!(body.len(), 71 + n.max(1), "Huge({n})");
        assert_eq!(trailing, if n < 23 { n.saturating_sub(1) } else { 0 });
    }
    let huge = FaultServer::start(Fault::Huge(64 << 20));
    let t = Instant::now();
    let response = exchange(huge.port, Duration::from_secs(20)).unwrap();
    let took = t.elapsed();
    let (_, body) = split_http(&response);
    let (status, request_id, values, trailing) = walk_ipp(body).unwrap();
    assert_eq!((status, request_id, trailing), (0, 77, 0));
    assert_eq!(body.len(), 71 + (64 << 20));
    println!(
        "[fault] Huge(64 MiB): {} bytes of valid IPP ({values} values) read in {took:?}",
        body.len()
    );

    // Ports are never handed out twice.
    let ports: std::collections::HashSet<u16> = (0..50).map(|_| free_port()).collect();
    assert_eq!(ports.len(), 50);
}

#[test]
fn recorded_serves_its_answer_with_the_change_and_moves_a_released_job_to_completed() {
    use crate::support::ipptool::{get_jobs, release_job};
    use crate::support::recorded::{decode, fixture, job_ids, record, with_attr, Recorded, Script};
    use ipp::prelude::IppValue;
    use tallyd::printer::requests::Which;

    let dir = tempfile::tempdir().expect("tempdir");
    let completed = with_attr(
        fixture("cupsd-completed.ipp"),
        1,
        "job-impressions-completed",
        IppValue::Integer(i32::MAX),
    );
    let server = Recorded::start(Script::held(&fixture("cupsd-held.ipp"), &completed));
    // The daemon's own request, and ipptool (a real IPP client), agree.
    assert_eq!(
        job_ids(&decode(record(&server.uri(), Which::NotCompleted))),
        [1, 2, 3]
    );
    assert!(job_ids(&decode(record(&server.uri(), Which::Completed))).is_empty());
    let attrs = &["job-id", "job-state", "job-impressions-completed"];
    assert_eq!(
        get_jobs(dir.path(), &server.uri(), "not-completed", attrs).len(),
        3
    );
    release_job(dir.path(), &server.uri(), 1).expect("Release-Job answered");
    assert_eq!(server.released(), [1]);
    let done = get_jobs(dir.path(), &server.uri(), "completed", attrs);
    assert_eq!(done.len(), 1, "{done:#?}");
    assert_eq!(get(&done[0], "job-impressions-completed"), "2147483647");
    assert_eq!(get(&done[0], "job-state"), "completed");
    assert_eq!(
        job_ids(&decode(record(&server.uri(), Which::NotCompleted))),
        [2, 3]
    );
}
