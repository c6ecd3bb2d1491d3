//! Calendar arithmetic in the site's time zone: month bounds for reports and
//! overage caps, and the dates and times managers type on the command line.
//! Also [`Clock`], where the daemon reads the time: passed in by whoever
//! starts it, so tests can move time without production code reading a
//! test clock from anywhere; and [`guard`], the pure rule that says when a
//! wall-clock reading cannot be trusted.

pub mod guard;
pub mod schedule;

use chrono::{DateTime, Datelike, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use std::sync::Arc;

/// Unix seconds of a local midnight, taking the earlier instant when the
/// clocks go back and the first instant after the gap when they go forward.
pub fn local_midnight(tz: Tz, date: NaiveDate) -> i64 {
    local_to_ts(tz, date.and_time(chrono::NaiveTime::MIN))
}

/// Unix seconds of a local wall-clock time in `tz` (see [`local_midnight`]).
pub fn local_to_ts(tz: Tz, local: NaiveDateTime) -> i64 {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => t.timestamp(),
        LocalResult::Ambiguous(early, _) => early.timestamp(),
        // In a DST gap: walk forward minute by minute to the first real time.
        LocalResult::None => {
            let mut probe = local;
            for _ in 0..(24 * 60) {
                probe += chrono::Duration::minutes(1);
                if let Some(t) = tz.from_local_datetime(&probe).earliest() {
                    return t.timestamp();
                }
            }
            local.and_utc().timestamp()
        }
    }
}

/// The local date of an instant.
pub fn local_date(tz: Tz, ts: i64) -> NaiveDate {
    utc(ts).with_timezone(&tz).date_naive()
}

pub fn utc(ts: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(ts, 0).unwrap_or(DateTime::UNIX_EPOCH)
}

/// First day of the month after `date`'s month.
fn next_month(date: NaiveDate) -> NaiveDate {
    let (y, m) = if date.month() == 12 {
        (date.year() + 1, 1)
    } else {
        (date.year(), date.month() + 1)
    };
    NaiveDate::from_ymd_opt(y, m, 1).unwrap_or(date)
}

/// `[start, end)` of calendar month `year-month` in `tz`, as unix seconds.
pub fn month_bounds(tz: Tz, year: i32, month: u32) -> Option<(i64, i64)> {
    let first = NaiveDate::from_ymd_opt(year, month, 1)?;
    Some((
        local_midnight(tz, first),
        local_midnight(tz, next_month(first)),
    ))
}

/// Start of the calendar month (in `tz`) that contains `ts`.
pub fn month_start(tz: Tz, ts: i64) -> i64 {
    let d = local_date(tz, ts);
    let first = d.with_day(1).unwrap_or(d);
    local_midnight(tz, first)
}

/// Parses `YYYY-MM`.
pub fn parse_month(text: &str) -> Option<(i32, u32)> {
    let (y, m) = text.trim().split_once('-')?;
    if y.len() != 4 || m.len() != 2 {
        return None;
    }
    let y: i32 = y.parse().ok()?;
    let m: u32 = m.parse().ok()?;
    NaiveDate::from_ymd_opt(y, m, 1).map(|_| (y, m))
}

/// Parses a date (`2026-11-03`, meaning its local midnight) or a date and time
/// (`2026-11-03T14:30`, `2026-11-03 14:30:05`, local), or RFC 3339 with an
/// offset (`2026-11-03T14:30:00Z`).
pub fn parse_datetime(tz: Tz, text: &str) -> Option<i64> {
    let t = text.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Some(dt.timestamp());
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(local) = NaiveDateTime::parse_from_str(t, format) {
            return Some(local_to_ts(tz, local));
        }
    }
    NaiveDate::parse_from_str(t, "%Y-%m-%d")
        .ok()
        .map(|d| local_midnight(tz, d))
}

/// Parses a date only (`2026-11-03`).
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").ok()
}

/// Formats an instant as local `YYYY-MM-DD HH:MM` for tables.
pub fn format_local(tz: Tz, ts: i64) -> String {
    utc(ts)
        .with_timezone(&tz)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

/// Formats an instant as RFC 3339 with the local offset, for JSON and CSV.
pub fn format_rfc3339(tz: Tz, ts: i64) -> String {
    utc(ts).with_timezone(&tz).to_rfc3339()
}

/// Now, in unix seconds.
/// A span of seconds as people read it: `45 s`, `12 min`, `3 h`, `2 d`
/// (whole units, rounded down).
pub fn format_ago(secs: i64) -> String {
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} d", s / 86_400),
    }
}

pub fn now() -> i64 {
    Utc::now().timestamp()
}

/// The two clocks the daemon reads: the wall clock, which dates ledger rows,
/// and the boot clock, monotonic and unaffected by wall-clock jumps, which
/// room sessions are measured on.
pub trait TimeSource: Send + Sync {
    /// Unix seconds.
    fn wall(&self) -> i64;
    /// Milliseconds since boot.
    fn boot_ms(&self) -> i64;
    /// Whether time-driven actions (expiry, period issue, timeouts) may go
    /// by the wall clock now. The system clocks always say yes; the daemon's
    /// guard says no while it judges the wall clock wrong (see [`guard`]).
    fn trusted(&self) -> bool {
        true
    }
}

/// The time source a daemon runs on: cheap to clone, shared by every task.
/// Production uses [`Clock::system`]; tests pass their own [`TimeSource`].
#[derive(Clone)]
pub struct Clock(Arc<dyn TimeSource>);

