//! The alert rules on a fake clock: the real registry, stamped with a time
//! the test moves.

use super::*;
use crate::observe::Observer;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

const RULES: Rules = Rules {
    after: 300,
    repeat: 3600,
    central_lag: 900,
};

/// An observer on a clock the test sets, and the alerter fed from it.
struct World {
    now: Arc<AtomicI64>,
    observer: Observer,
    alerter: Alerter,
}

impl World {
    fn new() -> World {
        let now = Arc::new(AtomicI64::new(1_000_000));
        let clock = now.clone();
        World {
            observer: Observer::new(move || clock.load(Ordering::SeqCst)),
            now,
            alerter: Alerter::default(),
        }
    }

    fn at(&mut self, t: i64) -> &mut World {
        self.now.store(1_000_000 + t, Ordering::SeqCst);
        self
    }

    fn tick(&mut self) -> Vec<(Kind, String, State)> {
        let now = self.observer.now();
        let snap = self.observer.snapshot();
        brief(self.alerter.observe(RULES, &snap, now))
    }

    fn notices(&mut self, rx: &mut tokio::sync::broadcast::Receiver<Notice>) -> Vec<Alert> {
        let now = self.observer.now();
        let mut out = Vec::new();
        while let Ok(n) = rx.try_recv() {
            out.extend(self.alerter.notice(RULES, &n, now));
        }
        out
    }
}

fn brief(alerts: Vec<Alert>) -> Vec<(Kind, String, State)> {
    alerts
        .into_iter()
        .map(|a| (a.kind, a.subject, a.state))
        .collect()
}

fn one(kind: Kind, subject: &str, state: State) -> Vec<(Kind, String, State)> {
    vec![(kind, subject.to_string(), state)]
}

#[test]
fn a_printer_down_for_after_fires_once_and_resolves_once() {
    let mut w = World::new();
    w.at(0).observer.printer_up("lobby");
    w.at(10)
        .observer
        .printer_down("lobby", "connection refused");
    assert!(w.at(11).tick().is_empty());
    assert!(w.at(309).tick().is_empty(), "299 s down is not yet `after`");
    let fired = w.at(310).tick();
    assert_eq!(fired, one(Kind::PrinterDown, "lobby", State::Firing));
    for t in [311, 900, 5000] {
        w.at(t).observer.printer_down("lobby", "still refused");
        assert!(w.at(t).tick().is_empty(), "once until it clears ({t})");
    }
    w.at(5001).observer.printer_up("lobby");
    assert_eq!(
        w.at(5002).tick(),
        one(Kind::PrinterDown, "lobby", State::Resolved)
    );
    assert!(w.at(5003).tick().is_empty());
}

#[test]
fn a_short_outage_alerts_nothing_not_even_resolved() {
    let mut w = World::new();
    w.at(0).observer.printer_down("lobby", "timeout");
    assert!(w.at(299).tick().is_empty());
    w.at(299).observer.printer_up("lobby");
    assert!(w.at(300).tick().is_empty());
    assert!(w.at(10_000).tick().is_empty());
}

#[test]
fn the_alert_carries_since_and_reason() {
    let mut w = World::new();
    w.at(5).observer.reader_down("desk", "device gone");
    w.at(400);
    let snap = w.observer.snapshot();
    let alerts = w.alerter.observe(RULES, &snap, w.observer.now());
    let a = &alerts[0];
    assert_eq!((a.kind, a.subject.as_str()), (Kind::ReaderDown, "desk"));
    assert_eq!((a.since, a.at), (1_000_005, 1_000_400));
    assert_eq!(a.reason, "device gone");
}

