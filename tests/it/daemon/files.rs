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

/// Runs `tallyd run` on `site` and expects it to exit 1 before READY;
/// returns its stderr.
fn refused(site: &Site) -> String {
    let out = tallyd()
        .arg("--config")
        .arg(site.path("tallyd.toml"))
        .args(["run", "--log-format", "text"])
        .output()
        .expect("run tallyd");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("tallyd ready"), "{stderr}");
    stderr
}

/// A ledger made by a daemon that ran and stopped.
/// A site whose daemon made its ledger and stopped, the ledger's WAL
/// folded into it and gone: the tests below make its folder unwritable,
/// and a `-wal` left beside the ledger (the daemon's last connection did
/// not check it in) would let a daemon open it there after all.
fn made_ledger() -> Site {
    let site = Site::new(&[]);
    let mut daemon = site.start();
    daemon.wait_ready();
    daemon.stop();
    let ledger = site.path("ledger.db");
    let conn = rusqlite::Connection::open(&ledger).expect("open the ledger");
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .expect("checkpoint");
    drop(conn);
    for suffix in ["-wal", "-shm"] {
        let path = site.path(&format!("ledger.db{suffix}"));
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            other => other.expect("remove a folded WAL file"),
        }
    }
    site
}

#[test]
fn a_missing_trigger_is_refused_before_ready() {
    let site = made_ledger();
    let ledger = site.path("ledger.db");
    let conn = rusqlite::Connection::open(&ledger).expect("open");
    conn.execute_batch("DROP TRIGGER history_no_update")
        .expect("drop");
    drop(conn);
    let stderr = refused(&site);
    assert!(
        stderr.contains("append-only trigger `history_no_update` is missing"),
        "{stderr}"
    );
}

