//! TLS peers: certificates made with the `openssl` command (a private CA
//! and a leaf it signed for `127.0.0.1`/`localhost`, and a self-signed one
//! as printers carry, marked CA as openssl makes it), and `socat`
//! terminating TLS (OpenSSL, a TLS stack other than tallyd's rustls) in
//! front of a plain server of this folder: the grants HTTP server or an IPP
//! [`JobServer`](super::ipp_server::JobServer).
//!
//! ```ignore
//! let certs = Certs::new(dir);                       // ca.pem, leaf.pem, self.pem
//! let front = TlsFront::start(dir, &certs.leaf, backend_port);
//! let url = format!("https://127.0.0.1:{}/grants.toml", front.port);
//! ```

use super::process::{free_port, require, run, text_of, Proc, START_TIMEOUT};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A certificate and its key, PEM files.
#[derive(Debug, Clone)]
pub struct Cert {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Cert {
    /// Its SHA-256 fingerprint as `openssl x509 -fingerprint -sha256`
    /// prints it: `sha256 Fingerprint=AB:CD:…`.
    pub fn fingerprint(&self) -> String {
        let out = openssl(&[
            "x509",
            "-noout",
            "-fingerprint",
            "-sha256",
            "-in",
            &self.cert.display().to_string(),
        ]);
        out.trim().to_string()
    }
}

/// The certificates of one test, in its folder.
pub struct Certs {
    /// The private CA (`ca.pem`): the `ca_file` that trusts `leaf`.
    pub ca: Cert,
    /// Signed by `ca`, for `IP:127.0.0.1` and `DNS:localhost`.
    pub leaf: Cert,
    /// Self-signed (CA:TRUE, as `openssl req -x509` makes it), for
    /// `IP:127.0.0.1`.
    pub self_signed: Cert,
}

impl Certs {
    pub fn new(dir: &Path) -> Certs {
        let at = |name: &str| dir.join(name).display().to_string();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        let x509 = |key: &str, cert: &str, subject: &str, more: &[&str]| {
            let mut args = vec!["req", "-x509"];
            args.extend(ec);
            args.extend([
                "-keyout", key, "-out", cert, "-days", "30", "-subj", subject,
            ]);
            args.extend(more);
            openssl(&args);
        };
        x509(&at("ca.key"), &at("ca.pem"), "/CN=tallyd test CA", &[]);
        let mut csr = vec!["req"];
        csr.extend(ec);
        let (leaf_key, leaf_csr) = (at("leaf.key"), at("leaf.csr"));
        csr.extend([
            "-keyout",
            &leaf_key,
            "-out",
            &leaf_csr,
            "-subj",
            "/CN=127.0.0.1",
        ]);
        openssl(&csr);
        std::fs::write(
            dir.join("leaf.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\n\
             extendedKeyUsage=serverAuth\n",
        )
        .expect("write leaf.ext");
        openssl(&[
            "x509",
            "-req",
            "-in",
            &leaf_csr,
            "-CA",
            &at("ca.pem"),
            "-CAkey",
            &at("ca.key"),
            "-CAcreateserial",
            "-out",
            &at("leaf.pem"),
            "-days",
            "30",
            "-extfile",
            &at("leaf.ext"),
        ]);
        x509(
            &at("self.key"),
            &at("self.pem"),
            "/CN=printer",
            &["-addext", "subjectAltName=IP:127.0.0.1"],
        );
        let cert = |name: &str| Cert {
            cert: dir.join(format!("{name}.pem")),
            key: dir.join(format!("{name}.key")),
        };
        Certs {
            ca: cert("ca"),
            leaf: cert("leaf"),
            self_signed: cert("self"),
        }
    }
}

impl Certs {
    /// A client certificate signed by the CA for `name` (as a DNS subject
    /// alternative name, with `clientAuth`): a site's, for mutual TLS.
    /// Files `client-NAME.pem` and `client-NAME.key` in `dir`.
    pub fn client(&self, dir: &Path, name: &str) -> Cert {
        let at = |file: &str| dir.join(file).display().to_string();
        let (key, csr, ext, pem) = (
            at(&format!("client-{name}.key")),
            at(&format!("client-{name}.csr")),
            at(&format!("client-{name}.ext")),
            at(&format!("client-{name}.pem")),
        );
        let subject = format!("/CN={name}");
        openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &subject,
        ]);
        std::fs::write(
            &ext,
            format!(
                "subjectAltName=DNS:{name}\nbasicConstraints=critical,CA:FALSE\n\
                 extendedKeyUsage=clientAuth\n"
            ),
        )
        .expect("write client ext");
        let (ca, ca_key) = (
            self.ca.cert.display().to_string(),
            self.ca.key.display().to_string(),
        );
        openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            "30",
            "-extfile",
            &ext,
        ]);
        Cert {
            cert: pem.into(),
            key: key.into(),
        }
    }
}

/// Runs `openssl ARGS`; panics with its output unless it succeeds.
fn openssl(args: &[&str]) -> String {
    let out = run(
        Command::new(require("openssl")).args(args),
        Duration::from_secs(30),
    );
    assert!(
        out.status.success(),
        "openssl {args:?} failed:\n{}",
        text_of(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `socat` serving TLS with a certificate on `127.0.0.1:port`, each
/// connection passed on in plain text to `127.0.0.1:backend`. Stops on drop.
pub struct TlsFront {
    pub port: u16,
    proc: Proc,
}

impl TlsFront {
    pub fn start(dir: &Path, cert: &Cert, backend: u16) -> TlsFront {
        let port = free_port();
        let mut cmd = Command::new(require("socat"));
        // `-d -d`: a log line per connection accepted (see `connections`).
        cmd.args(["-d", "-d"])
            .arg(format!(
                "OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,cert={},key={},verify=0",
                cert.cert.display(),
                cert.key.display()
            ))
            .arg(format!("TCP:127.0.0.1:{backend}"));
        let log = dir.join(format!("socat-{port}.log"));
        let mut proc = Proc::spawn(cmd, "socat (TLS front)", &log);
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            proc.check_alive();
            assert!(
                start.elapsed() < START_TIMEOUT,
                "socat did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        TlsFront { port, proc }
    }

    /// Connections accepted so far, besides the one that saw it listen.
    pub fn connections(&self) -> usize {
        let log = std::fs::read_to_string(&self.proc.log).unwrap_or_default();
        log.lines()
            .filter(|l| l.contains("accepting connection"))
            .count()
            .saturating_sub(1)
    }
}