#[test]
fn a_flapping_printer_fires_at_most_once_per_repeat() {
    let mut w = World::new();
    w.at(0).observer.printer_down("lobby", "refused");
    assert_eq!(w.at(300).tick().len(), 1);
    w.at(400).observer.printer_up("lobby");
    assert_eq!(
        w.at(400).tick(),
        one(Kind::PrinterDown, "lobby", State::Resolved)
    );
    // Down again, past `after`, but within `repeat` of the last alert.
    w.at(500).observer.printer_down("lobby", "refused");
    assert!(w.at(800).tick().is_empty());
    assert!(w.at(3899).tick().is_empty());
    // Still down when `repeat` is over: it fires then.
    assert_eq!(
        w.at(3900).tick(),
        one(Kind::PrinterDown, "lobby", State::Firing)
    );
    // A second short flap whose firing was never sent resolves silently.
    w.at(4000).observer.printer_up("lobby");
    assert_eq!(w.at(4000).tick().len(), 1, "the sent one resolves");
    w.at(4100).observer.printer_down("lobby", "refused");
    w.at(4500).observer.printer_up("lobby");
    assert!(
        w.at(4500).tick().is_empty(),
        "suppressed episode: no resolved"
    );
}

#[test]
fn a_printer_removed_from_the_config_while_alerted_resolves() {
    let mut w = World::new();
    w.at(0).observer.printer_down("lobby", "refused");
    assert_eq!(w.at(300).tick().len(), 1);
    w.at(301).observer.printer_removed("lobby");
    let alerts = {
        let snap = w.observer.snapshot();
        w.alerter.observe(RULES, &snap, 302)
    };
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].state, State::Resolved);
    assert_eq!(alerts[0].reason, "no longer in the config");
}

#[test]
fn grants_syncs_failing_for_after_fire_and_a_good_sync_resolves() {
    let mut w = World::new();
    w.at(0).observer.grants_synced();
    w.at(100).observer.grants_failed("HTTP 500");
    w.at(350).observer.grants_failed("HTTP 503");
    assert!(w.at(399).tick().is_empty());
    assert_eq!(
        w.at(400).tick(),
        one(Kind::GrantsFailing, "grants", State::Firing)
    );
    w.at(900).observer.grants_synced();
    assert_eq!(
        w.at(900).tick(),
        one(Kind::GrantsFailing, "grants", State::Resolved)
    );
}

#[test]
fn a_failed_backup_fires_at_once_once_and_resolves_when_one_is_written() {
    let mut w = World::new();
    let mut rx = w.observer.subscribe();
    w.at(0).observer.backup_failed("disk full");
    let alerts = w.notices(&mut rx);
    assert_eq!(
        brief(alerts),
        one(Kind::BackupFailed, "backup", State::Firing)
    );
    assert!(w.at(1).tick().is_empty());
    w.at(60).observer.backup_failed("disk full");
    assert!(w.notices(&mut rx).is_empty());
    assert!(w.at(61).tick().is_empty());
    w.at(120).observer.backup_written();
    assert_eq!(
        w.at(121).tick(),
        one(Kind::BackupFailed, "backup", State::Resolved)
    );
}

#[test]
fn every_job_to_review_alerts_once_with_its_printer_and_job() {
    let mut w = World::new();
    let mut rx = w.observer.subscribe();
    w.at(0)
        .observer
        .job_to_review("lobby", 42, Some("mallory".into()), "unknown media");
    w.observer
        .job_to_review("lobby", 43, None, "too many pages");
    let alerts = w.notices(&mut rx);
    assert_eq!(alerts.len(), 2);
    assert_eq!(alerts[0].subject, "lobby/42");
    let job = alerts[0].job.clone().expect("job");
    assert_eq!((job.printer.as_str(), job.job_id), ("lobby", 42));
    assert_eq!(job.owner.as_deref(), Some("mallory"));
    assert_eq!(alerts[1].subject, "lobby/43");
    assert!(w.at(10).tick().is_empty(), "nothing to resolve");
}