/// SQLite's `quick_check` of the whole file runs just after READY (it
/// reads every page): a ledger damaged where the start does not read is
/// ready, then said damaged once, and a job printed after that is not
/// charged (it waits, as on a full disk).
#[test]
fn a_damaged_ledger_is_said_once_after_ready_and_charges_nothing() {
    use crate::support::daemon::{lines_with, PrinterSpec};
    use crate::support::peers::Peers;
    let limit = Duration::from_secs(20);
    let peers = Peers::new();
    let eve = peers.eve("lobby");
    let site = Site::new(&[PrinterSpec::direct("lobby", &eve.uri(), "200ms")]);
    let mut daemon = site.start();
    daemon.wait_ready();
    daemon.stop();
    let ledger = site.path("ledger.db");
    let conn = rusqlite::Connection::open(&ledger).expect("open");
    let (root, page_size): (i64, i64) = conn
        .query_row(
            "SELECT rootpage, (SELECT page_size FROM pragma_page_size())
             FROM sqlite_master WHERE name = 'unknown_cards'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("root page");
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .expect("checkpoint");
    drop(conn);
    let mut bytes = std::fs::read(&ledger).expect("read");
    // The table's (empty) root page claims 65535 cells.
    let header = usize::try_from((root - 1) * page_size).expect("offset");
    bytes[header + 3] = 0xff;
    bytes[header + 4] = 0xff;
    std::fs::write(&ledger, &bytes).expect("write");

    let mut daemon = site.start();
    daemon.wait_ready();
    daemon.wait_log("ledger file is damaged", limit);
    eve.submit("alice", 3);
    daemon.wait_log("cannot charge", limit);
    std::thread::sleep(Duration::from_secs(1));
    let log = daemon.log();
    let damaged = lines_with(&log, &["ledger file is damaged"]);
    assert_eq!(damaged.len(), 1, "said once:\n{log}");
    assert!(damaged[0].starts_with("<3>"), "an error: {}", damaged[0]);
    for part in ["every charge is refused", "SQLite quick_check"] {
        assert!(damaged[0].contains(part), "{part} in {}", damaged[0]);
    }
    let refused = lines_with(&log, &["cannot charge: the ledger cannot be written"]);
    assert_eq!(refused.len(), 1, "said once:\n{log}");
    assert!(refused[0].contains("the file is damaged"), "{}", refused[0]);
    assert_eq!(site.printing_balance("alice"), 1000, "nothing charged");
    daemon.stop();
}

#[test]
fn a_read_only_ledger_folder_is_refused_before_ready() {
    let site = made_ledger();
    let dir = site.dir().display().to_string();
    let config = site.path("tallyd.toml").display().to_string();
    // A read-only bind mount, in a mount namespace of this command alone.
    let script = format!(
        "mount --bind -o ro '{dir}' '{dir}' && exec '{}' --config '{config}' run --log-format text",
        env!("CARGO_BIN_EXE_tallyd")
    );
    let out = std::process::Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .output()
        .expect("unshare (util-linux) runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let ledger = site.path("ledger.db");
    assert_eq!(
        stderr.trim_end(),
        format!(
            "tallyd: ledger {}: cannot take its lock file `ledger.db.lock`: Read-only file system (os error 30)",
            ledger.display()
        )
    );
}

/// Runs `tallyd run` on `site` as the unprivileged user `nobody` (root
/// would write any file) and expects it to exit 1; returns its stderr.
fn refused_to_nobody(site: &Site) -> String {
    // A daemon that starts after all would run forever: killed, it fails.
    let out = crate::support::process::run(
        std::process::Command::new("setpriv")
            .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_tallyd"))
            .arg("--config")
            .arg(site.path("tallyd.toml"))
            .args(["run", "--log-format", "text"]),
        std::time::Duration::from_secs(30),
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("tallyd ready"), "{stderr}");
    stderr
}

/// `chown -R nobody:nogroup path`.
fn give_to_nobody(path: &std::path::Path) {
    let status = std::process::Command::new("chown")
        .args(["-R", "nobody:nogroup"])
        .arg(path)
        .status()
        .expect("chown runs");
    assert!(status.success());
}

/// A ledger file the service may not write, and a folder it may not write
/// (SQLite cannot make the ledger's `-wal` there): exit 1 before READY,
/// naming the ledger once with the reason.
#[test]
fn a_ledger_the_service_may_not_write_is_refused_naming_it_once() {
    use std::os::unix::fs::PermissionsExt;
    let site = made_ledger();
    let ledger = site.path("ledger.db");
    give_to_nobody(site.dir());
    std::fs::set_permissions(&ledger, std::fs::Permissions::from_mode(0o400)).expect("chmod");
    let stderr = refused_to_nobody(&site);
    assert_eq!(
        stderr.trim_end(),
        format!(
            "tallyd: ledger {}: cannot open it for writing or make it 0600: Permission denied (os error 13)",
            ledger.display()
        )
    );

    let site = made_ledger();
    let ledger = site.path("ledger.db");
    give_to_nobody(site.dir());
    let status = std::process::Command::new("chown")
        .arg("root:root")
        .arg(site.dir())
        .status()
        .expect("chown runs");
    assert!(status.success());
    std::fs::set_permissions(site.dir(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let stderr = refused_to_nobody(&site);
    assert_eq!(
        stderr.trim_end(),
        format!(
            "tallyd: ledger {}: attempt to write a readonly database (its folder cannot be written)",
            ledger.display()
        )
    );
}

/// A small tmpfs mounted on `dir` (as root), unmounted on drop: a disk that
/// can really fill.
struct SmallDisk {
    dir: std::path::PathBuf,
}

impl SmallDisk {
    fn mount(dir: std::path::PathBuf, size: &str) -> SmallDisk {
        std::fs::create_dir_all(&dir).expect("mount point");
        let status = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tallyd-test",
            ])
            .arg(&dir)
            .status()
            .expect("mount (util-linux) runs");
        assert!(
            status.success(),
            "mount a tmpfs on {} (needs root)",
            dir.display()
        );
        SmallDisk { dir }
    }

    /// Writes a file until the disk is full; returns its path.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let path = self.dir.join("filler");
        let mut file = std::fs::File::create(&path).expect("filler");
        let chunk = vec![0u8; 64 * 1024];
        loop {
            if let Err(e) = file.write_all(&chunk) {
                assert_eq!(e.raw_os_error(), Some(28), "filled until ENOSPC: {e}");
                return path;
            }
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.dir)
            .status();
    }
}

/// A disk that fills under a running daemon: the job printed meanwhile is
/// not charged, the log says "disk full" once (not once per poll), and once
/// space returns the job is charged exactly once and the log says so once.
#[test]
fn a_full_disk_is_said_once_and_the_job_is_charged_once_space_returns() {
    use crate::support::daemon::{lines_with, PrinterSpec};
    use crate::support::peers::Peers;
    let limit = Duration::from_secs(20);
    let peers = Peers::new();
    let eve = peers.eve("lobby");
    let site = Site::new(&[PrinterSpec::direct("lobby", &eve.uri(), "200ms")]);
    let disk = SmallDisk::mount(site.path("disk"), "2m");
    let ledger = site.path("disk/ledger.db");
    let ledger_arg = ledger.display().to_string();
    let mut daemon = site.start_with("text", &[("TALLYD_LEDGER", &ledger_arg)]);
    daemon.wait_ready();
    let balance = || {
        let out = site.cli(&["--ledger", &ledger_arg, "--json", "balance", "alice"]);
        let v: serde_json::Value = serde_json::from_str(&out).expect("balance json");
        v[0]["printing_cents"].as_i64().expect("printing_cents")
    };
    assert_eq!(balance(), 1000);

    let filler = disk.fill();
    eve.submit("alice", 3);
    daemon.wait_log("disk full", limit);
    // Ten polls more: still said once, and nothing charged.
    std::thread::sleep(Duration::from_secs(2));
    let log = daemon.log();
    let full = lines_with(&log, &["disk full"]);
    assert_eq!(full.len(), 1, "said once:\n{log}");
    for part in [
        "cannot charge: the ledger cannot be written",
        &format!("ledger {}: ", ledger.display()),
        "printer=lobby",
    ] {
        assert!(full[0].contains(part), "{part} in {}", full[0]);
    }
    assert_eq!(full[0].matches(&ledger_arg).count(), 1, "{}", full[0]);
    assert_eq!(balance(), 1000, "nothing charged while the disk is full");

    std::fs::remove_file(filler).expect("remove the filler");
    daemon.wait_log("member=alice", limit);
    daemon.wait_log("the ledger can be written again", limit);
    std::thread::sleep(Duration::from_secs(1));
    let log = daemon.log();
    assert_eq!(
        lines_with(&log, &["charge", "member=alice"]).len(),
        1,
        "{log}"
    );
    assert_eq!(
        lines_with(&log, &["can be written again"]).len(),
        1,
        "{log}"
    );
    assert_eq!(
        lines_with(&log, &["disk full"]).len(),
        2,
        "the outage and its end:\n{log}"
    );
    assert_eq!(balance(), 970, "charged exactly once");
    daemon.stop();
    drop(disk);
}
