#![allow(dead_code)]
//! Real IPP peers for integration tests (`mod peers;`).
//!
//! Everything here starts real programs or real sockets, never mocks, and
//! listens on loopback only (`127.0.0.1`; ippeveprinter's `-n localhost` also
//! binds `[::1]`), on ports picked by binding `127.0.0.1:0`. Every child
//! process is started in its own process group and killed (group-wide, so
//! ippeveprinter's per-job scripts and cupsd's filters go too) and waited for
//! on `Drop`. A missing binary panics, naming it and its Debian package:
//! tests fail loudly, they never skip.
//!
//! ```ignore
//! let peers = Peers::new();                        // tempdir + private dbus-daemon
//! let eve = peers.eve("front-desk");               // ippeveprinter on a free port
//! let id = eve.submit("alice", 3);                 // job reports 3 impressions
//! eve.wait_completed(id, Duration::from_secs(10));
//! let cupsd = peers.cupsd();                       // private cupsd
//! cupsd.add_queue("q1", &eve.uri(), false);        // -m everywhere in front of the Eve
//! cupsd.add_queue("held", "file:///dev/null", true);
//! let pdf = write_pdf(peers.dir(), "three.pdf", 3);
//! let job = cupsd.lp("held", "bob", &pdf, &[]);    // job-state 4 (pending-held)
//! cupsd.release_job("held", job).unwrap();
//! let dead = FaultServer::start(Fault::Hang);      // accepts, never answers
//! ```
//!
//! # Facts found on Debian 12 (cups 2.4.2), which these helpers rely on
//!
//! * ippeveprinter's `-c` command gets the spooled document as `$1` (e.g.
//!   `SPOOL/1-impressions_3.dat`), ippeveprinter's own environment (so
//!   `TALLYD_EVE_DIR`, set by [`Eve`], reaches it), `CONTENT_TYPE`, and the
//!   job's attributes as `IPP_*`: `IPP_JOB_ID`, `IPP_JOB_NAME`, `IPP_JOB_URI`,
//!   `IPP_JOB_UUID`, `IPP_JOB_PRINTER_URI`, `IPP_JOB_ORIGINATING_USER_NAME`,
//!   `IPP_COPIES`, `IPP_SIDES`, `IPP_PRINT_COLOR_MODE`,
//!   `IPP_DOCUMENT_FORMAT_SUPPLIED`, `IPP_DATE_TIME_AT_CREATION`,
//!   `IPP_TIME_AT_CREATION`, plus every printer default as `IPP_*_DEFAULT`
//!   (`IPP_SIDES_DEFAULT`, `IPP_MEDIA_COL_DEFAULT`, ...). Only attributes the
//!   client sent appear without `_DEFAULT` (a job from cupsd also carries
//!   `IPP_OUTPUT_BIN`, `IPP_PRINT_QUALITY`, `IPP_MULTIPLE_DOCUMENT_HANDLING`).
//! * `ATTR: job-impressions-completed=N` on the command's stderr sets the
//!   job's count; `ATTR: job-media-sheets-completed=N` is ignored (ippeveprinter
//!   never reports sheets). A non-zero exit aborts the job (`job-state` 8,
//!   `aborted-by-system`).
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
//!   once. Either way [`Peers::cupsd_on`] panics with that log line.
//! * A raw cupsd queue (no `-m`) runs no filter and reports 0 impressions, so
//!   [`Cupsd::add_queue`] gives non-IPP devices the Generic PDF Printer PPD
//!   from cups-filters, which counts pages like a real queue.
//! * cupsd answers Get-Jobs with `requested-attributes all` WITHOUT the page
//!   counts (and without `job-name`) of a completed job whose attributes it has
//!   unloaded (about a second after completion); naming the attributes
//!   explicitly (or `job-template,job-description`) makes it load them. The
//!   helpers here always name them.
//! * ipptool prints name/text values escaped (`a"b\c` as `a\"b\\c`, in CSV
//!   quoted once more); [`IppReply`] and [`get_jobs`] undo both. In a test
//!   file `$$` is a literal `$`.
//! * Timings seen here (debug build, 2 cores): dbus-daemon ready in ~5 ms;
//!   ippeveprinter answering 15-25 ms after start, restart 20-30 ms; a
//!   scripted job completes 10-40 ms after Print-Job (a second Print-Job meets
//!   `server-error-busy` for ~10-40 ms); cupsd ready in 10-15 ms; lpadmin
//!   9-25 ms; a job through cupsd to an Eve completes in 0.07-1.1 s (the ipp
//!   backend polls the remote job about once a second); a released job on a
//!   `file:///dev/null` queue completes in ~50 ms.
//! * ipptool's `$user` is built in: `-d user=alice` does not override it, so
//!   the test files written here carry literal values instead of variables.

