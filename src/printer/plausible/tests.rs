use super::*;
use crate::printer::jobs::tests::printer;
use crate::printer::jobs::{ABORTED, CANCELED};

fn job(f: impl Fn(&mut Job)) -> Job {
    let mut j = Job {
        id: 7,
        state: COMPLETED,
        ..Job::default()
    };
    f(&mut j);
    j
}

fn reason(v: Verdict) -> String {
    match v {
        Verdict::Review(s) => s.reason,
        other => panic!("expected a review, got {other:?}"),
    }
}

#[test]
fn plausible_jobs_are_charged_and_empty_ones_cost_nothing() {
    let p = printer(false);
    let three = job(|j| {
        j.impressions = Some(3);
        j.impressions_completed = Some(3);
    });
    assert!(matches!(judge(&p, &three), Verdict::Charge(x) if x.cents == 30));
    // A printer that does not say the document's size: only the maximum.
    let unknown = job(|j| j.impressions_completed = Some(1999));
    assert!(matches!(judge(&p, &unknown), Verdict::Charge(_)));
    // Cancelled or aborted with nothing printed: free, no review.
    for state in [CANCELED, ABORTED] {
        let j = job(|j| {
            j.state = state;
            j.impressions = Some(4);
            j.impressions_completed = Some(0);
        });
        assert_eq!(judge(&p, &j), Verdict::Nothing);
    }
    assert_eq!(judge(&p, &job(|_| {})), Verdict::Nothing);
}

#[test]
fn copies_duplex_padding_and_a_small_tolerance_are_allowed() {
    let p = printer(false);
    // 3 pages, 2 copies, two-sided: 4 impressions per copy (blank backs).
    let j = job(|j| {
        j.impressions = Some(3);
        j.copies = Some(2);
        j.sides = Some("two-sided-long-edge".into());
        j.impressions_completed = Some(8);
    });
    assert_eq!(expected(&j), Some(8));
    assert!(matches!(judge(&p, &j), Verdict::Charge(_)));
    let over_by_two = job(|j| {
        j.impressions = Some(3);
        j.impressions_completed = Some(5);
    });
    assert!(matches!(judge(&p, &over_by_two), Verdict::Charge(_)));
    let over_by_three = job(|j| {
        j.impressions = Some(3);
        j.impressions_completed = Some(6);
    });
    assert_eq!(
        reason(judge(&p, &over_by_three)),
        "6 impressions, more than its document's 3"
    );
}

#[test]
fn absurd_counts_go_to_review_with_what_was_reported() {
    let p = printer(false);
    let huge = job(|j| {
        j.impressions = Some(6);
        j.impressions_completed = Some(2_147_483_647);
    });
    let Verdict::Review(s) = judge(&p, &huge) else {
        panic!("not reviewed");
    };
    assert_eq!(
        s.reason,
        "2147483647 impressions, over this printer's max_job_impressions of 2000"
    );
    assert_eq!(
        s.reported,
        "job-impressions-completed=2147483647, job-impressions=6"
    );
    assert_eq!(s.proposed, Some(6));
    let negative = job(|j| j.impressions_completed = Some(-3));
    assert_eq!(reason(judge(&p, &negative)), "a count is negative");
    let negative_col = job(|j| j.impressions_col = Some((5, -2)));
    assert_eq!(reason(judge(&p, &negative_col)), "a count is negative");
    let garbled = job(|j| {
        j.impressions_completed = Some(3);
        j.garbled = vec!["job-media-sheets-completed"];
    });
    assert_eq!(
        reason(judge(&p, &garbled)),
        "`job-media-sheets-completed` is not an integer"
    );
}

#[test]
fn a_completed_job_that_printed_nothing_of_its_pages_is_reviewed() {
    let p = printer(false);
    let j = job(|j| {
        j.impressions = Some(12);
        j.impressions_completed = Some(0);
    });
    let Verdict::Review(s) = judge(&p, &j) else {
        panic!("not reviewed");
    };
    assert_eq!(
        s.reason,
        "completed with nothing printed, but its document has 12 impressions"
    );
    assert_eq!(s.proposed, Some(12));
}

#[test]
fn a_job_that_would_cost_more_than_the_bound_is_reviewed_not_charged() {
    let mut p = printer(false);
    for media in p.prices.media.values_mut() {
        media.mono.one_sided = crate::money::MAX_UNITS;
    }
    let one = job(|j| {
        j.impressions = Some(1);
        j.impressions_completed = Some(1);
    });
    assert!(matches!(judge(&p, &one), Verdict::Charge(x) if x.cents == crate::money::MAX_UNITS));
    let two = job(|j| {
        j.impressions = Some(2);
        j.impressions_completed = Some(2);
    });
    assert_eq!(
        reason(judge(&p, &two)),
        "2 impressions cannot be priced (too large)"
    );
}
