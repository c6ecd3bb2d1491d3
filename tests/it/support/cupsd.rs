//! Cupsd: a private cupsd with its own config, spool and logs, its queues
//! (in front of an Eve, or `file:///dev/null`, held or not), `lp`, and the
//! IPP requests a test makes of it.
//!
//! # Facts found on Debian 12 (cups 2.4.2), which these helpers rely on
//!
//! * With cupsd in front of an Eve (`-m everywhere`), CUPS sends the PDF on
//!   (pdftopdf counts its pages), its ipp backend polls the Eve's
//!   `job-impressions-completed` and forwards it as `PAGE: total N`. cupsd then
//!   reports the LARGER of its own count (pages x copies, padded for duplex:
//!   3 pages x 2 copies two-sided = 8 impressions, 4 sheets) and the Eve's
//!   scripted count. So a 3-page PDF named `impressions=9` reports 9, one named
//!   `impressions=2` reports 3, an unscripted one reports 3. When the Eve's
//!   count wins, cupsd sets `job-media-sheets-completed` to the same number.
//! * A cupsd whose `Listen` port is taken logs `Unable to open listen socket
//!   for address 127.0.0.1:PORT - Address already in use.` and `No Listen or
//!   Port lines were found...`; started from a shell it then runs on, deaf,
//!   but started as a process-group leader (as here) it dies of SIGTERM at
//!   once. Either way [`super::Peers::cupsd_on`] panics with that log line.
//! * A raw cupsd queue (no `-m`) runs no filter and reports 0 impressions, so
//!   [`Cupsd::add_queue`] gives non-IPP devices the Generic PDF Printer PPD
//!   from cups-filters, which counts pages like a real queue.

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::ipptool::{
    get_job_attributes, get_jobs, job_state_value, release_job, IppReply, JOB_LIST_ATTRS,
};
use super::peers::Shared;
use super::process::{require, run, tail, text_of, Proc, COMMAND_TIMEOUT, START_TIMEOUT};

/// The PPD given to non-IPP queues so that CUPS counts their pages.
pub const GENERIC_PDF_PPD: &str = "lsb/usr/cupsfilters/Generic-PDF_Printer-PDF.ppd";

/// A private cupsd (`cupsd -f -c DIR/etc/cupsd.conf -s DIR/etc/cups-files.conf`)
/// listening on `127.0.0.1:PORT` only, with its own spool, state and logs,
/// open access (no auth, every user sees every job's attributes) and
/// `PreserveJobHistory Yes`.
pub struct Cupsd {
    pub port: u16,
    dir: PathBuf,
    // Held for their drops; field order is drop order: cupsd stops before
    // the bus and the directory may go.
    _proc: Proc,
    _shared: Arc<Shared>,
}

