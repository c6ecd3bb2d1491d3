//! Credentials for the grants URL: `token_file` (bearer) and
//! `basic_auth_file`, against a real HTTP server that answers 401 without
//! them; and a URL with `user:password@` that never shows the password in
//! `sync` (text and JSON), `check-config`, errors or the daemon's log.

use super::http::{fails, fixture, site_with, Server, NOW};
use crate::support::daemon::Site;
use std::time::Duration;

const SECRET: &str = "s3cret";

/// `url` with `user:s3cret@` before the host.
fn with_userinfo(url: &str) -> String {
    url.replacen("http://", &format!("http://user:{SECRET}@"), 1)
}

fn assert_no_secret(what: &str, text: &str) {
    assert!(!text.contains(SECRET), "{what} shows the secret:\n{text}");
}

#[test]
fn token_file_sends_a_bearer_token_and_without_it_401_is_a_clear_error() {
    let server = Server::start(&fixture("good.toml"), "\"v1\"");
    server.require_authorization(&format!("Bearer tok-{SECRET}"));
    let site = site_with(&server.url(), "token_file = \"grants-token\"\n");
    site.write("grants-token", &format!("tok-{SECRET}\n"));
    let out = site.ok(NOW, &["sync"]);
    assert!(out.starts_with("synced: issued 9 lots"), "{out}");
    let out = site.ok(NOW, &["check-config"]);
    assert!(out.contains("(bearer token from token_file)"), "{out}");
    assert_no_secret("check-config", &out);

    let bare = site_with(&server.url(), "");
    let error = fails(&bare, NOW, &["sync"]);
    assert_eq!(
        error,
        format!(
            "tallyd: {} answered HTTP 401 (not authenticated: check [grants] token_file or \
             basic_auth_file); the last good grants stay in force",
            server.url()
        )
    );
}

#[test]
fn basic_auth_file_sends_basic_auth() {
    let server = Server::start(&fixture("good.toml"), "\"v1\"");
    // base64("sync:pa55")
    server.require_authorization("Basic c3luYzpwYTU1");
    let site = site_with(&server.url(), "basic_auth_file = \"grants-basic\"\n");
    site.write("grants-basic", "sync:pa55\n");
    let out = site.ok(NOW, &["sync"]);
    assert!(out.starts_with("synced: issued 9 lots"), "{out}");
}

#[test]
fn a_missing_or_empty_token_file_is_a_config_error_with_line_and_field() {
    let site = site_with(
        "http://127.0.0.1:9/grants.toml",
        "token_file = \"grants-token\"\n",
    );
    let error = site.fails(NOW, &["check-config"]);
    assert!(
        error.contains("tallyd.toml:13: grants.token_file: cannot read "),
        "{error}"
    );
    site.write("grants-token", "\n");
    let error = site.fails(NOW, &["check-config"]);
    assert!(
        error.contains("tallyd.toml:13: grants.token_file: "),
        "{error}"
    );
    assert!(error.contains("is empty"), "{error}");
}

#[test]
fn a_url_with_a_password_never_shows_it_in_sync_check_config_or_errors() {
    let server = Server::start(&fixture("good.toml"), "\"v1\"");
    // base64("user:s3cret"): reqwest sends the URL's userinfo as basic auth.
    server.require_authorization("Basic dXNlcjpzM2NyZXQ=");
    let url = with_userinfo(&server.url());
    let shown = server.url().replacen("http://", "http://***@", 1);
    let site = site_with(&url, "");

    let out = site.ok(NOW, &["check-config"]);
    assert!(out.contains(&format!("grants: {shown} every")), "{out}");
    assert_no_secret("check-config", &out);
    for args in [
        &["sync", "--dry-run"][..],
        &["sync"],
        &["sync", "--json"],
        &["--json", "sync", "--dry-run"],
    ] {
        let run = site.run(NOW, args);
        assert!(run.status.success(), "{args:?}");
        assert_no_secret("sync stdout", &String::from_utf8_lossy(&run.stdout));
        assert_no_secret("sync stderr", &String::from_utf8_lossy(&run.stderr));
    }

    // Refused: the error names the URL redacted.
    server.require_authorization("Basic other");
    let error = fails(&site, NOW, &["sync"]);
    assert!(
        error.starts_with(&format!("tallyd: {shown} answered HTTP 401")),
        "{error}"
    );
    let run = site.run(NOW, &["sync"]);
    assert_no_secret("sync stderr (401)", &String::from_utf8_lossy(&run.stderr));

    // Down: reqwest's own error (which names its URL) must not leak it.
    drop(server);
    let run = site.run(NOW, &["sync"]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success());
    assert!(
        stderr.contains(&format!("cannot fetch {shown}: ")),
        "{stderr}"
    );
    assert_no_secret("sync stderr (down)", &stderr);
}

/// The daemon's config: the grants `source` with `extra` lines.
fn daemon_config(source: &str, extra: &str) -> String {
    format!(
        "[site]\ntimezone = \"UTC\"\nledger = \"ledger.db\"\n\n[grants]\nsource = \"{source}\"\n\
         interval = \"1h\"\ntimeout = \"2s\"\n{extra}"
    )
}

#[test]
fn daemon_log_never_shows_the_password_and_reload_reads_the_token_file() {
    let server = Server::start(&fixture("good.toml"), "\"v1\"");
    server.require_authorization(&format!("Bearer tok-{SECRET}"));
    let site = Site::new(&[]);
    let config = site.path("tallyd.toml");
    std::fs::write(&config, daemon_config(&with_userinfo(&server.url()), "")).expect("config");
    let mut daemon = site.start();
    daemon.wait_log("grants sync failed", Duration::from_secs(20));
    let log = daemon.log();
    assert!(log.contains("***@127.0.0.1"), "{log}");
    assert!(log.contains("answered HTTP 401"), "{log}");

    // SIGHUP reloads the config, and reads the token file it now names.
    let token = "token_file = \"grants-token\"\n";
    std::fs::write(&config, daemon_config(&server.url(), token)).expect("config");
    std::fs::write(site.path("grants-token"), format!("tok-{SECRET}\n")).expect("token");
    daemon.signal("HUP");
    daemon.wait_log("config reloaded", Duration::from_secs(20));
    daemon.wait_log("issued=9", Duration::from_secs(20));
    daemon.stop();
    assert_no_secret("the daemon's log", &daemon.log());
}
