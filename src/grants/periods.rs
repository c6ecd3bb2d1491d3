//! Renewal periods and validity durations, in the site's time zone.
//!
//! A plan's periods are anchored on the subscription start: period `n` starts
//! at local midnight of `start + n × step`, computed from the anchor every
//! time (never month after month), so a plan started on 31 January renews on
//! 28/29 February, 31 March, 30 April.

use crate::clock::local_midnight;
use chrono::{Days, Months, NaiveDate};
use chrono_tz::Tz;
use serde::Serialize;

/// How often a plan renews.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Frequency {
    Weekly,
    Monthly,
    Quarterly,
    Yearly,
}

/// A length of time in calendar units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Span {
    Days(u32),
    Weeks(u32),
    Months(u32),
    Years(u32),
}

impl Span {
    /// Parses `45 days`, `2 weeks`, `3 months`, `1 year` (singular or plural).
    pub fn parse(text: &str) -> Option<Span> {
        let mut parts = text.split_whitespace();
        let n: u32 = parts.next()?.parse().ok()?;
        let unit = parts.next()?;
        if parts.next().is_some() || n == 0 {
            return None;
        }
        match unit.trim_end_matches('s') {
            "day" => Some(Span::Days(n)),
            "week" => Some(Span::Weeks(n)),
            "month" => Some(Span::Months(n)),
            "year" => Some(Span::Years(n)),
            _ => None,
        }
    }

    /// `date` moved forward by `times` of this span; month arithmetic clamps
    /// to the month's last day.
    pub fn add_to(self, date: NaiveDate, times: u32) -> Option<NaiveDate> {
        match self {
            Span::Days(d) => date.checked_add_days(Days::new(u64::from(d) * u64::from(times))),
            Span::Weeks(w) => date.checked_add_days(Days::new(7 * u64::from(w) * u64::from(times))),
            Span::Months(m) => date.checked_add_months(Months::new(m.checked_mul(times)?)),
            Span::Years(y) => {
                date.checked_add_months(Months::new(y.checked_mul(12)?.checked_mul(times)?))
            }
        }
    }
}

impl Frequency {
    pub fn span(self) -> Span {
        match self {
            Frequency::Weekly => Span::Weeks(1),
            Frequency::Monthly => Span::Months(1),
            Frequency::Quarterly => Span::Months(3),
            Frequency::Yearly => Span::Years(1),
        }
    }
}

/// Local date on which period `n` of a subscription anchored at `start` begins.
pub fn period_date(start: NaiveDate, freq: Frequency, n: u32) -> Option<NaiveDate> {
    freq.span().add_to(start, n)
}

/// `[start, end)` of period `n`, as unix seconds at local midnights in `tz`.
pub fn period_bounds(tz: Tz, start: NaiveDate, freq: Frequency, n: u32) -> Option<(i64, i64)> {
    let from = period_date(start, freq, n)?;
    let to = period_date(start, freq, n.checked_add(1)?)?;
    Some((local_midnight(tz, from), local_midnight(tz, to)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("valid date")
    }

    #[test]
    fn periods_are_anchored_on_the_start_never_month_after_month() {
        let start = d(2026, 1, 31);
        let dates: Vec<NaiveDate> = (0..5)
            .filter_map(|n| period_date(start, Frequency::Monthly, n))
            .collect();
        assert_eq!(
            dates,
            vec![
                d(2026, 1, 31),
                d(2026, 2, 28),
                d(2026, 3, 31),
                d(2026, 4, 30),
                d(2026, 5, 31)
            ]
        );
        assert_eq!(
            period_date(d(2028, 1, 31), Frequency::Monthly, 1),
            Some(d(2028, 2, 29))
        );
    }

    #[test]
    fn weekly_quarterly_yearly() {
        assert_eq!(
            period_date(d(2026, 12, 28), Frequency::Weekly, 1),
            Some(d(2027, 1, 4))
        );
        assert_eq!(
            period_date(d(2026, 11, 30), Frequency::Quarterly, 1),
            Some(d(2027, 2, 28))
        );
        assert_eq!(
            period_date(d(2028, 2, 29), Frequency::Yearly, 1),
            Some(d(2029, 2, 28))
        );
        assert_eq!(
            period_date(d(2028, 2, 29), Frequency::Yearly, 4),
            Some(d(2032, 2, 29))
        );
    }

    #[test]
    fn period_bounds_are_local_midnights_across_dst() {
        let tz: Tz = "Europe/Lisbon".parse().expect("zone");
        let (from, to) = period_bounds(tz, d(2026, 3, 15), Frequency::Monthly, 0).expect("bounds");
        // 15 March is winter time (UTC+0), 15 April summer time (UTC+1): the
        // period is one hour short of 31 days but both ends are midnight.
        assert_eq!(to - from, 31 * 86_400 - 3_600);
        assert_eq!(
            crate::clock::format_rfc3339(tz, to),
            "2026-04-15T00:00:00+01:00"
        );
    }

    #[test]
    fn spans_parse() {
        assert_eq!(Span::parse("45 days"), Some(Span::Days(45)));
        assert_eq!(Span::parse("1 week"), Some(Span::Weeks(1)));
        assert_eq!(Span::parse("3 months"), Some(Span::Months(3)));
        assert_eq!(Span::parse("2 years"), Some(Span::Years(2)));
        assert_eq!(Span::parse("3 fortnights"), None);
        assert_eq!(Span::parse("0 days"), None);
        assert_eq!(Span::parse("months"), None);
    }
}
