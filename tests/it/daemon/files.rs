//! The ledger's files: one `tallyd run` per ledger (a second exits at once,
//! naming the ledger and the holder's pid; a SIGKILLed holder frees it), CLI
//! commands beside the daemon, and a ledger only the service can read.

use crate::support::daemon::Site;
use crate::support::tallyd::tallyd;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

#[test]
fn a_second_daemon_on_the_same_ledger_exits_at_once_naming_the_holder() {
    let site = Site::new(&[]);
    let mut first = site.start();
    first.wait_ready();

    let started = Instant::now();
    let out = tallyd()
        .arg("--config")
        .arg(site.path("tallyd.toml"))
        .args(["run", "--log-format", "text"])
        .output()
        .expect("run a second daemon");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(5), "{stderr}");
    let ledger = site.path("ledger.db");
    for part in [
        format!("the ledger {} is in use", ledger.display()),
        format!("(pid {})", first.pid()),
    ] {
        assert!(stderr.contains(&part), "{part} in {stderr}");
    }

    // The manager's commands work beside the daemon.
    assert!(site.cli(&["balance", "alice"]).contains("alice"));

    // Only the service can read the ledger, whatever the umask.
    for suffix in ["", "-wal", "-shm"] {
        let path = site.path(&format!("ledger.db{suffix}"));
        let mode = std::fs::metadata(&path).expect("ledger file").mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", path.display());
    }

    // A holder killed with SIGKILL frees the ledger.
    first.kill9();
    let mut second = site.start();
    second.wait_ready();
    second.stop();
}