use std::collections::{HashMap, HashSet};
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::net::{Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// What to install when a binary is missing.
pub const APT_INSTALL: &str =
    "apt-get install -y --no-install-recommends cups cups-ipp-utils cups-client dbus poppler-utils";

/// Formats every Eve accepts (ippeveprinter's default accepts no PDF).
pub const EVE_FORMATS: &str = "application/pdf,text/plain,application/octet-stream";

/// The PPD given to non-IPP queues so that CUPS counts their pages.
pub const GENERIC_PDF_PPD: &str = "lsb/usr/cupsfilters/Generic-PDF_Printer-PDF.ppd";

/// How long any one external command (ipptool, lp, lpadmin) may run.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a daemon may take to answer after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long [`Eve::submit`] keeps retrying a busy printer.
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------
// Ports, binaries, processes
// ---------------------------------------------------------------------------

/// A loopback port nothing listens on, found by binding `127.0.0.1:0`.
///
/// Never hands out the same port twice in one test process, and checks that
/// `[::1]:PORT` is free too (ippeveprinter `-n localhost` binds both).
///
/// It returns only once the port refuses connections on both: std's
/// listeners are close-on-exec, but a child that another test thread forks
/// between our bind and its exec holds a copy of the probe listeners until
/// it execs. Seen here: a `Fault::Refuse` port accepting a connection when
/// three tests started at once. A daemon given such a port could fail to
/// bind it.
pub fn free_port() -> u16 {
    static GIVEN: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    let given = GIVEN.get_or_init(|| Mutex::new(HashSet::new()));
    'search: loop {
        let v4 = SocketAddr::from(([127, 0, 0, 1], 0));
        let listener = TcpListener::bind(v4).expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local_addr").port();
        let v4 = SocketAddr::from(([127, 0, 0, 1], port));
        let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, port));
        match TcpListener::bind(v6) {
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => continue,
            _ => {}
        }
        drop(listener);
        if !given.lock().unwrap().insert(port) {
            continue;
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        while accepts(v4) || accepts(v6) {
            if Instant::now() > deadline {
                continue 'search; // someone else took it: stays in GIVEN
            }
            thread::sleep(Duration::from_millis(1));
        }
        return port;
    }
}

/// Whether something accepts TCP connections at `addr` (refused, or no
/// IPv6 at all, is false).
fn accepts(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

fn package_of(bin: &str) -> &'static str {
    match bin {
        "cupsd" => "cups (cups-daemon)",
        "ippeveprinter" | "ipptool" => "cups-ipp-utils",
        "lp" | "lpadmin" => "cups-client",
        "dbus-daemon" => "dbus",
        "pdfinfo" => "poppler-utils",
        "kill" => "procps",
        _ => "unknown",
    }
}

/// The absolute path of `bin` (searched in `PATH`, then the usual sbin/bin
/// directories, since `/usr/sbin` is often not on a test's `PATH`).
///
/// Panics naming the binary and the Debian package when it is missing.
pub fn require(bin: &str) -> PathBuf {
    static FOUND: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let found = FOUND.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(path) = found.lock().unwrap().get(bin) {
        return path.clone();
    }
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    for dir in [
        "/usr/local/sbin",
        "/usr/local/bin",
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
    ] {
        dirs.push(PathBuf::from(dir));
    }
    for dir in dirs {
        let path = dir.join(bin);
        let executable = fs::metadata(&path)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false);
        if executable {
            found.lock().unwrap().insert(bin.to_string(), path.clone());
            return path;
        }
    }
    panic!(
        "tests/peers: the binary `{bin}` is missing (looked in PATH, /usr/sbin, /usr/bin, /sbin, /bin). \
         It comes from the Debian package `{}`. Install the test peers with: {APT_INSTALL}",
        package_of(bin)
    );
}

fn unique() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The last `max` bytes of a log file, for panic messages.
fn tail(path: &Path, max: usize) -> String {
    let text = fs::read(path).unwrap_or_default();
    let start = text.len().saturating_sub(max);
    format!(
        "--- last {} bytes of {} ---\n{}",
        text.len() - start,
        path.display(),
        String::from_utf8_lossy(&text[start..])
    )
}

/// A child process in its own process group, killed and waited for on drop.
struct Proc {
    child: Child,
    what: String,
    log: PathBuf,
    reaped: bool,
}

impl Proc {
    /// Starts `cmd` with stdin closed and stdout+stderr appended to `log`.
    fn spawn(mut cmd: Command, what: &str, log: &Path) -> Proc {
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap_or_else(|e| panic!("tests/peers: open {}: {e}", log.display()));
        let err = out.try_clone().expect("clone log handle");
        cmd.stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("tests/peers: cannot start {what} ({cmd:?}): {e}"));
        Proc {
            child,
            what: what.to_string(),
            log: log.to_path_buf(),
            reaped: false,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status if the process has exited (it is then reaped).
    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        let status = self.child.try_wait().ok().flatten();
        self.reaped |= status.is_some();
        status
    }

