//! Running the real `tallyd run` in tests: a site folder with a config and a
//! grants file, the daemon as a child process with its log in a file, signals,
//! and reads of the ledger it writes.

use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::tallyd::{fails, succeeds, tallyd, SiteDir};

/// The catalog every daemon test's grants file starts with: printing credit,
/// one meeting room `room-a` and its `room-hours` time credit (a macro, so
/// the files built on it stay `&'static str`).
#[macro_export]
macro_rules! catalog {
    () => {
        r#"
timezone = "UTC"
[printing]
name = "Printing credit"

[[resource_type]]
id = "meeting-room"
name = "Meeting room"
[[resource]]
id = "room-a"
type = "meeting-room"
[[time_credit]]
id = "room-hours"
name = "Room hours"
unit = "minutes"
resource_types = ["meeting-room"]
"#
    };
}

/// The catalog of [`catalog!`], for grants files built at run time.
pub const CATALOG: &str = catalog!();

/// Members used by the daemon tests: alice, bob (prints as `bob@corp.example`)
/// and carol (as `CORP\carol`), each with $10.00 of printing credit.
pub const GRANTS: &str = concat!(
    catalog!(),
    r#"
[[member]]
id = "alice"
name = "Alice"
cards = ["14008EC793"]
print_users = ["alice"]
  [[member.grant]]
  id = "start"
  credit = "printing"
  amount = 1000
  from = 2026-01-01
  [[member.grant]]
  id = "rooms"
  credit = "room-hours"
  amount = 600
  from = 2026-01-01

[[member]]
id = "bob"
name = "Bob"
cards = ["0A1B2C3D4E"]
print_users = ["bob@corp.example"]
  [[member.grant]]
  id = "start"
  credit = "printing"
  amount = 1000
  from = 2026-01-01

[[member]]
id = "dave"
name = "Dave"
cards = ["00DA7E0001"]
print_users = ["dave"]
overage_policy = "credits-only"
  [[member.grant]]
  id = "start"
  credit = "printing"
  amount = 5
  from = 2026-01-01

[[member]]
id = "carol"
name = "Carol"
print_users = ["CORP\\carol"]
  [[member.grant]]
  id = "start"
  credit = "printing"
  amount = 1000
  from = 2026-01-01
"#
);

/// One printer in the generated config.
pub struct PrinterSpec {
    pub id: String,
    pub uri: String,
    pub mode: &'static str,
    pub poll: &'static str,
    pub timeout: &'static str,
    /// Its price table (`standard` unless a test adds another).
    pub prices: &'static str,
    /// More `key = value` lines for this printer.
    pub extra: String,
}

impl PrinterSpec {
    pub fn direct(id: &str, uri: &str, poll: &'static str) -> PrinterSpec {
        PrinterSpec {
            id: id.into(),
            uri: uri.into(),
            mode: "direct",
            poll,
            timeout: "2s",
            prices: "standard",
            extra: String::new(),
        }
    }

    pub fn held(id: &str, uri: &str, poll: &'static str, hold_timeout: &str) -> PrinterSpec {
        PrinterSpec {
            mode: "held",
            extra: format!("hold_timeout = \"{hold_timeout}\"\npage_estimate = 5\n"),
            ..PrinterSpec::direct(id, uri, poll)
        }
    }
}

/// A site folder: `tallyd.toml`, `grants.toml`, `ledger.db`, `daemon.log`.
pub struct Site {
    files: SiteDir,
}

impl Site {
    pub fn new(printers: &[PrinterSpec]) -> Site {
        let files = SiteDir::new();
        files.write("grants.toml", GRANTS);
        let site = Site { files };
        site.write_config(printers);
        site
    }

    /// The folder itself.
    pub fn dir(&self) -> &Path {
        self.files.root()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.files.path(name)
    }

    pub fn write_config(&self, printers: &[PrinterSpec]) {
        self.write_config_with(printers, "");
    }

