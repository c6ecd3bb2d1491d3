//! The real `tallyd` binary in a temporary site folder, one per test, as
//! ripgrep's tests do: [`SiteDir`] is the folder (`tallyd.toml`,
//! `ledger.db`, whatever else a test writes there) and [`tallyd`] the
//! binary with an environment that only the test decides. The CLI tests, the
//! grants tests and the daemon helper ([`super::daemon`]) all start here.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// What a test's caller may have in its environment that would steer tallyd
/// (its config, ledger, logging, systemd notification) or send its HTTP
/// requests to a proxy. A test sets what it needs after these are removed.
const SCRUBBED: &[&str] = &[
    "TALLYD_CONFIG",
    "TALLYD_LEDGER",
    "RUST_LOG",
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// The `tallyd` binary Cargo built for these tests, with none of
/// [`SCRUBBED`] inherited and loopback never proxied.
pub fn tallyd() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tallyd"));
    for var in SCRUBBED {
        cmd.env_remove(var);
    }
    cmd.env("NO_PROXY", "127.0.0.1")
        .env("no_proxy", "127.0.0.1");
    cmd
}

/// Runs `cmd` and expects it to succeed; returns its stdout.
pub fn succeeds(cmd: &mut Command) -> String {
    let args: Vec<_> = cmd.get_args().map(ToOwned::to_owned).collect();
    let out = cmd.output().expect("run tallyd");
    assert!(
        out.status.success(),
        "tallyd {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

/// Runs `cmd` and expects it to fail; returns its stderr.
pub fn fails(cmd: &mut Command) -> String {
    let args: Vec<_> = cmd.get_args().map(ToOwned::to_owned).collect();
    let out = cmd.output().expect("run tallyd");
    assert!(!out.status.success(), "tallyd {args:?} should fail");
    String::from_utf8(out.stderr).expect("utf-8 stderr")
}

/// A site folder in a fresh temporary directory, removed on drop.
pub struct SiteDir {
    dir: tempfile::TempDir,
}

impl SiteDir {
    pub fn new() -> SiteDir {
        let dir = tempfile::Builder::new()
            .prefix("tallyd-site-")
            .tempdir()
            .expect("create the site tempdir");
        SiteDir { dir }
    }

    /// A new folder whose `tallyd.toml` is `config`.
    pub fn with_config(config: &str) -> SiteDir {
        let site = SiteDir::new();
        site.write("tallyd.toml", config);
        site
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn config(&self) -> PathBuf {
        self.path("tallyd.toml")
    }

    pub fn ledger(&self) -> PathBuf {
        self.path("ledger.db")
    }

    /// Writes `text` to the file `name` in the folder.
    pub fn write(&self, name: &str, text: &str) {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    /// `tallyd ARGS` on this folder's `tallyd.toml` (given as `TALLYD_CONFIG`).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = tallyd();
        cmd.args(args).env("TALLYD_CONFIG", self.config());
        cmd
    }

    /// `tallyd ARGS` with "now" pinned to `now` (`TALLYD_NOW`).
    pub fn at(&self, now: &str, args: &[&str]) -> Command {
        let mut cmd = self.command(args);
        cmd.env("TALLYD_NOW", now);
        cmd
    }

    /// Runs `tallyd ARGS` at `now`, whatever its outcome.
    pub fn run(&self, now: &str, args: &[&str]) -> Output {
        self.at(now, args).output().expect("run tallyd")
    }

    /// Runs `tallyd ARGS` at `now` and expects success; returns stdout.
    pub fn ok(&self, now: &str, args: &[&str]) -> String {
        succeeds(&mut self.at(now, args))
    }

    /// Runs `tallyd ARGS` at `now` and expects failure; returns stderr.
    pub fn fails(&self, now: &str, args: &[&str]) -> String {
        fails(&mut self.at(now, args))
    }
}
