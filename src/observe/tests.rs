use super::*;
use std::sync::atomic::{AtomicI64, Ordering};

fn at(clock: &Arc<AtomicI64>) -> Observer {
    let c = clock.clone();
    Observer::new(move || c.load(Ordering::SeqCst))
}

#[test]
fn a_component_keeps_the_time_it_went_down_while_it_stays_down() {
    let clock = Arc::new(AtomicI64::new(100));
    let o = at(&clock);
    o.printer_known("lobby");
    assert_eq!(o.snapshot().printers["lobby"].up, None);
    clock.store(110, Ordering::SeqCst);
    o.printer_down("lobby", "connection refused");
    clock.store(170, Ordering::SeqCst);
    o.printer_down("lobby", "timed out");
    let down = &o.snapshot().printers["lobby"];
    assert_eq!((down.up, down.since), (Some(false), 110));
    assert_eq!(down.reason.as_deref(), Some("timed out"));
    clock.store(200, Ordering::SeqCst);
    o.printer_up("lobby");
    let up = &o.snapshot().printers["lobby"];
    assert_eq!(
        (up.up, up.since, up.reason.clone()),
        (Some(true), 200, None)
    );
    o.printer_removed("lobby");
    assert!(o.snapshot().printers.is_empty());
}

#[test]
fn grants_failing_since_is_the_first_failure_and_a_success_clears_it() {
    let clock = Arc::new(AtomicI64::new(10));
    let o = at(&clock);
    o.grants_synced();
    clock.store(20, Ordering::SeqCst);
    o.grants_failed("404");
    clock.store(30, Ordering::SeqCst);
    o.grants_failed("timeout");
    let g = o.snapshot().grants;
    assert_eq!(
        (g.last_good, g.failing_since, g.failed),
        (Some(10), Some(20), 2)
    );
    assert_eq!(g.last_error.as_deref(), Some("timeout"));
    o.grants_synced();
    let g = o.snapshot().grants;
    assert_eq!(
        (g.last_good, g.failing_since, g.succeeded),
        (Some(30), None, 2)
    );
}

#[test]
fn jobs_are_tallied_per_printer_and_outcome_and_reviews_are_notified() {
    let o = Observer::default();
    let mut notices = o.subscribe();
    o.job_recorded("lobby", Outcome::Charged, 3, 45);
    o.job_recorded("lobby", Outcome::Charged, 1, 15);
    o.job_to_review("lobby", 7, Some("alice".into()), "impressions absurd");
    let jobs = o.snapshot().jobs;
    let charged = jobs[&("lobby".to_string(), Outcome::Charged)];
    assert_eq!(
        (charged.jobs, charged.impressions, charged.cents),
        (2, 4, 60)
    );
    assert_eq!(jobs[&("lobby".to_string(), Outcome::Review)].jobs, 1);
    match notices.try_recv() {
        Ok(Notice::JobToReview {
            printer,
            job_id,
            owner,
            ..
        }) => {
            assert_eq!(
                (printer.as_str(), job_id, owner.as_deref()),
                ("lobby", 7, Some("alice"))
            )
        }
        other => panic!("expected a review notice, got {other:?}"),
    }
}

#[test]
fn restarts_and_failed_backups_are_counted_and_notified() {
    let o = Observer::default();
    let mut notices = o.subscribe();
    o.task_restarted("printer:lobby", "panicked: boom");
    o.task_restarted("printer:lobby", "panicked: boom");
    o.backup_failed("disk full");
    let s = o.snapshot();
    assert_eq!(s.restarts["printer:lobby"], 2);
    assert_eq!(
        (s.backups.failed, s.backups.last_error.as_deref()),
        (1, Some("disk full"))
    );
    let got: Vec<Notice> = std::iter::from_fn(|| notices.try_recv().ok()).collect();
    assert!(
        matches!(&got[1], Notice::TaskRestarted { restarts: 2, .. }),
        "{got:?}"
    );
    assert!(matches!(&got[2], Notice::BackupFailed { error, .. } if error == "disk full"));
}

#[test]
fn commit_latency_is_counted_in_its_bucket() {
    let mut l = Latency::default();
    l.record(Duration::from_micros(300));
    l.record(Duration::from_millis(3));
    l.record(Duration::from_secs(10));
    let b = l.buckets();
    assert_eq!(b.len(), LATENCY_BUCKETS.len() + 1);
    assert_eq!((b[0], b[2], b[3]), ((0.0005, 1), (0.0025, 0), (0.005, 1)));
    assert_eq!(b.last(), Some(&(f64::INFINITY, 1)));
    assert_eq!(l.count, 3);
}