    /// The config with `printers` and then `extra` TOML (e.g. `[[readers]]`).
    pub fn write_config_with(&self, printers: &[PrinterSpec], extra: &str) {
        let mut text = String::from(
            r#"[site]
name = "Test Space"
timezone = "UTC"
ledger = "ledger.db"
overage_policy = "credits-then-invoice"

[grants]
source = "grants.toml"
interval = "1h"
timeout = "5s"

[prices.standard]
default_media = "a4"
[prices.standard.media.a4]
mono = { one_sided = 10, two_sided = 8 }
colour = { one_sided = 40, two_sided = 35 }
[prices.standard.media.letter]
mono = { one_sided = 10, two_sided = 8 }
colour = { one_sided = 40, two_sided = 35 }
"#,
        );
        for p in printers {
            text.push_str(&format!(
                "\n[[printers]]\nid = \"{}\"\nuri = \"{}\"\nmode = \"{}\"\nprices = \"{}\"\npoll_interval = \"{}\"\ntimeout = \"{}\"\n{}",
                p.id, p.uri, p.mode, p.prices, p.poll, p.timeout, p.extra
            ));
        }
        text.push_str(extra);
        self.files.write("tallyd.toml", &text);
    }

    /// Starts `tallyd run`; its stderr is appended to `daemon.log`.
    pub fn start(&self) -> Daemon {
        self.start_as("journald")
    }

    /// Starts `tallyd run --log-format FORMAT`.
    pub fn start_as(&self, format: &str) -> Daemon {
        self.start_with(format, &[])
    }

    /// Starts `tallyd run --log-format FORMAT` with extra environment
    /// variables (test hooks) for that daemon alone.
    pub fn start_with(&self, format: &str, vars: &[(&str, &str)]) -> Daemon {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path("daemon.log"))
            .expect("open log");
        let offset = log.metadata().map(|m| m.len()).unwrap_or(0);
        let child = tallyd()
            .args(["--config"])
            .arg(self.files.config())
            .args(["run", "--log-format", format])
            .env("RUST_LOG", "info")
            .env("TALLYD_TEST_CLOCK_FILE", self.path("clock-offset"))
            .envs(vars.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start tallyd run");
        Daemon {
            child: Some(child),
            log: self.path("daemon.log"),
            offset,
        }
    }

