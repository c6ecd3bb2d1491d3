//! When a scheduled job (a backup) is due, in the site's time zone: a pure
//! function. The slots are `at` local time each day and, for an interval
//! under a day, every interval after it until the next day's `at` (03:00
//! every 6h: 03:00, 09:00, 15:00, 21:00). The next run is the first slot
//! that is at least most of an interval after the last run: an interval
//! less half of it, or less 12 hours for intervals over a day, so a run a
//! little late, or a day of 23 or 25 hours, keeps the schedule.

use super::{local_date, local_to_ts};
use chrono::{Days, NaiveTime};
use chrono_tz::Tz;
use std::time::Duration;

/// The first slot at or after `target` (unix seconds).
pub fn first_slot(tz: Tz, at: NaiveTime, every: Duration, target: i64) -> i64 {
    let every = every.as_secs().max(60) as i64;
    let mut day = local_date(tz, target)
        .checked_sub_days(Days::new(1))
        .unwrap_or_else(|| local_date(tz, target));
    loop {
        let next = day.checked_add_days(Days::new(1)).unwrap_or(day);
        let (start, end) = (
            local_to_ts(tz, day.and_time(at)),
            local_to_ts(tz, next.and_time(at)),
        );
        // An interval of a day or more has one slot a day: `at`.
        let step = if every >= 86_400 { end - start } else { every };
        let mut slot = start;
        while slot < end {
            if slot >= target {
                return slot;
            }
            slot = slot.saturating_add(step.max(1));
        }
        if next == day || end <= start {
            return target;
        }
        day = next;
    }
}

/// When the run after one at `last` is due.
pub fn next_after(tz: Tz, at: NaiveTime, every: Duration, last: i64) -> i64 {
    let secs = every.as_secs() as i64;
    let slack = (secs / 2).min(12 * 3600);
    first_slot(tz, at, every, last.saturating_add(secs - slack))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{format_rfc3339, parse_datetime};

    fn lisbon() -> Tz {
        "Europe/Lisbon".parse().expect("zone")
    }

    fn t(text: &str) -> i64 {
        parse_datetime(lisbon(), text).expect("time")
    }

    fn show(ts: i64) -> String {
        format_rfc3339(lisbon(), ts)
    }

    const THREE: NaiveTime = NaiveTime::from_hms_opt(3, 0, 0).unwrap();
    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn daily_at_three_local() {
        assert_eq!(
            show(first_slot(lisbon(), THREE, DAY, t("2026-11-30 10:00"))),
            "2026-12-01T03:00:00+00:00"
        );
        assert_eq!(
            show(first_slot(lisbon(), THREE, DAY, t("2026-11-30 02:59"))),
            "2026-11-30T03:00:00+00:00"
        );
        // A run at 03:00:05, or a late one at 10:00, is next due tomorrow at 03:00.
        assert_eq!(
            show(next_after(lisbon(), THREE, DAY, t("2026-11-30 03:00:05"))),
            "2026-12-01T03:00:00+00:00"
        );
        assert_eq!(
            show(next_after(lisbon(), THREE, DAY, t("2026-11-30 10:00"))),
            "2026-12-01T03:00:00+00:00"
        );
        // Across the spring change (a 23-hour day), still 03:00 local.
        assert_eq!(
            show(next_after(lisbon(), THREE, DAY, t("2026-03-28 03:00:05"))),
            "2026-03-29T03:00:00+01:00"
        );
        assert_eq!(
            show(next_after(lisbon(), THREE, DAY, t("2026-10-24 03:00:05"))),
            "2026-10-25T03:00:00+00:00"
        );
    }

    #[test]
    fn shorter_and_longer_intervals() {
        let six = Duration::from_secs(6 * 3600);
        assert_eq!(
            show(first_slot(lisbon(), THREE, six, t("2026-11-30 00:30"))),
            "2026-11-30T03:00:00+00:00"
        );
        assert_eq!(
            show(next_after(lisbon(), THREE, six, t("2026-11-30 09:00:05"))),
            "2026-11-30T15:00:00+00:00"
        );
        assert_eq!(
            show(next_after(lisbon(), THREE, six, t("2026-11-30 21:00:05"))),
            "2026-12-01T03:00:00+00:00"
        );
        let week = Duration::from_secs(7 * 86_400);
        assert_eq!(
            show(next_after(lisbon(), THREE, week, t("2026-11-30 03:00:05"))),
            "2026-12-07T03:00:00+00:00"
        );
        let hour = Duration::from_secs(3600);
        assert_eq!(
            show(next_after(lisbon(), THREE, hour, t("2026-11-30 04:00:05"))),
            "2026-11-30T05:00:00+00:00"
        );
    }
}
