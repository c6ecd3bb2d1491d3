//! What the integration tests stand on: real peers, one file each, and the
//! helpers that run tallyd in a temporary folder and read its ledger.
//!
//! Everything here starts real programs or real sockets, never mocks, and
//! listens on loopback only (`127.0.0.1`; ippeveprinter's `-n localhost` also
//! binds `[::1]`), on ports picked by binding `127.0.0.1:0`. Every child
//! process is started in its own process group and killed (group-wide, so
//! ippeveprinter's per-job scripts and cupsd's filters go too) and waited for
//! on `Drop`. A missing binary panics, naming it and its Debian package:
//! tests fail loudly, they never skip.
//!
//! - [`process`]: free ports, required binaries, child processes.
//! - [`ipptool`]: the IPP client the peers are driven with, and its output.
//! - [`peers`]: the tempdir and private dbus-daemon of one test's peers.
//! - [`eve`]: ippeveprinter, a real IPP Everywhere printer with scripted counts.
//! - [`cupsd`]: a private cupsd, its queues (held or not), `lp`, Release-Job.
//! - [`fault`]: servers that misbehave as a broken printer would.
//! - [`recorded`]: a small IPP server answering `Get-Jobs` with a real
//!   recorded response (`fixtures/ipp/`), single attributes changed.
//! - [`ipp_server`]: a printer whose finished jobs are a list in memory,
//!   served a page at a time, healthy or broken as the test makes them.
//! - [`pdf`]: PDFs with a chosen page count.
//! - [`documents`]: PostScript, PDF and rasters whose pages' colour is known.
//! - [`pty`]: a `socat` pseudo-terminal pair as a serial card reader.
//! - [`tls`]: certificates made with `openssl` (a private CA, a leaf it
//!   signed, a self-signed one) and `socat` serving TLS in front of a plain
//!   server here.
//! - [`webhook`]: a plain HTTP server recording the requests it gets (an
//!   alert webhook's receiver), answering the status a test sets.
//! - [`chromium`]: headless Chromium driven over WebDriver (chromedriver),
//!   for the console's browser tests.
//! - [`tallyd`]: the real binary run in a temporary site folder, one per test.
//! - [`tcp_proxy`]: a proxy between a site and the centre that cuts,
//!   delays, drops responses and replays requests as a test sets.
//! - [`daemon`]: a site folder and `tallyd run` in it, its log and ledger.
//! - [`ledger`]: a dump of every row of a ledger, to show nothing changed.
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
//!
//! The benches include this folder too (`#[path]`), and use part of it.

pub mod chromium;
pub mod cupsd;
pub mod daemon;
pub mod documents;
pub mod eve;
pub mod fault;
pub mod http;
pub mod ipp_server;
pub mod ipptool;
pub mod ledger;
pub mod pdf;
pub mod peers;
pub mod postgres;
pub mod process;
pub mod pty;
pub mod recorded;
pub mod tallyd;
pub mod tcp_proxy;
pub mod tls;
pub mod webhook;

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Serialises the tests that must not overlap one another, while every other
/// test runs beside them in libtest's threads.
///
/// Two kinds take it: the tests that load the machine in bursts (SIGKILL in
/// a loop: the daemon restarted every few hundred milliseconds, or a storm
/// of debits with thousands of fsyncs), and the test whose outcome rests on a
/// window close to what the daemon needs (a job charged within 2 s of
/// completing, with a 1 s poll interval). Other short windows in the suite
/// (a card's repeat within its 1 s debounce, a split frame's 30 ms gap
/// against 500 ms, an exit within 2 s of a second SIGTERM) were seen to keep
/// ten times their margin with all of these running at once, so those tests
/// run freely. Hold the guard for the whole test:
/// `let _serial = support::serial();`. A test that panicked while holding it
/// does not stop the others.
pub fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}
