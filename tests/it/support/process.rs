//! Ports, binaries and child processes: a free loopback port, the path of a
//! required binary (or a panic naming its Debian package), a child in its own
//! process group that is killed and reaped on drop, and a command run to
//! completion under a timeout.

use std::collections::{HashMap, HashSet};
use std::fs::{self, OpenOptions};
use std::io::{self, Read};
use std::net::{Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// What to install when a binary is missing.
pub const APT_INSTALL: &str =
    "apt-get install -y --no-install-recommends cups cups-ipp-utils cups-client dbus poppler-utils faketime socat openssl ghostscript chromium chromium-driver";

/// How long any one external command (ipptool, lp, lpadmin) may run.
pub(super) const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a daemon may take to answer after it was started.
pub(super) const START_TIMEOUT: Duration = Duration::from_secs(15);

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
        "gs" | "ps2pdf" => "ghostscript",
        "kill" => "procps",
        "socat" => "socat",
        "openssl" => "openssl",
        "chromium" => "chromium",
        "chromedriver" => "chromium-driver",
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
        "tests/it/support: the binary `{bin}` is missing (looked in PATH, /usr/sbin, /usr/bin, /sbin, /bin). \
         It comes from the Debian package `{}`. Install the test peers with: {APT_INSTALL}",
        package_of(bin)
    );
}

/// The environment that runs a program on a wall clock shifted by `offset`
/// (libfaketime's syntax, `+365d`), with its monotonic clock left real:
/// libfaketime preloaded directly, so the program is the test's own child
/// and gets its signals (the `faketime` command would stand between).
pub fn faketime_env(offset: &str) -> Vec<(&'static str, String)> {
    let lib = std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|d| d.path().join("faketime/libfaketime.so.1"))
        .chain([PathBuf::from("/usr/lib/faketime/libfaketime.so.1")])
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!(
                "tests/it/support: libfaketime.so.1 is missing (looked in /usr/lib/*/faketime/). \
                 It comes from the Debian package `faketime`. Install the test peers with: {APT_INSTALL}"
            )
        });
    vec![
        ("LD_PRELOAD", lib.display().to_string()),
        ("FAKETIME", offset.to_string()),
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1".to_string()),
    ]
}

pub(super) fn unique() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The last `max` bytes of a log file, for panic messages.
pub(super) fn tail(path: &Path, max: usize) -> String {
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
pub(super) struct Proc {
    child: Child,
    what: String,
    pub(super) log: PathBuf,
    reaped: bool,
}

impl Proc {
    /// Starts `cmd` with stdin closed and stdout+stderr appended to `log`.
    pub(super) fn spawn(mut cmd: Command, what: &str, log: &Path) -> Proc {
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap_or_else(|e| panic!("tests/it/support: open {}: {e}", log.display()));
        let err = out.try_clone().expect("clone log handle");
        cmd.stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("tests/it/support: cannot start {what} ({cmd:?}): {e}"));
        Proc {
            child,
            what: what.to_string(),
            log: log.to_path_buf(),
            reaped: false,
        }
    }

    /// The exit status if the process has exited (it is then reaped).
    pub(super) fn exited(&mut self) -> Option<std::process::ExitStatus> {
        let status = self.child.try_wait().ok().flatten();
        self.reaped |= status.is_some();
        status
    }

    /// Panics (with the log's tail) if the process has already exited.
    pub(super) fn check_alive(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            self.reaped = true;
            panic!(
                "tests/it/support: {} exited early ({status})\n{}",
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
    pub(super) fn stop(&mut self) {
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
        .unwrap_or_else(|e| panic!("tests/it/support: cannot run {cmd:?}: {e}"));
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
                panic!("tests/it/support: {cmd:?} did not finish within {timeout:?}");
            }
        }
    };
    Output {
        status,
        stdout: out_reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
    }
}

pub(super) fn text_of(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
