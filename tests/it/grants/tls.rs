//! The grants URL over HTTPS with a private certificate: `socat` serving
//! TLS (a leaf signed by a private CA, or a self-signed certificate) in
//! front of the grants HTTP server. With `ca_file` it syncs; without, the
//! certificate is refused with a clear error, not retried, and the daemon
//! says so once however many syncs fail, keeps the last good grants, and
//! says once when it works again.

use super::http::{fails, fixture, site_with, Server, NOW};
use crate::support::daemon::{lines_with, Site};
use crate::support::ledger::dump_except;
use crate::support::tls::{Certs, TlsFront};
use std::time::Duration;

/// The grants server behind TLS with `cert`: (server, front, https URL).
fn https_server(
    certs: &Certs,
    self_signed: bool,
    dir: &std::path::Path,
) -> (Server, TlsFront, String) {
    let server = Server::start(&fixture("good.toml"), "\"v1\"");
    let cert = if self_signed {
        &certs.self_signed
    } else {
        &certs.leaf
    };
    let front = TlsFront::start(dir, cert, server.port());
    let url = format!("https://127.0.0.1:{}/grants.toml", front.port);
    (server, front, url)
}

#[test]
fn https_with_ca_file_syncs_and_without_it_is_a_certificate_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = Certs::new(dir.path());
    let (_server, _front, url) = https_server(&certs, false, dir.path());

    let ca = format!("ca_file = \"{}\"\n", certs.ca.cert.display());
    let site = site_with(&url, &ca);
    let out = site.ok(NOW, &["check-config"]);
    assert!(
        out.contains("trusting 1 certificate(s) of ca_file"),
        "{out}"
    );
    let out = site.ok(NOW, &["sync"]);
    assert!(out.starts_with("synced: issued 9 lots"), "{out}");

    // The system's roots do not know the private CA: refused at once (no
    // retries: `fails` allows only retry warnings besides the error).
    let bare = site_with(&url, "");
    let error = fails(&bare, NOW, &["sync"]);
    assert_eq!(
        error,
        format!(
            "tallyd: {url}: certificate not trusted: UnknownIssuer (check [grants] ca_file); \
             the last good grants stay in force"
        )
    );
    let run = bare.run(NOW, &["sync"]);
    assert!(
        !String::from_utf8_lossy(&run.stderr).contains("grants fetch failed"),
        "a certificate error is not retried"
    );

    // A CA file of another CA is refused the same way.
    let other = site_with(
        &url,
        &format!("ca_file = \"{}\"\n", certs.self_signed.cert.display()),
    );
    let error = fails(&other, NOW, &["sync"]);
    assert!(
        error.contains("certificate not trusted: UnknownIssuer"),
        "{error}"
    );
}

#[test]
fn a_self_signed_server_is_trusted_through_its_own_certificate_as_ca_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = Certs::new(dir.path());
    let (_server, _front, url) = https_server(&certs, true, dir.path());
    let site = site_with(
        &url,
        &format!("ca_file = \"{}\"\n", certs.self_signed.cert.display()),
    );
    let out = site.ok(NOW, &["sync"]);
    assert!(out.starts_with("synced: issued 9 lots"), "{out}");
}

#[test]
fn a_bad_ca_file_is_a_config_error_naming_grants_and_the_path() {
    let site = site_with(
        "https://127.0.0.1:9/grants.toml",
        "ca_file = \"grants-ca.pem\"\n",
    );
    let error = site.fails(NOW, &["check-config"]);
    assert!(
        error.contains("tallyd.toml:13: grants.ca_file: cannot read "),
        "{error}"
    );
    assert!(error.contains("grants-ca.pem"), "{error}");
    site.write("grants-ca.pem", "not PEM\n");
    let error = site.fails(NOW, &["check-config"]);
    assert!(error.contains("grants.ca_file: "), "{error}");
    assert!(
        error.contains("grants-ca.pem holds no certificate"),
        "{error}"
    );
}

/// The daemon's config: grants from `url` every second, with `extra` lines.
fn daemon_config(url: &str, extra: &str) -> String {
    format!(
        "[site]\ntimezone = \"UTC\"\nledger = \"ledger.db\"\n\n[grants]\nsource = \"{url}\"\n\
         interval = \"1s\"\ntimeout = \"2s\"\n{extra}"
    )
}

#[test]
fn daemon_logs_a_refused_certificate_once_keeps_the_grants_and_says_when_it_is_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = Certs::new(dir.path());
    let (_server, _front, url) = https_server(&certs, false, dir.path());
    let site = Site::new(&[]);
    let config = site.path("tallyd.toml");
    let ca = format!("ca_file = \"{}\"\n", certs.ca.cert.display());
    std::fs::write(&config, daemon_config(&url, &ca)).expect("config");
    let mut daemon = site.start();
    daemon.wait_log("issued=9", Duration::from_secs(20));
    daemon.wait_ready();

    // Without the CA file: every sync (one a second) fails.
    std::fs::write(&config, daemon_config(&url, "")).expect("config");
    let ledger = site.path("ledger.db");
    let before = dump_except(&ledger, &["clock_marks", "sync_state"]);
    daemon.signal("HUP");
    daemon.wait_log("config reloaded", Duration::from_secs(20));
    daemon.wait_log("certificate is not trusted", Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(4));
    let log = daemon.log();
    let refused = lines_with(&log, &["grants sync failed", "UnknownIssuer"]);
    assert_eq!(refused.len(), 1, "logged once over ~4 syncs:\n{log}");
    assert!(refused[0].contains(&url), "{}", refused[0]);
    assert!(
        refused[0].contains("set [grants] ca_file"),
        "{}",
        refused[0]
    );
    assert_eq!(lines_with(&log, &["grants fetch failed"]).len(), 0, "{log}");
    assert!(
        before == dump_except(&ledger, &["clock_marks", "sync_state"]),
        "the last good grants stay in force, the ledger unchanged"
    );

    // The CA file back: it works again, said once.
    std::fs::write(&config, daemon_config(&url, &ca)).expect("config");
    daemon.signal("HUP");
    daemon.wait_log("grants source is reachable again", Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(2));
    daemon.stop();
    let log = daemon.log();
    assert_eq!(
        lines_with(&log, &["grants source is reachable again", "UnknownIssuer"]).len(),
        1,
        "{log}"
    );
    assert_eq!(lines_with(&log, &["grants sync failed"]).len(), 1, "{log}");
}