    /// Panics (with the log's tail) if the process has already exited.
    fn check_alive(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            self.reaped = true;
            panic!(
                "tests/peers: {} exited early ({status})\n{}",
                self.what,
                tail(&self.log, 4000)
            );
        }
    }

    fn signal_group(&self, signal: &str) {
        // The process group id is the leader's pid (process_group(0)). Linux
        // does not hand out a pid still used as a live group's id, and reusing
        // one within a test would take a wrap-around of the pid space.
        // No `require` here: this runs in Drop, where a panic would abort.
        let _ = Command::new("kill")
            .args([signal, "--", &format!("-{}", self.child.id())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// SIGTERM to the group, up to 2 s grace, then SIGKILL; always waits.
    fn stop(&mut self) {
        if self.reaped {
            return;
        }
        if let Ok(None) = self.child.try_wait() {
            self.signal_group("-TERM");
            let deadline = Instant::now() + Duration::from_secs(2);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    break;
                }
                thread::sleep(Duration::from_millis(5));
            }
        }
        // Kill the group even when the leader is gone: stragglers (a job
        // script, a CUPS filter) must not outlive the test.
        self.signal_group("-KILL");
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.reaped = true;
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs a command to completion (killing it after `timeout`), capturing output.
pub fn run(cmd: &mut Command, timeout: Duration) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("tests/peers: cannot run {cmd:?}: {e}"));
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(2)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("tests/peers: {cmd:?} did not finish within {timeout:?}");
            }
        }
    };
    Output {
        status,
        stdout: out_reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
    }
}

fn text_of(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

// ---------------------------------------------------------------------------
// ipptool
// ---------------------------------------------------------------------------

/// `job-state` keyword to its enum value (RFC 8011).
pub fn job_state_value(keyword: &str) -> Option<i32> {
    Some(match keyword {
        "pending" => 3,
        "pending-held" => 4,
        "processing" => 5,
        "processing-stopped" => 6,
        "canceled" => 7,
        "aborted" => 8,
        "completed" => 9,
        other => return other.parse().ok(),
    })
}

/// Quotes a value for an ipptool test file.
fn quote(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '$' => out.push_str("$$"),
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The outcome of one ipptool request.
#[derive(Debug, Clone)]
pub struct IppReply {
    /// e.g. `successful-ok`, `server-error-busy`; empty if no response came.
    pub status: String,
    /// The response attributes as ipptool prints them (`name (type) = value`);
    /// the first occurrence of a name wins.
    pub attrs: HashMap<String, String>,
    /// Everything ipptool printed.
    pub output: String,
}

impl IppReply {
    pub fn ok(&self) -> bool {
        self.status.starts_with("successful-ok")
    }

    pub fn int(&self, name: &str) -> Option<i64> {
        self.attrs.get(name).and_then(|v| v.parse().ok())
    }
}

/// Runs ipptool (with `-T 10 -tv`) on `test` (the body of one `{ ... }` test,
/// without `STATUS` lines) written into `dir`, and parses the response.
pub fn ipptool(dir: &Path, uri: &str, test: &str) -> IppReply {
    let file = dir.join(format!("ipptool-{}.test", unique()));
    fs::write(&file, format!("{{\n{test}\n}}\n")).expect("write ipptool test");
    let out = run(
        Command::new(require("ipptool"))
            .args(["-T", "10", "-tv", uri])
            .arg(&file),
        COMMAND_TIMEOUT,
    );
    let _ = fs::remove_file(&file);
    let output = text_of(&out);
    let mut status = String::new();
    let mut attrs = HashMap::new();
    let mut in_response = false;
    for line in output.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("status-code = ") {
            status = rest.split(' ').next().unwrap_or("").to_string();
            in_response = true;
            continue;
        }
        if !in_response {
            continue;
        }
        let Some((name, rest)) = line.split_once(" (") else {
            continue;
        };
        let Some((_, value)) = rest.split_once(") =") else {
            continue;
        };
        if name.contains(' ') || name.is_empty() {
            continue;
        }
        attrs
            .entry(name.to_string())
            .or_insert_with(|| unescape(value.trim()));
    }
    IppReply {
        status,
        attrs,
        output,
    }
}

fn operation_header(user: &str) -> String {
    format!(
        "ATTR charset attributes-charset utf-8\n\
         ATTR language attributes-natural-language en\n\
         ATTR uri printer-uri $uri\n\
         ATTR name requesting-user-name {}\n",
        quote(user)
    )
}

/// Get-Job-Attributes (all attributes) for `job_id` on `printer_uri`.
pub fn get_job_attributes(dir: &Path, printer_uri: &str, job_id: u32) -> IppReply {
    let test = format!(
        "NAME \"Get-Job-Attributes\"\nOPERATION Get-Job-Attributes\n\
         GROUP operation-attributes-tag\n{}ATTR integer job-id {job_id}\n",
        operation_header("tallyd-tests")
    );
    ipptool(dir, printer_uri, &test)
}

/// Release-Job for `job_id` on `printer_uri`: `Err(status keyword)` unless OK.
pub fn release_job(dir: &Path, printer_uri: &str, job_id: u32) -> Result<(), String> {
    let test = format!(
        "NAME \"Release-Job\"\nOPERATION Release-Job\n\
         GROUP operation-attributes-tag\n{}ATTR integer job-id {job_id}\n",
        operation_header("tallyd-tests")
    );
    let reply = ipptool(dir, printer_uri, &test);
    if reply.ok() {
        Ok(())
    } else if reply.status.is_empty() {
        Err(format!("no IPP response: {}", reply.output))
    } else {
        Err(reply.status)
    }
}

/// The attributes [`get_jobs`] asks for by default.
pub const JOB_LIST_ATTRS: &[&str] = &[
    "job-id",
    "job-state",
    "job-state-reasons",
    "job-name",
    "job-originating-user-name",
    "job-impressions",
    "job-impressions-completed",
    "job-media-sheets-completed",
    "copies",
    "sides",
    "print-color-mode",
    "date-time-at-completed",
];

/// Get-Jobs (`which`: `completed`, `not-completed`, `all`) asking for `attrs`
/// by name (see the module docs on cupsd and `all`), one map per job, newest
/// first; a missing attribute is absent from its map.
pub fn get_jobs(
    dir: &Path,
    printer_uri: &str,
    which: &str,
    attrs: &[&str],
) -> Vec<HashMap<String, String>> {
    let mut test = format!(
        "NAME \"Get-Jobs\"\nOPERATION Get-Jobs\nGROUP operation-attributes-tag\n{}\
         ATTR keyword which-jobs {which}\nATTR keyword requested-attributes {}\n\
         STATUS successful-ok\n",
        operation_header("tallyd-tests"),
        attrs.join(",")
    );
    for attr in attrs {
        test.push_str(&format!("DISPLAY {attr}\n"));
    }
    let file = dir.join(format!("ipptool-{}.test", unique()));
    fs::write(&file, format!("{{\n{test}}}\n")).expect("write ipptool test");
    let out = run(
        Command::new(require("ipptool"))
            .args(["-T", "10", "-c", printer_uri])
            .arg(&file),
        COMMAND_TIMEOUT,
    );
    let _ = fs::remove_file(&file);
    assert!(
        out.status.success(),
        "tests/peers: Get-Jobs on {printer_uri} failed:\n{}",
        text_of(&out)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines = text.lines();
    let header: Vec<String> = match lines.next() {
        Some(h) => parse_csv_line(h),
        None => return Vec::new(),
    };
    lines
        .filter(|l| !l.is_empty())
        .map(|line| {
            header
                .iter()
                .cloned()
                .zip(parse_csv_line(line))
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| (k, unescape(&v)))
                .collect()
        })
        .collect()
}

/// Undoes ippAttributeString's escaping (ipptool prints a name or text
/// value `a"b\c` as `a\"b\\c`). Values of a 1setOf stay joined with `,`.
fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            _ => out.push(c),
        }
    }
    out
}

