//! The console and the health check over the daemon's own TLS (`[http]
//! cert_file`, `key_file`), with a leaf signed by a private CA (the
//! certificates of [`Certs`]): a client trusting only that CA reaches the
//! login page and `/healthz`, logs in and gets a `Secure` cookie; plain
//! HTTP and a client that does not trust the CA get nothing. A reload takes
//! a renewed certificate. A key file that is missing, readable by anyone
//! or not the certificate's stops `check-config` and the daemon's start,
//! naming the field.

use super::{form_token, site_with, MANAGER, PASSWORD};
use crate::support::daemon::Site;
use crate::support::process::free_port;
use crate::support::tls::Certs;
use reqwest::{header, redirect, Certificate, Client, StatusCode};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);

fn http(port: u16, cert: &Path, key: &Path) -> String {
    format!(
        "\n[http]\nlisten = \"127.0.0.1:{port}\"\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
        cert.display(),
        key.display()
    )
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn client(trusting: Option<&Path>) -> Client {
    let builder = Client::builder()
        .redirect(redirect::Policy::none())
        .no_proxy()
        .timeout(Duration::from_secs(10));
    let builder = match trusting {
        Some(ca) => {
            let pem = std::fs::read(ca).expect("read the CA");
            builder.tls_certs_only([Certificate::from_pem(&pem).expect("CA certificate")])
        }
        None => builder,
    };
    builder.build().expect("client")
}

#[test]
fn over_tls_a_client_trusting_the_private_ca_gets_the_console_and_healthz_and_a_secure_cookie() {
    let _serial = crate::support::serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = Certs::new(dir.path());
    chmod(&certs.leaf.key, 0o600);
    let port = free_port();
    let site = site_with(&[], &http(port, &certs.leaf.cert, &certs.leaf.key));
    let mut daemon = site.start();
    daemon.wait_ready();
    daemon.wait_log(
        &format!(
            "HTTP listener started (/metrics, /healthz, /console) listen=127.0.0.1:{port} tls=true"
        ),
        LIMIT,
    );
    let https = |path: &str| format!("https://127.0.0.1:{port}{path}");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let c = client(Some(&certs.ca.cert));
        let health = c
            .get(https("/healthz"))
            .send()
            .await
            .expect("https /healthz");
        assert_eq!(health.status(), StatusCode::OK);
        let metrics = c
            .get(https("/metrics"))
            .send()
            .await
            .expect("https /metrics");
        assert_eq!(metrics.status(), StatusCode::OK);
        assert!(metrics
            .text()
            .await
            .expect("body")
            .contains("tallyd_build_info"));

        // Plain HTTP on the same port gets no answer, nor does a client
        // that trusts only the system's roots.
        let plain = c
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await;
        assert!(plain.is_err(), "plain HTTP answered: {plain:?}");
        let untrusting = client(None).get(https("/healthz")).send().await;
        let e = untrusting.expect_err("a client without the CA is refused");
        assert!(
            format!("{e:?}").contains("UnknownIssuer"),
            "not a certificate refusal: {e:?}"
        );

        let page = c
            .get(https("/console/login"))
            .send()
            .await
            .expect("login page");
        assert_eq!(page.status(), StatusCode::OK);
        let token = form_token(&page.text().await.expect("body"), "/console/login");
        let login = c
            .post(https("/console/login"))
            .form(&[
                ("csrf", token.as_str()),
                ("name", MANAGER),
                ("password", PASSWORD),
            ])
            .send()
            .await
            .expect("post login");
        assert_eq!(login.status(), StatusCode::SEE_OTHER);
        let cookie = login.headers()[header::SET_COOKIE]
            .to_str()
            .expect("cookie text")
            .to_string();
        let parts: Vec<&str> = cookie.split("; ").collect();
        for attribute in ["HttpOnly", "SameSite=Strict", "Secure"] {
            assert!(parts.contains(&attribute), "{attribute} missing: {cookie}");
        }
        let session = parts[0];
        let now = c
            .get(https("/console/now"))
            .header(header::COOKIE, session)
            .send()
            .await
            .expect("now page");
        assert_eq!(now.status(), StatusCode::OK);
    });
    // The login was logged with the client's address, which the console
    // reads from the TLS connection as from a plain one.
    daemon.wait_log(
        &format!("console login manager={MANAGER} address=\"127.0.0.1\""),
        LIMIT,
    );
    daemon.stop();
}

#[test]
fn a_reload_takes_a_new_certificate() {
    let _serial = crate::support::serial();
    let (old_dir, new_dir) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    let (old, new) = (Certs::new(old_dir.path()), Certs::new(new_dir.path()));
    chmod(&old.leaf.key, 0o600);
    chmod(&new.leaf.key, 0o600);
    let port = free_port();
    let site = Site::new(&[]);
    site.write_config_with(&[], &http(port, &old.leaf.cert, &old.leaf.key));
    let mut daemon = site.start();
    daemon.wait_ready();
    let url = format!("https://127.0.0.1:{port}/healthz");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let status = |ca: &Path| {
        rt.block_on(async { client(Some(ca)).get(&url).send().await.map(|r| r.status()) })
    };
    assert_eq!(status(&old.ca.cert).expect("old CA"), StatusCode::OK);
    assert!(
        status(&new.ca.cert).is_err(),
        "the new CA trusted before the reload"
    );

    site.write_config_with(&[], &http(port, &new.leaf.cert, &new.leaf.key));
    daemon.signal("HUP");
    daemon.wait_log("config reloaded", LIMIT);
    let start = std::time::Instant::now();
    while status(&new.ca.cert).is_err() {
        assert!(
            start.elapsed() < LIMIT,
            "the new certificate is not served:\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        status(&old.ca.cert).is_err(),
        "the old certificate still served"
    );
    daemon.stop();
}

#[test]
fn a_key_file_missing_readable_by_anyone_or_not_the_certificates_stops_check_config_and_the_start()
{
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = Certs::new(dir.path());
    chmod(&certs.leaf.key, 0o600);
    chmod(&certs.ca.key, 0o600);
    let open = dir.path().join("open.key");
    std::fs::copy(&certs.leaf.key, &open).expect("copy the key");
    chmod(&open, 0o644);
    let missing = dir.path().join("missing.key");
    let leaf = &certs.leaf.cert;
    for (cert, key, field, wanted) in [
        (leaf, &missing, "http.key_file", "cannot read"),
        (
            leaf,
            &open,
            "http.key_file",
            "may be read by any user (mode 0644)",
        ),
        (
            leaf,
            &certs.ca.key,
            "http.key_file",
            "cannot serve the certificate",
        ),
        (
            &certs.leaf.key,
            &certs.leaf.key,
            "http.cert_file",
            "holds no certificate",
        ),
    ] {
        let site = Site::new(&[]);
        site.write_config_with(&[], &http(free_port(), cert, key));
        let error = site.cli_fails(&["check-config"]);
        assert!(error.contains(&format!("{field}: ")), "{error}");
        assert!(error.contains(wanted), "{error}");
        let mut daemon = site.start();
        assert_eq!(daemon.wait_exit(LIMIT), Some(1), "{}", daemon.log());
        let log = daemon.log();
        let line = log
            .lines()
            .find(|l| l.contains(field))
            .unwrap_or_else(|| panic!("no line names {field}:\n{log}"));
        assert!(line.contains(wanted), "{line}");
        assert!(!log.contains("panicked"), "{log}");
    }
}