    /// The daemon's whole log so far (every run).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path("daemon.log")).unwrap_or_default()
    }

    /// Runs a `tallyd` command on this site; expects success, returns stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        succeeds(&mut self.files.command(args))
    }

    /// Runs a `tallyd` command on this site at the time its daemon's clock
    /// says ([`Site::set_clocks`]); expects success, returns stdout.
    #[allow(dead_code)]
    pub fn cli_on_its_clock(&self, args: &[&str]) -> String {
        succeeds(
            self.files
                .command(args)
                .env("TALLYD_TEST_CLOCK_FILE", self.path("clock-offset")),
        )
    }

    /// Runs a `tallyd` command on this site; expects failure, returns stderr.
    pub fn cli_fails(&self, args: &[&str]) -> String {
        fails(&mut self.files.command(args))
    }

    /// A member's printing balance in cents, from `tallyd balance --json`.
    pub fn printing_balance(&self, member: &str) -> i64 {
        let out = self.cli(&["--json", "balance", member]);
        let v: serde_json::Value = serde_json::from_str(&out).expect("balance json");
        find_printing(&v).unwrap_or_else(|| panic!("no printing balance in {out}"))
    }

    /// Print usages recorded for `printer`: (key, member, cents, detail).
    pub fn usages(&self, printer: &str) -> Vec<(String, Option<String>, i64, String)> {
        let path = self.path("ledger.db");
        if !path.exists() {
            return Vec::new();
        }
        let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open ledger");
        let mut stmt = match conn.prepare(
            "SELECT key, member_id, amount, detail FROM usages WHERE printer = ?1 ORDER BY id",
        ) {
            Ok(s) => s,
            Err(_) => return Vec::new(),
        };
        stmt.query_map([printer], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .expect("query usages")
        .collect::<Result<_, _>>()
        .expect("rows")
    }

    /// Waits until `printer` has `n` usages (panics with the log after `limit`).
    pub fn wait_usages(&self, printer: &str, n: usize, limit: Duration) -> Duration {
        let start = Instant::now();
        loop {
            let got = self.usages(printer).len();
            if got >= n {
                return start.elapsed();
            }
            if start.elapsed() > limit {
                panic!(
                    "printer {printer}: {got} of {n} jobs charged after {limit:?}\nlog:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn find_printing(v: &serde_json::Value) -> Option<i64> {
    match v {
        serde_json::Value::Object(m) => {
            if let Some(p) = m.get("printing_cents").and_then(|p| p.as_i64()) {
                return Some(p);
            }
            m.values().find_map(find_printing)
        }
        serde_json::Value::Array(a) => a.iter().find_map(find_printing),
        _ => None,
    }
}

impl Site {
    /// A member's time credit balance in minutes.
    pub fn time_balance(&self, member: &str, credit: &str) -> i64 {
        let out = self.cli(&["--json", "balance", member]);
        let v: serde_json::Value = serde_json::from_str(&out).expect("balance json");
        v[0]["time_minutes"][credit]
            .as_i64()
            .unwrap_or_else(|| panic!("no {credit} in {out}"))
    }

    /// Moves the daemon's clocks, boot and wall alike, `secs` ahead of real
    /// time: as if that much time had passed.
    pub fn set_clock_offset(&self, secs: i64) {
        self.set_clocks(secs, 0);
    }

    /// Moves both clocks `passed` seconds ahead, and the wall clock alone
    /// `step` seconds more (negative: back), as a wrong clock would.
    pub fn set_clocks(&self, passed: i64, step: i64) {
        std::fs::write(self.path("clock-offset"), format!("{passed} {step}")).expect("clock file");
    }

    /// Runs a `tallyd` command on this site with "now" pinned (`TALLYD_NOW`);
    /// expects success, returns stdout.
    pub fn cli_at(&self, now: &str, args: &[&str]) -> String {
        succeeds(&mut self.files.at(now, args))
    }
}

/// A running `tallyd run`.
pub struct Daemon {
    child: Option<Child>,
    log: PathBuf,
    /// Where this run's lines start in the log.
    offset: u64,
}

impl Daemon {
    pub fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.id() as i32)
    }

    /// This run's log lines so far.
    pub fn log(&self) -> String {
        let all = std::fs::read(&self.log).unwrap_or_default();
        String::from_utf8_lossy(&all[(self.offset as usize).min(all.len())..]).into_owned()
    }

    /// Waits until this run's log contains `needle`.
    pub fn wait_log(&self, needle: &str, limit: Duration) {
        let start = Instant::now();
        while !self.log().contains(needle) {
            if start.elapsed() > limit {
                panic!("no `{needle}` in the log after {limit:?}:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn wait_ready(&self) {
        self.wait_log("tallyd ready", Duration::from_secs(20));
    }

    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([&format!("-{sig}"), &self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{sig} failed");
    }

    /// SIGKILL, and reap.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits for exit; returns the exit code (panics after `limit`).
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let start = Instant::now();
        let child = self.child.as_mut().expect("running");
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.child = None;
                return status.code();
            }
            if start.elapsed() > limit {
                panic!("tallyd did not exit within {limit:?}:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM and wait; asserts exit status 0.
    pub fn stop(&mut self) {
        self.wait_ready();
        self.signal("TERM");
        let code = self.wait_exit(Duration::from_secs(20));
        assert_eq!(code, Some(0), "graceful stop exits 0:\n{}", self.log());
    }

    /// Peak resident memory (VmHWM) in KiB, from /proc.
    pub fn peak_rss_kib(&self) -> u64 {
        proc_status_kib(self.pid(), "VmHWM:")
    }
}

pub fn proc_status_kib(pid: i32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Every line of `log` holding all of `parts`.
pub fn lines_with<'a>(log: &'a str, parts: &[&str]) -> Vec<&'a str> {
    log.lines()
        .filter(|l| parts.iter().all(|p| l.contains(p)))
        .collect()
}
