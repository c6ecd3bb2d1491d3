//! A real PostgreSQL for the chain's tests: a cluster of the test's own in
//! a temporary folder, on a free 127.0.0.1 port, stopped when dropped; and
//! `tallyd central` in front of it.

use super::tallyd::tallyd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where `initdb`, `pg_ctl` and `psql` are. Fails loudly when there is none.
fn bindir() -> PathBuf {
    installed().expect("PostgreSQL is not installed (no initdb): apt-get install postgresql")
}

/// Where `initdb`, `pg_ctl` and `psql` are: beside the `initdb` on PATH
/// (Debian links it to /usr/lib/postgresql/N/bin), else the newest
/// /usr/lib/postgresql/N/bin; `None` when there is none.
pub fn installed() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("initdb"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into_iter()
        .find(|p| p.exists())
        .and_then(|p| std::fs::canonicalize(p).ok());
    if let Some(dir) = on_path.and_then(|p| p.parent().map(Path::to_path_buf)) {
        return Some(dir);
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    versions.sort();
    versions.pop().filter(|d| d.join("initdb").exists())
}

/// `program` from `bin`, run as the `postgres` user when the test runs as
/// root (PostgreSQL refuses to run as root; CI runs as root, and Debian's
/// package creates that user).
fn pg_command(bin: &Path, program: &str) -> Command {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(bin.join(program));
        cmd
    } else {
        Command::new(bin.join(program))
    }
}

/// A PostgreSQL cluster of the test's own.
pub struct Postgres {
    _dir: tempfile::TempDir,
    data: PathBuf,
    bin: PathBuf,
    pub port: u16,
    socket: PathBuf,
    /// Whether commits are synced (`fsync`).
    fsync: bool,
}

impl Postgres {
    /// A cluster that does not sync its commits (`fsync=off`): the tests
    /// need no durability, and run faster without it.
    pub fn start() -> Postgres {
        Postgres::start_with(false)
    }

    /// A cluster that syncs its commits, as in production: for the
    /// benches' figures (`benches/central.rs`; the tests do not use it).
    #[allow(dead_code)]
    pub fn start_durable() -> Postgres {
        Postgres::start_with(true)
    }