#[test]
fn a_task_restarting_three_times_within_after_fires_and_calms_down() {
    let mut w = World::new();
    let mut rx = w.observer.subscribe();
    w.at(0).observer.task_restarted("printer:lobby", "panic");
    w.at(100).observer.task_restarted("printer:lobby", "panic");
    assert!(w.notices(&mut rx).is_empty());
    // The first one is out of the window: still two within `after`.
    w.at(310).observer.task_restarted("printer:lobby", "panic");
    assert!(w.notices(&mut rx).is_empty());
    w.at(320).observer.task_restarted("printer:lobby", "panic");
    let alerts = w.notices(&mut rx);
    assert_eq!(
        brief(alerts.clone()),
        one(Kind::TaskRestarting, "printer:lobby", State::Firing)
    );
    assert_eq!(alerts[0].since, 1_000_100);
    w.at(330).observer.task_restarted("printer:lobby", "panic");
    assert!(w.notices(&mut rx).is_empty(), "once until it calms down");
    assert!(w.at(629).tick().is_empty());
    assert_eq!(
        w.at(630).tick(),
        one(Kind::TaskRestarting, "printer:lobby", State::Resolved)
    );
}

#[test]
fn the_json_names_kind_subject_state_times_site_and_host() {
    let mut w = World::new();
    let mut rx = w.observer.subscribe();
    w.at(0)
        .observer
        .job_to_review("lobby", 42, Some("a\"b\nc".into()), "why");
    let alert = w.notices(&mut rx).remove(0);
    let origin = crate::alerts::Origin {
        site: "Cowork".into(),
        host: "pi".into(),
        tz: chrono_tz::UTC,
    };
    let text = alert.to_json(&origin);
    assert!(!text.contains('\n'), "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(v["kind"], "job_to_review");
    assert_eq!(v["subject"], "lobby/42");
    assert_eq!(v["state"], "firing");
    assert_eq!(v["site"], "Cowork");
    assert_eq!(v["host"], "pi");
    assert_eq!(v["printer"], "lobby");
    assert_eq!(v["job_id"], 42);
    assert_eq!(v["owner"], "a\"b\nc");
    assert_eq!(v["since"], "1970-01-12T13:46:40+00:00");
    assert_eq!(v["time"], v["since"]);
}

#[test]
fn the_json_keys_come_in_the_documented_order() {
    let alert = Alert {
        kind: Kind::PrinterDown,
        subject: "lobby".into(),
        state: State::Firing,
        since: 0,
        reason: "refused".into(),
        at: 300,
        job: None,
    };
    let origin = crate::alerts::Origin {
        site: "Cowork".into(),
        host: "pi".into(),
        tz: chrono_tz::UTC,
    };
    assert_eq!(
        alert.to_json(&origin),
        "{\"kind\":\"printer_down\",\"subject\":\"lobby\",\"state\":\"firing\",\
         \"since\":\"1970-01-01T00:00:00+00:00\",\"reason\":\"refused\",\"site\":\"Cowork\",\
         \"host\":\"pi\",\"time\":\"1970-01-01T00:05:00+00:00\"}"
    );
}

#[test]
fn a_chain_site_lagging_behind_its_centre_alerts_once_and_resolves_once() {
    use crate::observe::CentralBacklog;
    let mut w = World::new();
    let backlog = |n: u64, oldest: Option<i64>| CentralBacklog {
        unacknowledged: n,
        oldest_at: oldest.map(|t| 1_000_000 + t),
    };
    w.at(0).observer.central_backlog(backlog(0, None));
    assert!(w.tick().is_empty(), "nothing waits");
    w.at(10).observer.central_backlog(backlog(3, Some(10)));
    assert!(w.at(909).tick().is_empty(), "899 s old: not yet");
    assert_eq!(
        w.at(910).tick(),
        one(Kind::CentralLagging, "central", State::Firing)
    );
    w.observer.central_backlog(backlog(40, Some(10)));
    assert!(w.at(2000).tick().is_empty(), "once while it lasts");
    // The centre acknowledged the old entries; a newer one waits, young.
    w.observer.central_backlog(backlog(1, Some(1990)));
    assert_eq!(
        w.at(2001).tick(),
        one(Kind::CentralLagging, "central", State::Resolved)
    );
    assert!(w.at(2002).tick().is_empty(), "resolved once");
    w.observer.central_backlog(backlog(0, None));
    assert!(w.at(2003).tick().is_empty());
}