/// ipptool's CSV: fields with `,` `"` or `\` are quoted, with `\` escapes.
fn parse_csv_line(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match c {
            '"' => quoted = !quoted,
            '\\' if quoted => {
                if let Some(next) = chars.next() {
                    field.push(next);
                }
            }
            ',' if !quoted => fields.push(std::mem::take(&mut field)),
            _ => field.push(c),
        }
    }
    fields.push(field);
    fields
}

/// The ipptool `ATTR` line for a request attribute given as (name, value).
///
/// The group and syntax are inferred: `job-name`, `document-name` and
/// `requesting-user-name` are names; `document-format` a mimeMediaType;
/// `orientation-requested`, `print-quality`, `finishings` enums; digits
/// integers; `true`/`false` booleans; anything else a keyword. Operation
/// attributes (`job-name`, `document-*`, `ipp-attribute-fidelity`,
/// `job-impressions`, `job-k-octets`, `job-media-sheets`, `compression`) go in
/// the operation group, the rest in the job group. Force a syntax with
/// `"SYNTAX:name"`, e.g. `("name:job-sheets", "none")`.
fn attr_line(name: &str, value: &str) -> (bool, String) {
    let (syntax, name) = match name.split_once(':') {
        Some((syntax, name)) => (Some(syntax), name),
        None => (None, name),
    };
    let operation = matches!(
        name,
        "job-name"
            | "document-name"
            | "document-format"
            | "ipp-attribute-fidelity"
            | "job-impressions"
            | "job-k-octets"
            | "job-media-sheets"
            | "compression"
    );
    let syntax = syntax.unwrap_or(match name {
        "job-name" | "document-name" | "requesting-user-name" => "name",
        "document-format" => "mimeMediaType",
        "orientation-requested" | "print-quality" | "finishings" => "enum",
        _ if !value.is_empty() && value.chars().all(|c| c.is_ascii_digit()) => "integer",
        _ if value == "true" || value == "false" => "boolean",
        _ => "keyword",
    });
    (
        operation,
        format!("ATTR {syntax} {name} {}\n", quote(value)),
    )
}

// ---------------------------------------------------------------------------
// Peers: tempdir + private dbus-daemon
// ---------------------------------------------------------------------------

struct Shared {
    // Field order is drop order: the bus goes before the directory.
    dbus: Proc,
    dbus_address: String,
    dir: tempfile::TempDir,
}

