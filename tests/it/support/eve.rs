//! Eve: an ippeveprinter, a real IPP Everywhere printer, whose job command
//! reports the impression count the test scripts into the job name.
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

use std::collections::HashMap;
use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::ipptool::{
    attr_line, get_job_attributes, get_jobs, ipptool, job_state_value, operation_header, quote,
    IppReply, JOB_LIST_ATTRS,
};
use super::peers::Shared;
use super::process::{require, tail, Proc, START_TIMEOUT};

/// Formats every Eve accepts (ippeveprinter's default accepts no PDF).
pub const EVE_FORMATS: &str = "application/pdf,text/plain,application/octet-stream";

/// How long [`Eve::submit`] keeps retrying a busy printer.
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// The `-c` command of every Eve. Documented in [`Eve`].
const EVE_SCRIPT: &str = r#"#!/bin/sh
# ippeveprinter -c command written by tallyd's tests/it/support/eve.rs.
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
    /// Whether it prints colour (`-s 60,60`); without `-s` ippeveprinter is
    /// mono-only (`color-supported false`).
    colour: bool,
}

impl Eve {
    pub(super) fn start(shared: Arc<Shared>, name: &str, port: u16, colour: bool) -> Eve {
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
            colour,
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
        .args(["-f", EVE_FORMATS, "-2"]);
        if self.colour {
            cmd.args(["-s", "60,60"]);
        }
        cmd.arg("-c")
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
                "tests/it/support: {what} did not answer within {START_TIMEOUT:?}\n{}",
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
                        "tests/it/support: Print-Job answered without job-id:\n{}",
                        reply.output
                    )
                });
                return id as u32;
            }
            assert!(
                reply.status == "server-error-busy" && Instant::now() < deadline,
                "tests/it/support: Print-Job to {} failed ({}):\n{}",
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
                "tests/it/support: job {job_id} on Eve {:?} is {now:?}, not {state}, after {timeout:?}:\n{}",
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
                    "tests/it/support: job {job_id} on Eve {:?} ended in state {now:?}, not completed:\n{}",
                    self.name, reply.output
                ),
                _ => {}
            }
            assert!(
                Instant::now() < deadline,
                "tests/it/support: job {job_id} on Eve {:?} not completed after {timeout:?} (state {now:?}):\n{}",
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
}

impl Drop for Eve {
    fn drop(&mut self) {
        self.stop();
    }
}
