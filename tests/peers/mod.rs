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
//! One file per peer: [`process`] (ports, binaries, child processes),
//! [`ipptool`] (the IPP client and its output), this file ([`Peers`]: the
//! tempdir and the private dbus-daemon every peer uses), [`eve`]
//! (ippeveprinter), [`cupsd`], [`fault`] (misbehaving servers), [`pdf`].
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
//! Timings seen here (debug build, 2 cores): dbus-daemon ready in ~5 ms;
//! ippeveprinter answering 15-25 ms after start, restart 20-30 ms; a
//! scripted job completes 10-40 ms after Print-Job (a second Print-Job meets
//! `server-error-busy` for ~10-40 ms); cupsd ready in 10-15 ms; lpadmin
//! 9-25 ms; a job through cupsd to an Eve completes in 0.07-1.1 s (the ipp
//! backend polls the remote job about once a second); a released job on a
//! `file:///dev/null` queue completes in ~50 ms.

pub mod cupsd;
pub mod eve;
pub mod fault;
pub mod ipptool;
pub mod pdf;
pub mod process;

// The per-file test binaries and the benches name these as `peers::X`.
#[allow(unused_imports)]
pub use fault::{Fault, FaultServer};
#[allow(unused_imports)]
pub use pdf::{pdf_pages, write_pdf};
#[allow(unused_imports)]
pub use process::free_port;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use cupsd::Cupsd;
use eve::Eve;
use process::{require, tail, Proc, START_TIMEOUT};

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