impl Cupsd {
    /// `extra` is more `cupsd.conf` lines (e.g. `MaxJobs 0\n`).
    pub(super) fn start(shared: Arc<Shared>, port: u16, log_level: &str, extra: &str) -> Cupsd {
        let started = Instant::now();
        let cupsd = require("cupsd");
        require("lpadmin");
        require("lp");
        require("ipptool");
        let dir = shared.dir.path().join(format!("cupsd-{port}"));
        for sub in ["etc", "spool", "tmp", "cache", "state", "log"] {
            fs::create_dir_all(dir.join(sub)).expect("create cupsd dirs");
        }
        let d = dir.display();
        let files_conf = format!(
            "ServerRoot {d}/etc\nRequestRoot {d}/spool\nTempDir {d}/tmp\nCacheDir {d}/cache\n\
             StateDir {d}/state\nAccessLog {d}/log/access_log\nErrorLog {d}/log/error_log\n\
             PageLog {d}/log/page_log\nServerBin /usr/lib/cups\nDataDir /usr/share/cups\n\
             Printcap {d}/etc/printcap\nFileDevice Yes\n"
        );
        let conf = format!(
            "LogLevel {log_level}\nMaxLogSize 0\nListen 127.0.0.1:{port}\nBrowsing No\n\
             BrowseLocalProtocols none\nDefaultAuthType None\nWebInterface No\n\
             PreserveJobHistory Yes\n{extra}\
             <Location />\n  Order allow,deny\n  Allow all\n</Location>\n\
             <Policy default>\n  JobPrivateAccess all\n  JobPrivateValues none\n\
             \x20 SubscriptionPrivateAccess all\n  SubscriptionPrivateValues none\n\
             \x20 <Limit All>\n    Order deny,allow\n  </Limit>\n</Policy>\n"
        );
        fs::write(dir.join("etc/cups-files.conf"), files_conf).expect("write cups-files.conf");
        fs::write(dir.join("etc/cupsd.conf"), conf).expect("write cupsd.conf");
        let mut cmd = Command::new(cupsd);
        cmd.arg("-f")
            .arg("-c")
            .arg(dir.join("etc/cupsd.conf"))
            .arg("-s")
            .arg(dir.join("etc/cups-files.conf"))
            .env("DBUS_SYSTEM_BUS_ADDRESS", &shared.dbus_address);
        let what = format!("cupsd on 127.0.0.1:{port}");
        let mut proc = Proc::spawn(cmd, &what, &dir.join("log/stdout"));
        let error_log = dir.join("log/error_log");
        let listening = format!("Listening to 127.0.0.1:{port} on fd");
        let deadline = started + START_TIMEOUT;
        loop {
            let exited = proc.exited();
            // Read the log after checking for an exit, so a cupsd that logged
            // why and then died is reported with its reason.
            let log = fs::read_to_string(&error_log).unwrap_or_default();
            if let Some(line) = log
                .lines()
                .find(|l| l.contains("Unable to open listen socket"))
            {
                panic!("tests/it/support: {what} cannot listen: {line}");
            }
            if let Some(status) = exited {
                panic!(
                    "tests/it/support: {what} exited early ({status})\n{}\n{}",
                    tail(&error_log, 4000),
                    tail(&proc.log, 2000)
                );
            }
            // Only `LogLevel debug` logs the listening line.
            let listens = log_level != "debug" || log.contains(&listening);
            if listens && http_answers(port) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "tests/it/support: {what} did not answer within {START_TIMEOUT:?}\n{}\n{}",
                tail(&error_log, 4000),
                tail(&proc.log, 2000)
            );
            thread::sleep(Duration::from_millis(5));
        }
        Cupsd {
            port,
            dir,
            _proc: proc,
            _shared: shared,
        }
    }

    /// `127.0.0.1:PORT`, for `-h`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `ipp://127.0.0.1:PORT/printers/NAME`.
    pub fn queue_uri(&self, name: &str) -> String {
        format!("ipp://127.0.0.1:{}/printers/{name}", self.port)
    }

    /// Adds an enabled, accepting queue. `ipp://`/`ipps://` devices get
    /// `-m everywhere` (lpadmin queries the printer, so it must be up); any
    /// other device (e.g. `file:///dev/null`) gets [`GENERIC_PDF_PPD`], so CUPS
    /// counts pages. `held` adds `-o job-hold-until-default=indefinite`.
    pub fn add_queue(&self, name: &str, device_uri: &str, held: bool) {
        let model = if device_uri.starts_with("ipp://") || device_uri.starts_with("ipps://") {
            "everywhere"
        } else {
            GENERIC_PDF_PPD
        };
        self.add_queue_model(name, device_uri, held, Some(model));
    }

    /// Like [`Cupsd::add_queue`] with an explicit `-m` model; `None` makes a
    /// raw queue (no filters: CUPS then reports 0 impressions).
    pub fn add_queue_model(&self, name: &str, device_uri: &str, held: bool, model: Option<&str>) {
        let mut cmd = Command::new(require("lpadmin"));
        cmd.args(["-h", &self.host(), "-p", name, "-E", "-v", device_uri]);
        if let Some(model) = model {
            cmd.args(["-m", model]);
        }
        if held {
            cmd.args(["-o", "job-hold-until-default=indefinite"]);
        }
        let out = run(&mut cmd, COMMAND_TIMEOUT);
        assert!(
            out.status.success(),
            "tests/it/support: lpadmin for queue {name} ({device_uri}) failed:\n{}\n{}",
            text_of(&out),
            tail(&self.dir.join("log/error_log"), 3000)
        );
    }

    /// `lp -h 127.0.0.1:PORT -U user -d queue OPTS... FILE`; returns N from
    /// "request id is queue-N". E.g. opts `["-H", "indefinite"]`,
    /// `["-n", "2", "-o", "sides=two-sided-long-edge"]`, `["-t", "impressions=9"]`.
    pub fn lp(&self, queue: &str, user: &str, file: &Path, opts: &[&str]) -> u32 {
        let out = run(
            Command::new(require("lp"))
                .args(["-h", &self.host(), "-U", user, "-d", queue])
                .args(opts)
                .arg(file),
            COMMAND_TIMEOUT,
        );
        let text = text_of(&out);
        let id = text
            .split("request id is ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|req| req.rsplit_once('-'))
            .and_then(|(_, n)| n.parse().ok());
        match (out.status.success(), id) {
            (true, Some(id)) => id,
            _ => panic!("tests/it/support: lp to {queue} failed:\n{text}"),
        }
    }

    /// `cancel -h 127.0.0.1:PORT queue-N`: the job is cancelled.
    pub fn cancel(&self, queue: &str, job_id: u32) {
        let out = run(
            Command::new(require("cancel"))
                .args(["-h", &self.host()])
                .arg(format!("{queue}-{job_id}")),
            COMMAND_TIMEOUT,
        );
        assert!(
            out.status.success(),
            "tests/it/support: cancel {queue}-{job_id} failed:\n{}",
            text_of(&out)
        );
    }

    /// All attributes of a job (Get-Job-Attributes on the queue's URI).
    pub fn job_attrs(&self, queue: &str, job_id: u32) -> IppReply {
        get_job_attributes(&self.dir, &self.queue_uri(queue), job_id)
    }

    /// The job's `job-state` (3..9); panics if cupsd does not know the job.
    pub fn job_state(&self, queue: &str, job_id: u32) -> i32 {
        let reply = self.job_attrs(queue, job_id);
        reply
            .attrs
            .get("job-state")
            .and_then(|s| job_state_value(s))
            .unwrap_or_else(|| {
                panic!(
                    "tests/it/support: no job-state for {queue}-{job_id} ({}):\n{}",
                    reply.status, reply.output
                )
            })
    }

    /// Polls until the job's `job-state` is `state`; panics on timeout with
    /// the job's attributes and the error log's tail.
    pub fn wait_state(&self, queue: &str, job_id: u32, state: i32, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let reply = self.job_attrs(queue, job_id);
            let now = reply
                .attrs
                .get("job-state")
                .and_then(|s| job_state_value(s));
            if now == Some(state) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "tests/it/support: job {queue}-{job_id} is {now:?}, not {state}, after {timeout:?}:\n{}\n{}",
                reply.output,
                tail(&self.dir.join("log/error_log"), 3000)
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// IPP Release-Job (printer-uri + job-id); `Err(status)` e.g.
    /// `client-error-not-possible` (not held) or `client-error-not-found`.
    pub fn release_job(&self, queue: &str, job_id: u32) -> Result<(), String> {
        release_job(&self.dir, &self.queue_uri(queue), job_id)
    }

    /// Get-Jobs on a queue with [`JOB_LIST_ATTRS`], newest first.
    pub fn jobs(&self, queue: &str, which: &str) -> Vec<HashMap<String, String>> {
        get_jobs(&self.dir, &self.queue_uri(queue), which, JOB_LIST_ATTRS)
    }

    pub fn error_log(&self) -> String {
        fs::read_to_string(self.dir.join("log/error_log")).unwrap_or_default()
    }

    /// One line per completed job: `queue user id [time] total N ...`.
    pub fn page_log(&self) -> String {
        fs::read_to_string(self.dir.join("log/page_log")).unwrap_or_default()
    }
}

/// Whether an HTTP server answers `GET /` on 127.0.0.1:port.
fn http_answers(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(500),
    ) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 16];
    let mut got = 0;
    while got < 9 {
        match stream.read(&mut head[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    head[..got].starts_with(b"HTTP/1.")
}
