//! A plain HTTP/1.0 GET to the daemon's listener, and its `/metrics`
//! parsed with a real Prometheus text-format parser (prometheus-parse).

use prometheus_parse::{Sample, Scrape, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// `GET path` at `127.0.0.1:port`: the status code and the body.
pub fn get(port: u16, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to tallyd's listener");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").expect("send request");
    let mut reply = String::new();
    stream.read_to_string(&mut reply).expect("read reply");
    let (head, body) = reply.split_once("\r\n\r\n").expect("a head and a body");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head}"));
    (status, body.to_string())
}

/// `/metrics`, parsed; panics unless it answers 200 with the Prometheus
/// text format's content.
pub fn scrape(port: u16) -> Scrape {
    let (status, body) = get(port, "/metrics");
    assert_eq!(status, 200, "{body}");
    Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).expect("Prometheus text format")
}

/// The value of the counter or gauge `metric` whose labels include
/// `labels`, if the scrape has one.
pub fn value(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    sample(scrape, metric, labels).map(|s| match &s.value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
        other => panic!("{metric} is not a single value: {other:?}"),
    })
}

/// The sample of `metric` whose labels include `labels`.
pub fn sample<'a>(scrape: &'a Scrape, metric: &str, labels: &[(&str, &str)]) -> Option<&'a Sample> {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
}

/// Scrapes until `metric` with `labels` reads `want`, at most `limit`.
pub fn wait_value(port: u16, metric: &str, labels: &[(&str, &str)], want: f64, limit: Duration) {
    let start = Instant::now();
    loop {
        let got = value(&scrape(port), metric, labels);
        if got == Some(want) {
            return;
        }
        if start.elapsed() > limit {
            panic!("{metric}{labels:?} is {got:?}, not {want}, after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// GETs `path` until it answers `status`, at most `limit`; the body.
pub fn wait_status(port: u16, path: &str, status: u16, limit: Duration) -> String {
    let start = Instant::now();
    loop {
        let (got, body) = get(port, path);
        if got == status {
            return body;
        }
        if start.elapsed() > limit {
            panic!("{path} answers {got} ({body}), not {status}, after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
