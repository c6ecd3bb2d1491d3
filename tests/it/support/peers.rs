//! Peers: the temporary directory and the private dbus-daemon that every
//! ippeveprinter ([`super::eve`]) and cupsd ([`super::cupsd`]) of one test
//! shares, and the way to start them.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::cupsd::Cupsd;
use super::eve::Eve;
use super::process::{free_port, require, tail, Proc, START_TIMEOUT};

pub(super) struct Shared {
    // Field order is drop order: the bus goes before the directory.
    _dbus: Proc,
    pub(super) dbus_address: String,
    pub(super) dir: tempfile::TempDir,
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
                "tests/it/support: keeping {} (TALLYD_KEEP_PEERS)",
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
                "tests/it/support: dbus-daemon did not open {} within {START_TIMEOUT:?}\n{}",
                socket.display(),
                tail(&dbus.log, 4000)
            );
            thread::sleep(Duration::from_millis(5));
        }
        Peers {
            shared: Arc::new(Shared {
                _dbus: dbus,
                dbus_address,
                dir,
            }),
        }
    }

    pub fn dir(&self) -> &Path {
        self.shared.dir.path()
    }

    /// Starts an ippeveprinter named `name` on a free port; see [`Eve`].
    pub fn eve(&self, name: &str) -> Eve {
        Eve::start(self.shared.clone(), name, free_port(), true)
    }

    /// Starts a mono-only ippeveprinter (no `-s`: `color-supported false`).
    pub fn eve_mono(&self, name: &str) -> Eve {
        Eve::start(self.shared.clone(), name, free_port(), false)
    }

    /// Starts a private cupsd on a free port; see [`Cupsd`].
    pub fn cupsd(&self) -> Cupsd {
        self.cupsd_on(free_port())
    }

    /// Starts a private cupsd on `port`; panics if it cannot listen there.
    pub fn cupsd_on(&self, port: u16) -> Cupsd {
        Cupsd::start(self.shared.clone(), port, "debug", "")
    }

    /// A private cupsd logging only warnings, as a production cupsd does
    /// (`LogLevel debug` costs cupsd more CPU per request than the request).
    #[allow(dead_code, reason = "only the benches use it")]
    pub fn cupsd_quiet(&self) -> Cupsd {
        self.cupsd_quiet_with("")
    }

    /// [`Peers::cupsd_quiet`] with more `cupsd.conf` lines, e.g.
    /// `MaxJobs 0\n` (cupsd keeps at most 500 jobs by default).
    #[allow(dead_code, reason = "only the benches use it")]
    pub fn cupsd_quiet_with(&self, extra: &str) -> Cupsd {
        Cupsd::start(self.shared.clone(), free_port(), "warn", extra)
    }
}