    fn start_with(fsync: bool) -> Postgres {
        let bin = bindir();
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let socket = dir.path().to_path_buf();
        if unsafe { libc::geteuid() } == 0 {
            let chown = Command::new("chown")
                .args(["postgres:"])
                .arg(dir.path())
                .status();
            assert!(
                chown.is_ok_and(|s| s.success()),
                "chown the cluster's folder to postgres"
            );
        }
        let out = pg_command(&bin, "initdb")
            .args([
                "-A",
                "trust",
                "-U",
                "tally",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(&data)
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = super::process::free_port();
        let pg = Postgres {
            _dir: dir,
            data,
            bin,
            port,
            socket,
            fsync,
        };
        pg.pg_ctl_start();
        pg
    }

    /// `pg_ctl start` on the cluster's port and socket folder; waits until
    /// it accepts connections.
    fn pg_ctl_start(&self) {
        let fsync = if self.fsync { "on" } else { "off" };
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync={fsync}",
            self.port,
            self.socket.display()
        );
        let out = pg_command(&self.bin, "pg_ctl")
            .args(["-w", "-D"])
            .arg(&self.data)
            .args(["-l"])
            .arg(self.socket.join("pg.log"))
            .args(["-o", &opts, "start"])
            .output()
            .expect("run pg_ctl");
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stops the cluster as a crash would (`-m immediate`: no checkpoint,
    /// every connection cut; recovery replays the WAL at the next start)
    /// and starts it again on the same port.
    pub fn restart_immediate(&self) {
        self.stop_immediate();
        self.pg_ctl_start();
    }

    /// Stops the cluster as a crash would; [`Postgres::start_again`] starts
    /// it on the same port.
    pub fn stop_immediate(&self) {
        let out = pg_command(&self.bin, "pg_ctl")
            .args(["-w", "-D"])
            .arg(&self.data)
            .args(["-m", "immediate", "stop"])
            .output()
            .expect("run pg_ctl");
        assert!(
            out.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts the cluster stopped by [`Postgres::stop_immediate`].
    pub fn start_again(&self) {
        self.pg_ctl_start();
    }

    /// The libpq connection string `tallyd central` is given.
    pub fn conninfo(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=tally dbname=postgres",
            self.port
        )
    }

    /// One query's rows, `|`-separated, through psql on the socket.
    pub fn query(&self, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-X",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-U",
                "tally",
                "-d",
                "postgres",
            ])
            .args(["-h"])
            .arg(&self.socket)
            .args(["-p", &self.port.to_string(), "-c", sql])
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql `{sql}`: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    pub fn count(&self, sql: &str) -> i64 {
        self.query(sql).parse().expect("a count")
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = pg_command(&self.bin, "pg_ctl")
            .args(["-D"])
            .arg(&self.data)
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The secret token of test site `id` (the centre lists the sites
/// [`SITES`] with these tokens' SHA-256).
pub fn site_token(id: &str) -> String {
    format!("token-of-{id}")
}

/// The sites the centre of a test accepts, each with [`site_token`].
pub const SITES: [&str; 9] = [
    "ber-1", "ber-2", "ber-3", "ber-4", "ber-5", "ber-6", "ber-7", "ber-8", "ber-9",
];

/// `central.toml`'s `[[sites]]` for [`SITES`].
fn sites_toml() -> String {
    use sha2::{Digest, Sha256};
    SITES
        .iter()
        .map(|id| {
            let digest = Sha256::digest(site_token(id).as_bytes());
            format!("[[sites]]\nid = \"{id}\"\ntoken_sha256 = \"{digest:x}\"\n")
        })
        .collect()
}

/// `tallyd central`, killed when dropped.
pub struct Central {
    child: Child,
    _dir: tempfile::TempDir,
    pub port: u16,
    log: PathBuf,
}

impl Central {
    /// Starts the centre on `port` in front of `pg`, over plain HTTP;
    /// waits until it serves.
    pub fn start(pg: &Postgres, port: u16) -> Central {
        Central::start_with(pg, port, None)
    }

    /// Starts the centre on `port` in front of `pg`, over HTTPS with `tls`
    /// (a certificate and its key) if given; waits until it serves.
    pub fn start_with(pg: &Postgres, port: u16, tls: Option<&super::tls::Cert>) -> Central {
        Central::launch(pg, port, tls, None, "")
    }

    /// As [`Central::start_with`], with `more` lines of central.toml.
    pub fn start_with_toml(
        pg: &Postgres,
        port: u16,
        tls: Option<&super::tls::Cert>,
        more: &str,
    ) -> Central {
        Central::launch(pg, port, tls, None, more)
    }

    /// Starts the centre on `port` in front of `pg`, issuing the chain's
    /// lots from `grants` (read again every second).
    pub fn start_with_grants(pg: &Postgres, port: u16, grants: &str) -> Central {
        Central::launch(pg, port, None, Some((grants, "1s")), "")
    }

    /// As [`Central::start_with_grants`], reading `grants` again every
    /// `sync_every` (the default is 5m; the benches' centre).
    #[allow(dead_code)]
    pub fn start_with_grants_every(
        pg: &Postgres,
        port: u16,
        grants: &str,
        sync_every: &str,
    ) -> Central {
        Central::launch(pg, port, None, Some((grants, sync_every)), "")
    }

    /// As [`Central::start_with_grants`], its clock moved as the file
    /// `clock` says (`TALLYD_TEST_CLOCK_FILE`: "passed step" seconds), as a
    /// site daemon's is ([`super::daemon::Site::set_clocks`]).
    #[allow(dead_code)]
    pub fn start_clocked(
        pg: &Postgres,
        port: u16,
        grants: &str,
        clock: &std::path::Path,
    ) -> Central {
        Central::launch_on(pg, port, None, Some((grants, "1s")), "", Some(clock))
    }

    fn launch(
        pg: &Postgres,
        port: u16,
        tls: Option<&super::tls::Cert>,
        grants: Option<(&str, &str)>,
        more: &str,
    ) -> Central {
        Central::launch_on(pg, port, tls, grants, more, None)
    }

    fn launch_on(
        pg: &Postgres,
        port: u16,
        tls: Option<&super::tls::Cert>,
        grants: Option<(&str, &str)>,
        more: &str,
        clock: Option<&std::path::Path>,
    ) -> Central {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("central.toml");
        let mut text = format!(
            "listen = \"127.0.0.1:{port}\"\npostgres = \"{}\"\n",
            pg.conninfo()
        );
        if let Some((g, every)) = grants {
            std::fs::write(dir.path().join("grants.toml"), g).expect("write grants.toml");
            text += &format!("grants = \"grants.toml\"\nsync_every = \"{every}\"\n");
        }
        if let Some(c) = tls {
            text += &format!(
                "cert_file = \"{}\"\nkey_file = \"{}\"\n",
                c.cert.display(),
                c.key.display()
            );
        }
        text += more;
        text += &sites_toml();
        std::fs::write(&config, text).expect("write central.toml");
        let log = dir.path().join("central.log");
        let mut command = tallyd();
        if let Some(file) = clock {
            command.env("TALLYD_TEST_CLOCK_FILE", file);
        }
        let child = command
            .arg("--config")
            .arg(&config)
            .args(["central", "--log-format", "text"])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&log).expect("log")))
            .spawn()
            .expect("start tallyd central");
        let central = Central {
            child,
            _dir: dir,
            port,
            log,
        };
        let start = Instant::now();
        while !central.log().contains("central serving") {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "centre not serving:\n{}",
                central.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        central
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Replaces the centre's grants file (it reads it again on its
    /// `sync_every`).
    #[allow(dead_code)]
    pub fn write_grants(&self, grants: &str) {
        let path = self._dir.path().join("grants.toml");
        let tmp = self._dir.path().join("grants.toml.new");
        std::fs::write(&tmp, grants).expect("write grants");
        std::fs::rename(&tmp, &path).expect("replace grants.toml");
    }

    /// Waits until the centre's log holds `needle`; panics with the log
    /// after `limit`.
    pub fn wait_log(&self, needle: &str, limit: Duration) {
        let start = Instant::now();
        while !self.log().contains(needle) {
            assert!(
                start.elapsed() < limit,
                "{needle:?} not logged within {limit:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `tallyd central check` on this centre's ledger of record: whether
    /// it passed, and its verdicts (and error line).
    pub fn check(&self) -> (bool, String) {
        self.command(&["central", "check"])
    }

    /// Runs `tallyd --config <central.toml> ARGS`: (success, stdout and
    /// stderr).
    pub fn command(&self, args: &[&str]) -> (bool, String) {
        let out = tallyd()
            .arg("--config")
            .arg(self._dir.path().join("central.toml"))
            .args(args)
            .output()
            .expect("run tallyd with central.toml");
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    }

    /// POSTs `body` to `path` over plain HTTP, with `Authorization:
    /// Bearer <token>` if given; returns the status code and the body.
    pub fn post(&self, path: &str, body: &str, token: Option<&str>) -> (u16, String) {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).expect("send");
        let mut out = String::new();
        s.read_to_string(&mut out).expect("read");
        let status = out[9..12].parse().expect("status");
        let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
        (status, body)
    }
}

impl Drop for Central {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