/// A temporary directory (mode 0755, so CUPS filters running as `lp` can read
/// the spool) and a private `dbus-daemon` that ippeveprinter and cupsd use as
/// their system bus. [`Eve`]s and [`Cupsd`]s keep both alive while they run,
/// whatever the drop order. Set `TALLYD_KEEP_PEERS=1` to keep the directory
/// (logs, spools, configs) after the test; its path is printed.
pub struct Peers {
    shared: Arc<Shared>,
}

impl Default for Peers {
    fn default() -> Self {
        Self::new()
    }
}

impl Peers {
    /// Makes the tempdir and starts `dbus-daemon --session` on
    /// `unix:path=DIR/dbus.sock`, returning once the socket accepts.
    pub fn new() -> Peers {
        let dbus_daemon = require("dbus-daemon");
        let keep = std::env::var_os("TALLYD_KEEP_PEERS").is_some();
        let dir = tempfile::Builder::new()
            .prefix("tallyd-peers-")
            .disable_cleanup(keep)
            .tempdir()
            .expect("create the peers tempdir");
        if keep {
            eprintln!(
                "tests/peers: keeping {} (TALLYD_KEEP_PEERS)",
                dir.path().display()
            );
        }
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod tempdir");
        let socket = dir.path().join("dbus.sock");
        let dbus_address = format!("unix:path={}", socket.display());
        let mut cmd = Command::new(dbus_daemon);
        cmd.args(["--session", "--nofork", "--nopidfile"])
            .arg(format!("--address={dbus_address}"));
        let mut dbus = Proc::spawn(cmd, "dbus-daemon", &dir.path().join("dbus.log"));
        let deadline = Instant::now() + START_TIMEOUT;
        while UnixStream::connect(&socket).is_err() {
            dbus.check_alive();
            assert!(
                Instant::now() < deadline,
                "tests/peers: dbus-daemon did not open {} within {START_TIMEOUT:?}\n{}",
                socket.display(),
                tail(&dbus.log, 4000)
            );
            thread::sleep(Duration::from_millis(5));
        }
        Peers {
            shared: Arc::new(Shared {
                dbus,
                dbus_address,
                dir,
            }),
        }
    }

    pub fn dir(&self) -> &Path {
        self.shared.dir.path()
    }

    /// `unix:path=DIR/dbus.sock`.
    pub fn dbus_address(&self) -> &str {
        &self.shared.dbus_address
    }

    /// Starts an ippeveprinter named `name` on a free port; see [`Eve`].
    pub fn eve(&self, name: &str) -> Eve {
        Eve::start(self.shared.clone(), name, free_port())
    }

    /// Starts a private cupsd on a free port; see [`Cupsd`].
    pub fn cupsd(&self) -> Cupsd {
        self.cupsd_on(free_port())
    }

    /// Starts a private cupsd on `port`; panics if it cannot listen there.
    pub fn cupsd_on(&self, port: u16) -> Cupsd {
        Cupsd::start(self.shared.clone(), port, "debug")
    }

    /// A private cupsd logging only warnings, as a production cupsd does
    /// (`LogLevel debug` costs cupsd more CPU per request than the request).
    pub fn cupsd_quiet(&self) -> Cupsd {
        Cupsd::start(self.shared.clone(), free_port(), "warn")
    }
}

// ---------------------------------------------------------------------------
// Eve: ippeveprinter with a scripted impression count
// ---------------------------------------------------------------------------

/// The `-c` command of every Eve. Documented in [`Eve`].
const EVE_SCRIPT: &str = r#"#!/bin/sh
# ippeveprinter -c command written by tallyd's tests/peers/mod.rs.
# $1 is the spooled document; the job's attributes arrive as IPP_* variables.
# Whitespace-separated words in the job name (IPP_JOB_NAME) script the job:
#   impressions=N  report job-impressions-completed=N
#   delay=S        stay "processing" S seconds first (sleep S)
#   fail           exit 1: the job ends aborted
set -f
if [ -n "$TALLYD_EVE_DIR" ]; then
  { echo "--- job $IPP_JOB_ID"; echo "FILE=$1"; env | grep '^IPP_' | sort; } >> "$TALLYD_EVE_DIR/jobs.log"
fi
impressions= delay= fail=
for word in $IPP_JOB_NAME; do
  case "$word" in
    impressions=*) impressions=${word#impressions=} ;;
    delay=*) delay=${word#delay=} ;;
    fail) fail=1 ;;
  esac
done
[ -n "$delay" ] && sleep "$delay"
[ -n "$impressions" ] && echo "ATTR: job-impressions-completed=$impressions" >&2
if [ -n "$fail" ]; then echo "ERROR: scripted failure" >&2; exit 1; fi
exit 0
"#;

