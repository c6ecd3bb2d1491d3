//! `ipps://` printers with private certificates: `socat` serving TLS in
//! front of an IPP [`JobServer`], with a leaf signed by a private CA or a
//! self-signed certificate. A printer trusted through its `ca_file` or its
//! pinned `tls_fingerprint` is polled and its job charged (beside a plain
//! `ipp://` printer on the shared client); one whose certificate is refused
//! (no trust configured, or the wrong fingerprint) is logged down once, as a
//! certificate problem, however often it is retried. A malformed fingerprint
//! or `ca_file` stops `check-config` and the daemon's start.

use crate::support::daemon::{lines_with, PrinterSpec, Site};
use crate::support::ipp_server::{JobServer, ServedJob};
use crate::support::tls::{Cert, Certs, TlsFront};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// A printer listing one finished job of `user`, behind TLS with `cert`.
struct TlsPrinter {
    server: JobServer,
    front: TlsFront,
}

impl TlsPrinter {
    fn start(dir: &std::path::Path, cert: &Cert, user: &str) -> TlsPrinter {
        let server = JobServer::start(vec![ServedJob::completed(1, user, 3)]);
        let front = TlsFront::start(dir, cert, server.port);
        TlsPrinter { server, front }
    }

    fn spec(&self, id: &str, extra: String) -> PrinterSpec {
        let uri = format!("ipps://127.0.0.1:{}/ipp/print", self.front.port);
        PrinterSpec {
            extra,
            ..PrinterSpec::direct(id, &uri, "1s")
        }
    }
}

#[test]
fn ipps_printers_trusted_by_ca_file_or_fingerprint_are_charged_others_logged_down_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = Certs::new(dir.path());
    let ca_file = |c: &Cert| format!("ca_file = \"{}\"\n", c.cert.display());
    let pin = |fp: &str| format!("tls_fingerprint = \"{fp}\"\n");

    let by_ca = TlsPrinter::start(dir.path(), &certs.leaf, "alice");
    let by_own_cert = TlsPrinter::start(dir.path(), &certs.self_signed, "alice");
    let pinned = TlsPrinter::start(dir.path(), &certs.self_signed, "bob@corp.example");
    let wrong_pin = TlsPrinter::start(dir.path(), &certs.self_signed, "alice");
    let untrusted = TlsPrinter::start(dir.path(), &certs.self_signed, "alice");
    let plain = JobServer::start(vec![ServedJob::completed(1, "alice", 3)]);
    let fingerprint = certs.self_signed.fingerprint();
    let wrong = format!("sha256:{}", vec!["AB"; 32].join(":"));
    let site = Site::new(&[
        by_ca.spec("by-ca", ca_file(&certs.ca)),
        by_own_cert.spec("by-own-cert", ca_file(&certs.self_signed)),
        pinned.spec("pinned", pin(&fingerprint)),
        wrong_pin.spec("wrong-pin", pin(&wrong)),
        untrusted.spec("untrusted", String::new()),
        PrinterSpec::direct("plain", &plain.uri(), "1s"),
    ]);
    let out = site.cli(&["check-config"]);
    assert!(out.contains("pinned to sha256:"), "{out}");
    assert!(
        out.contains("trusting 1 certificate(s) of ca_file"),
        "{out}"
    );

    let mut daemon = site.start();
    for printer in ["by-ca", "by-own-cert", "pinned", "plain"] {
        site.wait_usages(printer, 1, Duration::from_secs(30));
    }
    assert_eq!(site.usages("pinned")[0].1.as_deref(), Some("bob"));

    // The refused ones: retried with backoff (1 s, 2 s, …), logged once.
    let start = Instant::now();
    while wrong_pin.front.connections() < 3 || untrusted.front.connections() < 3 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "retries: {} and {}",
            wrong_pin.front.connections(),
            untrusted.front.connections()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    daemon.stop();
    let log = daemon.log();
    let down = lines_with(&log, &["printer=wrong-pin", "printer is down"]);
    assert_eq!(down.len(), 1, "{log}");
    assert!(
        down[0].contains("its TLS certificate is not trusted"),
        "{}",
        down[0]
    );
    // openssl's `sha256 Fingerprint=AB:…` is tallyd's `sha256:AB:…`.
    let presented = fingerprint.replace("sha256 Fingerprint=", "sha256:");
    let reason =
        format!("certificate not trusted: its fingerprint is {presented}, not the pinned {wrong}");
    assert!(down[0].contains(&reason), "{}", down[0]);
    let down = lines_with(&log, &["printer=untrusted", "printer is down"]);
    assert_eq!(down.len(), 1, "{log}");
    // The system's verifier refuses a self-signed certificate marked CA
    // (as `openssl req -x509` and many printers make them) as such.
    assert!(
        down[0].contains(
            "certificate not trusted: CaUsedAsEndEntity (check the printer's ca_file or tls_fingerprint)"
        ),
        "{}",
        down[0]
    );
    for refused in [&wrong_pin, &untrusted] {
        assert_eq!(refused.server.served.requests.load(Ordering::SeqCst), 0);
    }
    for trusted in ["by-ca", "by-own-cert", "pinned", "plain"] {
        assert!(
            lines_with(&log, &[&format!("printer={trusted}"), "printer is down"]).is_empty(),
            "{log}"
        );
    }
}

#[test]
fn a_malformed_fingerprint_or_ca_file_stops_check_config_and_the_daemon() {
    let uri = "ipps://127.0.0.1:9/ipp/print";
    for (extra, wanted) in [
        (
            "tls_fingerprint = \"sha256:AB:CD:nothex\"\n",
            "printers[0].tls_fingerprint: printer `lobby`: `sha256:AB:CD:nothex` is not a SHA-256 fingerprint",
        ),
        (
            "ca_file = \"lobby-ca.pem\"\n",
            "printers[0].ca_file: printer `lobby`: cannot read ",
        ),
    ] {
        let site = Site::new(&[PrinterSpec {
            extra: extra.to_string(),
            ..PrinterSpec::direct("lobby", uri, "1s")
        }]);
        let error = site.cli_fails(&["check-config"]);
        assert!(error.contains(wanted), "{error}");
        let mut daemon = site.start();
        assert_eq!(daemon.wait_exit(Duration::from_secs(20)), Some(1));
        assert!(daemon.log().contains(wanted), "{}", daemon.log());
        if extra.contains("ca_file") {
            assert!(error.contains("lobby-ca.pem"), "{error}");
        }
    }
}
