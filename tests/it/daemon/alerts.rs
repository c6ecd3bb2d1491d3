//! `[alerts]` in `tallyd run`: a real shell script as the command, appending
//! what it gets on stdin to a file, and a real HTTPS webhook (`socat` serving
//! TLS with a private CA's certificate in front of a recording server).
//! A printer down for `after` alerts once, and once more when it is back; a
//! job set aside for review alerts with its printer and job; a failing
//! command is logged once and not retried; a hanging one is killed at the
//! time limit, with what it started; a reload keeps what was sent; a card
//! reader gone and grants syncs failing alert and resolve too.

use crate::support;
use crate::support::daemon::{lines_with, Daemon, PrinterSpec, Site};
use crate::support::peers::Peers;
use crate::support::process::free_port;
use crate::support::pty::Pty;
use crate::support::recorded::{fixture, with_attr, Recorded, Script};
use crate::support::tls::{Certs, TlsFront};
use crate::support::webhook::Webhook;
use ipp::prelude::IppValue;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(20);

/// Writes an executable `/bin/sh` script `name` into `dir`.
fn script(dir: &Path, name: &str, body: &str) {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}")).expect("write the script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// The command that appends each alert to `alerts.jsonl` beside it.
fn recorder(site: &Site) {
    let file = site.path("alerts.jsonl");
    script(
        site.dir(),
        "notify.sh",
        &format!("cat >> '{}'\n", file.display()),
    );
}