/// An ippeveprinter (`-r off -n localhost -p PORT -d SPOOL -f` [`EVE_FORMATS`]
/// `-2 -s 60,60 -c SCRIPT NAME`), its system bus the private one.
///
/// The job script reads words from the job name: `impressions=N` makes the
/// job report `job-impressions-completed=N`, `delay=S` keeps it processing S
/// seconds, `fail` aborts it. Without `impressions=` the count stays 0. Each
/// job's `IPP_*` environment is appended to `DIR/eve-NAME-PORT/jobs.log`
/// (see [`Eve::job_env`]).
///
/// ippeveprinter prints one job at a time (`server-error-busy` meanwhile;
/// [`Eve::submit`] retries), has no Hold-Job/Release-Job, purges completed
/// jobs about 60 s after the newest completed, and numbers jobs from 1 again
/// after [`Eve::restart`].
pub struct Eve {
    pub port: u16,
    pub name: String,
    dir: PathBuf,
    doc: PathBuf,
    shared: Arc<Shared>,
    proc: Option<Proc>,
}

impl Eve {
    fn start(shared: Arc<Shared>, name: &str, port: u16) -> Eve {
        let safe: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let dir = shared.dir.path().join(format!("eve-{safe}-{port}"));
        fs::create_dir_all(dir.join("spool")).expect("create the Eve's spool");
        let script = dir.join("job.sh");
        fs::write(&script, EVE_SCRIPT).expect("write the Eve's job script");
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).expect("chmod job.sh");
        let doc = dir.join("document.txt");
        fs::write(&doc, "tallyd test document\n").expect("write the Eve's document");
        let mut eve = Eve {
            port,
            name: name.to_string(),
            dir,
            doc,
            shared,
            proc: None,
        };
        eve.launch();
        eve
    }

    fn launch(&mut self) {
        let started = Instant::now();
        let mut cmd = Command::new(require("ippeveprinter"));
        cmd.args([
            "-r",
            "off",
            "-n",
            "localhost",
            "-p",
            &self.port.to_string(),
            "-d",
        ])
        .arg(self.dir.join("spool"))
        .args(["-f", EVE_FORMATS, "-2", "-s", "60,60", "-c"])
        .arg(self.dir.join("job.sh"))
        .arg(&self.name)
        .env("DBUS_SYSTEM_BUS_ADDRESS", &self.shared.dbus_address)
        .env("TALLYD_EVE_DIR", &self.dir);
        let what = format!("ippeveprinter {:?} on port {}", self.name, self.port);
        let mut proc = Proc::spawn(cmd, &what, &self.dir.join("eve.log"));
        let deadline = started + START_TIMEOUT;
        loop {
            proc.check_alive();
            let connected = TcpStream::connect_timeout(
                &SocketAddr::from(([127, 0, 0, 1], self.port)),
                Duration::from_millis(500),
            )
            .is_ok();
            if connected && self.printer_state().is_some() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "tests/peers: {what} did not answer within {START_TIMEOUT:?}\n{}",
                tail(&proc.log, 4000)
            );
            thread::sleep(Duration::from_millis(10));
        }
        self.proc = Some(proc);
    }

    /// `printer-state` (3 idle, 4 processing, 5 stopped) via
    /// Get-Printer-Attributes, or None if it does not answer.
    pub fn printer_state(&self) -> Option<i32> {
        let test = format!(
            "NAME \"Get-Printer-Attributes\"\nOPERATION Get-Printer-Attributes\n\
             GROUP operation-attributes-tag\n{}\
             ATTR keyword requested-attributes printer-state,printer-name\n",
            operation_header("tallyd-tests")
        );
        let reply = ipptool(&self.dir, &self.uri(), &test);
        if !reply.ok() {
            return None;
        }
        reply
            .attrs
            .get("printer-state")
            .and_then(|s| match s.as_str() {
                "idle" => Some(3),
                "processing" => Some(4),
                "stopped" => Some(5),
                other => other.parse().ok(),
            })
    }

    /// `ipp://localhost:PORT/ipp/print` (what ippeveprinter advertises).
    pub fn uri(&self) -> String {
        format!("ipp://localhost:{}/ipp/print", self.port)
    }

    /// `ipp://127.0.0.1:PORT/ipp/print` (same printer, no name lookup).
    pub fn uri_v4(&self) -> String {
        format!("ipp://127.0.0.1:{}/ipp/print", self.port)
    }

    /// The Eve's own directory (spool, job script, `eve.log`, `jobs.log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn is_running(&self) -> bool {
        self.proc.is_some()
    }

    /// Kills ippeveprinter (if running) and starts it again on the same port
    /// with the same name; returns once it answers. Job ids restart at 1.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// Kills ippeveprinter (and any job script) and waits for it. The port
    /// then refuses connections. Idempotent.
    pub fn stop(&mut self) {
        if let Some(mut proc) = self.proc.take() {
            proc.stop();
        }
    }

    /// Print-Job of a small text document as `user`, named
    /// `impressions=N`; retries while the printer is busy. Returns the job id.
    pub fn submit(&self, user: &str, impressions: u32) -> u32 {
        self.submit_with(user, impressions, &[])
    }

    /// Like [`Eve::submit`] with extra attributes, e.g.
    /// `("sides", "two-sided-long-edge")`, `("print-color-mode", "color")`,
    /// `("copies", "2")` (syntax rules: see `attr_line`). A `job-name` in
    /// `attrs` gets ` impressions=N` appended, so it can add `delay=S` or
    /// `fail`.
    pub fn submit_with(&self, user: &str, impressions: u32, attrs: &[(&str, &str)]) -> u32 {
        let token = format!("impressions={impressions}");
        let job_name = match attrs.iter().find(|(n, _)| *n == "job-name") {
            Some((_, name)) => format!("{name} {token}"),
            None => token,
        };
        let mut all: Vec<(&str, &str)> = vec![("job-name", job_name.as_str())];
        all.extend(attrs.iter().filter(|(n, _)| *n != "job-name"));
        self.submit_file(user, &self.doc, "text/plain", &all)
    }

    /// Print-Job of `file` as `format` with exactly `attrs` (no job name is
    /// added: pass `("job-name", "impressions=N")` to script a count);
    /// retries while the printer is busy. Panics on any other error.
    pub fn submit_file(
        &self,
        user: &str,
        file: &Path,
        format: &str,
        attrs: &[(&str, &str)],
    ) -> u32 {
        let mut operation = String::new();
        let mut job = String::new();
        for (name, value) in attrs {
            let (is_operation, line) = attr_line(name, value);
            if is_operation {
                operation.push_str(&line);
            } else {
                job.push_str(&line);
            }
        }
        if !attrs.iter().any(|(n, _)| *n == "document-format") {
            operation.push_str(&format!(
                "ATTR mimeMediaType document-format {}\n",
                quote(format)
            ));
        }
        let test = format!(
            "NAME \"Print-Job\"\nOPERATION Print-Job\nGROUP operation-attributes-tag\n{}{operation}\
             GROUP job-attributes-tag\n{job}FILE {}\n",
            operation_header(user),
            quote(&file.display().to_string())
        );
        let deadline = Instant::now() + BUSY_TIMEOUT;
        loop {
            let reply = ipptool(&self.dir, &self.uri(), &test);
            if reply.ok() {
                let id = reply.int("job-id").unwrap_or_else(|| {
                    panic!(
                        "tests/peers: Print-Job answered without job-id:\n{}",
                        reply.output
                    )
                });
                return id as u32;
            }
            assert!(
                reply.status == "server-error-busy" && Instant::now() < deadline,
                "tests/peers: Print-Job to {} failed ({}):\n{}",
                self.uri(),
                reply.status,
                reply.output
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// All attributes of a job (Get-Job-Attributes).
    pub fn job_attrs(&self, job_id: u32) -> IppReply {
        get_job_attributes(&self.dir, &self.uri(), job_id)
    }

    /// The job's `job-state` (3..9), or None if the Eve does not know it.
    pub fn job_state(&self, job_id: u32) -> Option<i32> {
        let reply = self.job_attrs(job_id);
        reply
            .attrs
            .get("job-state")
            .and_then(|s| job_state_value(s))
    }

    /// Polls until the job reaches `state`; panics on timeout.
    pub fn wait_state(&self, job_id: u32, state: i32, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let reply = self.job_attrs(job_id);
            let now = reply
                .attrs
                .get("job-state")
                .and_then(|s| job_state_value(s));
            if now == Some(state) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "tests/peers: job {job_id} on Eve {:?} is {now:?}, not {state}, after {timeout:?}:\n{}",
                self.name,
                reply.output
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Polls Get-Job-Attributes until `job-state` is 9 (completed); panics on
    /// timeout, or at once if the job ends canceled (7) or aborted (8).
    pub fn wait_completed(&self, job_id: u32, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let reply = self.job_attrs(job_id);
            let now = reply
                .attrs
                .get("job-state")
                .and_then(|s| job_state_value(s));
            match now {
                Some(9) => return,
                Some(7) | Some(8) => panic!(
                    "tests/peers: job {job_id} on Eve {:?} ended in state {now:?}, not completed:\n{}",
                    self.name, reply.output
                ),
                _ => {}
            }
            assert!(
                Instant::now() < deadline,
                "tests/peers: job {job_id} on Eve {:?} not completed after {timeout:?} (state {now:?}):\n{}",
                self.name,
                reply.output
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Get-Jobs (`which`: `completed`, `not-completed`, `all`) with
    /// [`JOB_LIST_ATTRS`], newest first.
    pub fn jobs(&self, which: &str) -> Vec<HashMap<String, String>> {
        get_jobs(&self.dir, &self.uri(), which, JOB_LIST_ATTRS)
    }

    /// Every job's `IPP_*` environment as the job script saw it.
    pub fn job_log(&self) -> String {
        fs::read_to_string(self.dir.join("jobs.log")).unwrap_or_default()
    }

    /// The `IPP_*` environment (plus `FILE`, the script's `$1`) of the latest
    /// job with this id (ids repeat after a restart).
    pub fn job_env(&self, job_id: u32) -> Option<HashMap<String, String>> {
        let log = self.job_log();
        let wanted = job_id.to_string();
        let mut latest = None;
        let mut current: Option<HashMap<String, String>> = None;
        for line in log.lines() {
            if let Some(id) = line.strip_prefix("--- job ") {
                latest = current.take().or(latest);
                current = (id == wanted).then(HashMap::new);
            } else if let (Some(env), Some((k, v))) = (current.as_mut(), line.split_once('=')) {
                env.insert(k.to_string(), v.to_string());
            }
        }
        current.or(latest)
    }

    /// ippeveprinter's stdout+stderr.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("eve.log")).unwrap_or_default()
    }
}

impl Drop for Eve {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------------------
// Cupsd
// ---------------------------------------------------------------------------

/// A private cupsd (`cupsd -f -c DIR/etc/cupsd.conf -s DIR/etc/cups-files.conf`)
/// listening on `127.0.0.1:PORT` only, with its own spool, state and logs,
/// open access (no auth, every user sees every job's attributes) and
/// `PreserveJobHistory Yes`.
pub struct Cupsd {
    pub port: u16,
    dir: PathBuf,
    shared: Arc<Shared>,
    proc: Proc,
}

impl Cupsd {
    fn start(shared: Arc<Shared>, port: u16, log_level: &str) -> Cupsd {
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
             Printcap\nFileDevice Yes\n"
        );
        let conf = format!(
            "LogLevel {log_level}\nMaxLogSize 0\nListen 127.0.0.1:{port}\nBrowsing No\n\
             BrowseLocalProtocols none\nDefaultAuthType None\nWebInterface No\n\
             PreserveJobHistory Yes\n\
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
                panic!("tests/peers: {what} cannot listen: {line}");
            }
            if let Some(status) = exited {
                panic!(
                    "tests/peers: {what} exited early ({status})\n{}\n{}",
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
                "tests/peers: {what} did not answer within {START_TIMEOUT:?}\n{}\n{}",
                tail(&error_log, 4000),
                tail(&proc.log, 2000)
            );
            thread::sleep(Duration::from_millis(5));
        }
        Cupsd {
            port,
            dir,
            shared,
            proc,
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

    /// cupsd's directory (etc, spool, log, ...).
    pub fn dir(&self) -> &Path {
        &self.dir
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
            "tests/peers: lpadmin for queue {name} ({device_uri}) failed:\n{}\n{}",
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
            _ => panic!("tests/peers: lp to {queue} failed:\n{text}"),
        }
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
                    "tests/peers: no job-state for {queue}-{job_id} ({}):\n{}",
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
                "tests/peers: job {queue}-{job_id} is {now:?}, not {state}, after {timeout:?}:\n{}\n{}",
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

// ---------------------------------------------------------------------------
// PDFs
// ---------------------------------------------------------------------------

/// Writes `dir/name`: a minimal, valid PDF 1.4 with `pages` US Letter pages
/// (Helvetica text "Page i of N" on each), with a correct xref table, so
/// pdfinfo and CUPS's pdftopdf count exactly `pages`. Panics if `pages` is 0.
pub fn write_pdf(dir: &Path, name: &str, pages: u32) -> PathBuf {
    assert!(pages > 0, "write_pdf: a PDF needs at least one page");
    let mut objects: Vec<String> = vec![
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        format!(
            "<< /Type /Pages /Kids [{}] /Count {pages} >>",
            (0..pages)
                .map(|i| format!("{} 0 R", 4 + 2 * i))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_string(),
    ];
    for i in 0..pages {
        objects.push(format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] \
             /Resources << /Font << /F1 3 0 R >> >> /Contents {} 0 R >>",
            5 + 2 * i
        ));
        let content = format!("BT /F1 36 Tf 72 700 Td (Page {} of {pages}) Tj ET", i + 1);
        objects.push(format!(
            "<< /Length {} >>\nstream\n{content}\nendstream",
            content.len()
        ));
    }
    let mut pdf = String::from("%PDF-1.4\n");
    let mut offsets = Vec::new();
    for (i, object) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.push_str(&format!("{} 0 obj\n{object}\nendobj\n", i + 1));
    }
    let xref = pdf.len();
    pdf.push_str(&format!(
        "xref\n0 {}\n0000000000 65535 f \n",
        objects.len() + 1
    ));
    for offset in offsets {
        pdf.push_str(&format!("{offset:010} 00000 n \n"));
    }
    pdf.push_str(&format!(
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        objects.len() + 1
    ));
    let path = dir.join(name);
    fs::write(&path, pdf).expect("write the PDF");
    path
}

/// Pages of a PDF according to `pdfinfo` (poppler-utils).
pub fn pdf_pages(path: &Path) -> u32 {
    let out = run(Command::new(require("pdfinfo")).arg(path), COMMAND_TIMEOUT);
    let text = text_of(&out);
    text.lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("pdfinfo {} gave no page count:\n{text}", path.display()))
}

// ---------------------------------------------------------------------------
// Fault servers
// ---------------------------------------------------------------------------

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
fn read_request(stream: &mut TcpStream, stop: &AtomicBool, continue_ok: bool) -> Option<Vec<u8>> {
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