impl Clock {
    /// The system's wall clock and `/proc/uptime`.
    pub fn system() -> Clock {
        Clock(Arc::new(SystemClocks))
    }

    pub fn new(source: impl TimeSource + 'static) -> Clock {
        Clock(Arc::new(source))
    }

    /// Unix seconds.
    pub fn wall(&self) -> i64 {
        self.0.wall()
    }

    /// Milliseconds since boot.
    pub fn boot_ms(&self) -> i64 {
        self.0.boot_ms()
    }

    /// See [`TimeSource::trusted`].
    pub fn trusted(&self) -> bool {
        self.0.trusted()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clock")
            .field("wall", &self.wall())
            .field("boot_ms", &self.boot_ms())
            .finish()
    }
}

struct SystemClocks;

impl TimeSource for SystemClocks {
    fn wall(&self) -> i64 {
        now()
    }

    fn boot_ms(&self) -> i64 {
        boot_ms()
    }
}

/// This boot's id (`/proc/sys/kernel/random/boot_id`): it changes at every
/// boot, so boot-clock readings compare only when their ids match. Empty
/// when it cannot be read, which matches nothing.
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// `/proc/uptime` ("12345.67 ...") as whole milliseconds, without floats.
fn boot_ms() -> i64 {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(uptime_ms))
        .unwrap_or(0)
}

fn uptime_ms(text: &str) -> Option<i64> {
    let (secs, frac) = text.split_once('.').unwrap_or((text, ""));
    let secs: i64 = secs.parse().ok()?;
    let frac: String = frac.chars().chain("000".chars()).take(3).collect();
    let ms: i64 = frac.parse().ok()?;
    secs.checked_mul(1000)?.checked_add(ms)
}

/// Test hooks only (the `test-hooks` feature, never in a release build): the
/// system clocks moved by what a file says, read at every reading, so a test
/// can move a running daemon's time. `N` (whole seconds): time passed, both
/// clocks N seconds ahead. `N W`: as `N`, and the wall clock alone stepped
/// W seconds more (negative: back), as a wrong clock or a clock fix would.
/// No file, or one that does not parse: the real clocks.
#[cfg(feature = "test-hooks")]
pub struct TestClockFile(pub std::path::PathBuf);

#[cfg(feature = "test-hooks")]
impl TestClockFile {
    /// (passed, wall step) in seconds.
    fn offsets(&self) -> (i64, i64) {
        let text = std::fs::read_to_string(&self.0).unwrap_or_default();
        let mut parts = text.split_whitespace().map(|p| p.parse::<i64>().ok());
        match (parts.next().flatten(), parts.next().flatten()) {
            (Some(passed), step) => (passed, step.unwrap_or(0)),
            (None, _) => (0, 0),
        }
    }
}

#[cfg(feature = "test-hooks")]
impl TimeSource for TestClockFile {
    fn wall(&self) -> i64 {
        let (passed, step) = self.offsets();
        now() + passed + step
    }

    fn boot_ms(&self) -> i64 {
        boot_ms() + self.offsets().0 * 1000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn month_bounds_follow_the_local_calendar() {
        let tz: Tz = "Europe/Lisbon".parse().expect("known zone");
        let (start, end) = month_bounds(tz, 2026, 3).expect("valid month");
        assert_eq!(format_rfc3339(tz, start), "2026-03-01T00:00:00+00:00");
        // Lisbon moves to summer time on the last Sunday of March.
        assert_eq!(format_rfc3339(tz, end), "2026-04-01T00:00:00+01:00");
        let (_, dec_end) = month_bounds(tz, 2026, 12).expect("valid month");
        assert_eq!(format_rfc3339(tz, dec_end), "2027-01-01T00:00:00+00:00");
    }

    #[test]
    fn typed_dates_are_local() {
        let tz: Tz = "America/New_York".parse().expect("known zone");
        let ts = parse_datetime(tz, "2026-11-03").expect("date parses");
        assert_eq!(format_rfc3339(tz, ts), "2026-11-03T00:00:00-05:00");
        let ts = parse_datetime(tz, "2026-07-01 09:30").expect("date-time parses");
        assert_eq!(format_rfc3339(tz, ts), "2026-07-01T09:30:00-04:00");
        assert_eq!(parse_datetime(tz, "2026-13-01"), None);
        assert_eq!(parse_datetime(tz, "yesterday"), None);
    }

    #[test]
    fn months_parse_strictly() {
        assert_eq!(parse_month("2026-02"), Some((2026, 2)));
        assert_eq!(parse_month("2026-2"), None);
        assert_eq!(parse_month("2026-13"), None);
    }

    #[test]
    fn uptime_is_read_as_integer_milliseconds() {
        assert_eq!(uptime_ms("12345.67"), Some(12_345_670));
        assert_eq!(uptime_ms("0.05"), Some(50));
        assert_eq!(uptime_ms("7"), Some(7_000));
        assert_eq!(uptime_ms("x.1"), None);
    }

    #[test]
    fn a_time_in_the_spring_gap_moves_forward() {
        let tz: Tz = "Europe/Lisbon".parse().expect("known zone");
        let ts = parse_datetime(tz, "2026-03-29 01:30").expect("parses");
        assert_eq!(format_rfc3339(tz, ts), "2026-03-29T02:00:00+01:00");
    }
}