/// The alerts `notify.sh` got so far, parsed.
fn recorded(site: &Site) -> Vec<serde_json::Value> {
    std::fs::read_to_string(site.path("alerts.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Waits until `notify.sh` got `n` alerts.
fn wait_recorded(site: &Site, daemon: &Daemon, n: usize) -> Vec<serde_json::Value> {
    let start = Instant::now();
    loop {
        let got = recorded(site);
        if got.len() >= n {
            return got;
        }
        assert!(
            start.elapsed() < LIMIT,
            "{} of {n} alerts: {got:?}\n{}",
            got.len(),
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A printer URI on a port nobody listens on.
fn closed_printer() -> PrinterSpec {
    let uri = format!("ipp://127.0.0.1:{}/ipp/print", free_port());
    PrinterSpec::direct("attic", &uri, "300ms")
}

#[test]
fn a_printer_down_for_after_alerts_once_and_once_more_when_it_is_back() {
    let _serial = support::serial();
    let peers = Peers::new();
    let mut eve = peers.eve("lobby");
    let printers = [PrinterSpec::direct("lobby", &eve.uri(), "300ms")];
    let site = Site::new(&printers);
    recorder(&site);
    site.write_config_with(
        &printers,
        "\n[alerts]\ncommand = \"notify.sh\"\nafter = \"2s\"\n",
    );
    let daemon = site.start();
    daemon.wait_ready();
    daemon.wait_log("printer is up printer=lobby", LIMIT);

    let down_at = Instant::now();
    eve.stop();
    let alerts = wait_recorded(&site, &daemon, 1);
    let waited = down_at.elapsed();
    assert!(
        waited >= Duration::from_secs(2),
        "not before `after`: {waited:?}"
    );
    let a = &alerts[0];
    assert_eq!(
        (&a["kind"], &a["subject"], &a["state"]),
        (&"printer_down".into(), &"lobby".into(), &"firing".into()),
        "{a}"
    );
    assert_eq!(a["site"], "Test Space");
    assert!(!a["host"].as_str().unwrap_or("").is_empty(), "{a}");
    assert!(!a["reason"].as_str().unwrap_or("").is_empty(), "{a}");
    for field in ["since", "time"] {
        let t = a[field].as_str().unwrap_or("");
        assert!(
            chrono::DateTime::parse_from_rfc3339(t).is_ok(),
            "{field}: {a}"
        );
    }
    // Still down: no second alert.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(recorded(&site).len(), 1, "{:?}", recorded(&site));

    eve.restart();
    let alerts = wait_recorded(&site, &daemon, 2);
    let back = &alerts[1];
    assert_eq!(
        (&back["kind"], &back["subject"], &back["state"]),
        (&"printer_down".into(), &"lobby".into(), &"resolved".into()),
        "{back}"
    );
    assert_eq!(back["since"], a["since"], "the same outage");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(recorded(&site).len(), 2, "{:?}", recorded(&site));

    let log = daemon.log();
    for state in ["firing", "resolved"] {
        let sent = lines_with(
            &log,
            &["<6>alert ", "kind=printer_down", "subject=lobby", state],
        );
        assert_eq!(sent.len(), 1, "one line per alert:\n{log}");
        assert!(sent[0].contains("delivered=command"), "{}", sent[0]);
    }
    assert!(
        lines_with(&log, &["alert not delivered"]).is_empty(),
        "{log}"
    );
}

#[test]
fn a_job_set_aside_for_review_alerts_once_with_its_printer_and_job() {
    let answer = with_attr(
        fixture("eve-completed.ipp"),
        1,
        "job-impressions-completed",
        IppValue::Integer(-6),
    );
    let server = Recorded::start(Script::finished(&answer));
    let printers = [PrinterSpec::direct("negative", &server.uri(), "300ms")];
    let site = Site::new(&printers);
    recorder(&site);
    site.write_config_with(
        &printers,
        "\n[alerts]\ncommand = \"notify.sh\"\nafter = \"2s\"\n",
    );
    let daemon = site.start();
    daemon.wait_ready();
    let alerts = wait_recorded(&site, &daemon, 1);
    let a = &alerts[0];
    assert_eq!(a["kind"], "job_to_review", "{a}");
    assert_eq!(a["subject"], "negative/1", "{a}");
    assert_eq!(a["printer"], "negative", "{a}");
    assert_eq!(a["job_id"], 1, "{a}");
    assert_eq!(a["state"], "firing", "{a}");
    assert_eq!(a["reason"], "a count is negative", "{a}");
    // More polls list the same job: it was set aside once, alerted once.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(recorded(&site).len(), 1, "{:?}", recorded(&site));
}

#[test]
fn a_failing_command_is_logged_once_and_not_retried() {
    let site = Site::new(&[]);
    let runs = site.path("runs");
    script(
        site.dir(),
        "broken.sh",
        &format!(
            "echo run >> '{}'\necho 'no route to the staff' >&2\nexit 3\n",
            runs.display()
        ),
    );
    let printers = [closed_printer()];
    site.write_config_with(
        &printers,
        "\n[alerts]\ncommand = \"broken.sh\"\nafter = \"1s\"\n",
    );
    let daemon = site.start();
    daemon.wait_ready();
    daemon.wait_log("alert not delivered", LIMIT);
    // Many polls and ticks later: still the one run, the one line.
    std::thread::sleep(Duration::from_secs(4));
    let log = daemon.log();
    let warned = lines_with(&log, &["<4>alert not delivered: the alert command failed"]);
    assert_eq!(warned.len(), 1, "{log}");
    for part in [
        "kind=printer_down",
        "subject=attic",
        "state=firing",
        "exited with exit status: 3: no route to the staff",
        "not retried",
    ] {
        assert!(warned[0].contains(part), "{part} in {}", warned[0]);
    }
    let ran = std::fs::read_to_string(&runs).unwrap_or_default();
    assert_eq!(ran.lines().count(), 1, "run once: {ran:?}");
    let sent = lines_with(&log, &["<6>alert ", "kind=printer_down"]);
    assert_eq!(sent.len(), 1, "{log}");
    assert!(sent[0].contains("delivered= ") || sent[0].ends_with("delivered="));
}

#[test]
fn a_hanging_command_is_killed_at_the_time_limit_with_what_it_started() {
    let site = Site::new(&[]);
    let pids = site.path("pids");
    script(
        site.dir(),
        "hangs.sh",
        &format!(
            "sleep 300 &\necho \"$$ $!\" > '{}'\nwait\necho finished >> '{}'\n",
            pids.display(),
            pids.display()
        ),
    );
    let printers = [closed_printer()];
    site.write_config_with(
        &printers,
        "\n[alerts]\ncommand = \"hangs.sh\"\nafter = \"1s\"\ntimeout = \"1s\"\n",
    );
    let daemon = site.start();
    daemon.wait_ready();
    let start = Instant::now();
    while !pids.exists() {
        assert!(start.elapsed() < LIMIT, "never ran:\n{}", daemon.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    let started = Instant::now();
    daemon.wait_log("alert not delivered", LIMIT);
    let took = started.elapsed();
    // Unkilled, the script would wait for its `sleep 300`; 8 s leaves room
    // for a loaded machine.
    assert!(
        took < Duration::from_secs(8),
        "killed at the 1 s limit, not later: {took:?}"
    );
    let log = daemon.log();
    let warned = lines_with(
        &log,
        &["<4>alert not delivered: the alert command timed out"],
    );
    assert_eq!(warned.len(), 1, "{log}");
    assert!(
        warned[0].contains("did not finish within 1s: killed"),
        "{}",
        warned[0]
    );
    // The script and its `sleep` are gone (or dead, waiting to be reaped).
    let text = std::fs::read_to_string(&pids).expect("pids");
    let ids: Vec<&str> = text.split_whitespace().take(2).collect();
    assert_eq!(ids.len(), 2, "{text:?}");
    std::thread::sleep(Duration::from_millis(500));
    for pid in ids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .next();
        assert!(
            matches!(state, None | Some("Z")),
            "process {pid} still runs: {stat}"
        );
    }
    std::thread::sleep(Duration::from_secs(2));
    assert!(!std::fs::read_to_string(&pids)
        .unwrap_or_default()
        .contains("finished"));
    assert_eq!(lines_with(&daemon.log(), &["alert not delivered"]).len(), 1);
}

#[test]
fn the_webhook_gets_the_json_over_https_with_the_token_trusted_through_ca_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = Certs::new(dir.path());
    let hook = Webhook::start();
    let front = TlsFront::start(dir.path(), &certs.leaf, hook.port);
    let url = format!("https://127.0.0.1:{}/hooks/tallyd", front.port);
    let site = Site::new(&[]);
    std::fs::write(site.path("alerts-token"), "s3cret-token\n").expect("token");
    let printers = [closed_printer()];
    site.write_config_with(
        &printers,
        &format!(
            "\n[alerts]\nwebhook = \"{url}\"\ntoken_file = \"alerts-token\"\n\
             ca_file = \"{}\"\nafter = \"1s\"\n",
            certs.ca.cert.display()
        ),
    );
    let check = site.cli(&["check-config"]);
    let line = format!(
        "alerts: to webhook {url} (bearer token from token_file), trusting 1 certificate(s) \
         of ca_file {}; after 1s, repeat 3600s, timeout 10s\n",
        certs.ca.cert.display()
    );
    assert!(check.contains(&line), "{line} in {check}");
    assert!(!check.contains("s3cret-token"), "{check}");
    let daemon = site.start();
    daemon.wait_ready();
    let got = hook.wait(1, LIMIT);
    let r = &got[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/hooks/tallyd")
    );
    assert_eq!(r.header("authorization"), Some("Bearer s3cret-token"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let a: serde_json::Value = serde_json::from_str(&r.body).expect("JSON");
    assert_eq!(a["kind"], "printer_down", "{a}");
    assert_eq!(a["subject"], "attic", "{a}");
    assert_eq!(a["state"], "firing", "{a}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(hook.received().len(), 1, "once until it clears");
    let log = daemon.log();
    let sent = lines_with(
        &log,
        &["<6>alert ", "kind=printer_down", "delivered=webhook"],
    );
    assert_eq!(sent.len(), 1, "{log}");
    assert!(!log.contains("s3cret-token"), "{log}");
}

#[test]
fn a_webhook_whose_certificate_is_not_trusted_is_logged_once_and_not_retried() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = Certs::new(dir.path());
    let hook = Webhook::start();
    let front = TlsFront::start(dir.path(), &certs.leaf, hook.port);
    let url = format!("https://127.0.0.1:{}/hook", front.port);
    let site = Site::new(&[]);
    let printers = [closed_printer()];
    site.write_config_with(
        &printers,
        &format!("\n[alerts]\nwebhook = \"{url}\"\nafter = \"1s\"\n"),
    );
    let daemon = site.start();
    daemon.wait_ready();
    daemon.wait_log("alert not delivered", LIMIT);
    std::thread::sleep(Duration::from_secs(3));
    let log = daemon.log();
    let warned = lines_with(&log, &["<4>alert not delivered: the webhook failed"]);
    assert_eq!(warned.len(), 1, "{log}");
    assert!(
        warned[0].contains("certificate not trusted: UnknownIssuer (check [alerts] ca_file)"),
        "{}",
        warned[0]
    );
    assert!(hook.received().is_empty(), "nothing reached the server");
}

#[test]
fn a_webhook_answering_an_error_is_logged_once_and_not_retried() {
    let hook = Webhook::start();
    hook.answer_with(500);
    let url = format!("http://127.0.0.1:{}/hook", hook.port);
    let site = Site::new(&[]);
    let printers = [closed_printer()];
    site.write_config_with(
        &printers,
        &format!("\n[alerts]\nwebhook = \"{url}\"\nafter = \"1s\"\n"),
    );
    let daemon = site.start();
    daemon.wait_ready();
    daemon.wait_log("alert not delivered", LIMIT);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(hook.received().len(), 1, "posted once, not retried");
    let log = daemon.log();
    let warned = lines_with(&log, &["<4>alert not delivered: the webhook failed"]);
    assert_eq!(warned.len(), 1, "{log}");
    assert!(warned[0].contains("answered HTTP 500"), "{}", warned[0]);
}

#[test]
fn a_reload_keeps_what_was_sent_and_sends_new_alerts_through_the_new_command() {
    let site = Site::new(&[]);
    recorder(&site);
    let second = site.path("second.jsonl");
    script(
        site.dir(),
        "second.sh",
        &format!("cat >> '{}'\n", second.display()),
    );
    let printers = [closed_printer()];
    let config = |command: &str| format!("\n[alerts]\ncommand = \"{command}\"\nafter = \"1s\"\n");
    site.write_config_with(&printers, &config("notify.sh"));
    let daemon = site.start();
    daemon.wait_ready();
    let alerts = wait_recorded(&site, &daemon, 1);
    assert_eq!(alerts[0]["state"], "firing");

    // `attic` stays down across the reload: not alerted again; `cellar`,
    // added and down, is alerted through the new command.
    let mut cellar = closed_printer();
    cellar.id = "cellar".into();
    let [attic] = printers;
    site.write_config_with(&[attic, cellar], &config("second.sh"));
    daemon.signal("HUP");
    daemon.wait_log("config reloaded", LIMIT);
    let start = Instant::now();
    while std::fs::read_to_string(&second)
        .unwrap_or_default()
        .is_empty()
    {
        assert!(start.elapsed() < LIMIT, "{}", daemon.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(recorded(&site).len(), 1, "{}", daemon.log());
    let sent = std::fs::read_to_string(&second).unwrap_or_default();
    let lines: Vec<serde_json::Value> = sent
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    assert_eq!(lines.len(), 1, "{sent}");
    assert_eq!(
        (&lines[0]["subject"], &lines[0]["state"]),
        (&"cellar".into(), &"firing".into())
    );
    let log = daemon.log();
    assert_eq!(lines_with(&log, &["<6>alert "]).len(), 2, "{log}");
}

#[test]
fn a_card_reader_gone_for_after_alerts_and_resolves_when_it_is_back() {
    let site = Site::new(&[]);
    recorder(&site);
    let mut door = Pty::start(site.dir(), "door");
    site.write_config_with(
        &[],
        &format!(
            "\n[[readers]]\nid = \"door\"\ndevice = \"{}\"\nframing = \"rdm6300\"\n\
             resource = \"room-a\"\nincrement = \"15m\"\n\
             \n[alerts]\ncommand = \"notify.sh\"\nafter = \"2s\"\n",
            door.reader.display()
        ),
    );
    let daemon = site.start();
    daemon.wait_ready();
    daemon.wait_log("card reader is up reader=door", LIMIT);
    door.unplug();
    let alerts = wait_recorded(&site, &daemon, 1);
    assert_eq!(
        (
            &alerts[0]["kind"],
            &alerts[0]["subject"],
            &alerts[0]["state"]
        ),
        (&"reader_down".into(), &"door".into(), &"firing".into()),
        "{}",
        alerts[0]
    );
    door.replug();
    daemon.wait_log("card reader is back reader=door", LIMIT);
    let alerts = wait_recorded(&site, &daemon, 2);
    assert_eq!(alerts[1]["state"], "resolved", "{}", alerts[1]);
    assert_eq!(alerts.len(), 2, "{alerts:?}");
}

#[test]
fn grants_syncs_failing_for_after_alert_and_a_good_sync_resolves() {
    let site = Site::new(&[]);
    recorder(&site);
    let good = std::fs::read_to_string(site.path("grants.toml")).expect("grants");
    site.write_config_with(&[], "\n[alerts]\ncommand = \"notify.sh\"\nafter = \"2s\"\n");
    // Synced once, then broken: the sync at the next start fails.
    let daemon = site.start();
    daemon.wait_ready();
    drop(daemon);
    std::fs::write(site.path("grants.toml"), "[[member]\n").expect("break grants");
    let daemon = site.start();
    daemon.wait_ready();
    let alerts = wait_recorded(&site, &daemon, 1);
    let a = &alerts[0];
    assert_eq!(
        (&a["kind"], &a["subject"], &a["state"]),
        (&"grants_failing".into(), &"grants".into(), &"firing".into()),
        "{a}"
    );
    std::fs::write(site.path("grants.toml"), good).expect("mend grants");
    daemon.signal("HUP");
    let alerts = wait_recorded(&site, &daemon, 2);
    assert_eq!(alerts[1]["state"], "resolved", "{}", alerts[1]);
}
