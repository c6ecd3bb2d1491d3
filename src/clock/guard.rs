//! The clock rule, pure: when a wall-clock reading cannot be trusted.
//!
//! A wrong wall clock must not destroy credit: a clock a year ahead would
//! expire every current lot, issue next year's plan periods and cancel every
//! held job. So a reading is judged against two witnesses before anything
//! time-driven goes by it:
//!
//! - the boot clock (monotonic, deaf to wall-clock steps): on the same boot,
//!   since the last reading that was trusted (the *anchor*), the wall clock
//!   must have moved as the boot clock did, give or take [`TOLERANCE_SECS`];
//! - the ledger's newest row dated by a clock reading: the wall clock must
//!   not be more than [`TOLERANCE_SECS`] earlier.
//!
//! The tolerance lets an NTP correction of a few seconds pass without an
//! alarm; every row is still dated no earlier than the newest (the daemon's
//! guard clamps). `tallyd expire` applies [`judge`] once; the daemon keeps
//! [`Witnesses`] and judges every reading.
//!
//! A clock that stepped is held until it agrees again. But the anchor can be
//! the wrong one: a machine without a real-time clock starts on a stale
//! time, the daemon trusts it (nothing says otherwise), and NTP then steps it
//! forward. So a stepped clock that then runs steadily with the boot clock
//! for [`ACCEPT_AFTER_SECS`], and is not earlier than the newest row, is
//! accepted. Earlier than the newest row is never accepted by waiting: a
//! clock that lost its time must not undo what the ledger already holds.

/// How far (seconds) the wall clock may stray from what the boot clock and
/// the ledger say before it is judged wrong.
pub const TOLERANCE_SECS: i64 = 5 * 60;

/// How long (seconds) a wall clock that stepped must run steadily with the
/// boot clock before it is accepted: long enough for a manager to see the
/// ERROR and fix a clock set wrong, short enough that a clock NTP fixed
/// after start-up holds expiry and period issue for a day at most.
pub const ACCEPT_AFTER_SECS: i64 = 24 * 3600;

/// One reading of both clocks, on one boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    /// Unix seconds.
    pub wall: i64,
    /// Milliseconds since boot.
    pub boot_ms: i64,
}

/// A trusted reading remembered in the ledger, and the boot it was on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    pub wall: i64,
    pub boot_ms: i64,
    pub boot_id: String,
}

impl Mark {
    /// The mark as an anchor for readings on boot `boot_id`: only on the
    /// same boot do two boot-clock readings compare.
    pub fn anchor_on(&self, boot_id: &str) -> Option<Reading> {
        (!boot_id.is_empty() && self.boot_id == boot_id).then_some(Reading {
            wall: self.wall,
            boot_ms: self.boot_ms,
        })
    }
}

/// What a reading is judged to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The wall clock agrees with the boot clock and the ledger.
    Agrees,
    /// Since the anchor the wall clock moved more than the tolerance away
    /// from the boot clock, which puts now at `expected`.
    Stepped { expected: i64 },
    /// The wall clock is more than the tolerance earlier than the ledger's
    /// newest row, dated `newest`.
    BeforeNewestRow { newest: i64 },
}

impl Verdict {
    pub fn agrees(self) -> bool {
        self == Verdict::Agrees
    }

    /// The best guess at the time now when the wall clock reads `wall`: the
    /// wall clock when it agrees; what the boot clock says since the anchor
    /// when it stepped; the newest row when it is earlier than that.
    pub fn best_estimate(self, wall: i64) -> i64 {
        match self {
            Verdict::Agrees => wall,
            Verdict::Stepped { expected } => expected,
            Verdict::BeforeNewestRow { newest } => newest,
        }
    }
}

/// Where the wall clock should be at `boot_ms` if it moved as the boot clock
/// did since `anchor`.
pub fn expected_wall(anchor: Reading, boot_ms: i64) -> i64 {
    let elapsed = boot_ms.saturating_sub(anchor.boot_ms).div_euclid(1000);
    anchor.wall.saturating_add(elapsed)
}

/// Judges `now` against the `anchor` (the last trusted reading on this boot,
/// if any) and the ledger's newest row dated by a clock reading (if any).
/// A step is checked first: when both rules fail, the boot clock gives the
/// better estimate.
pub fn judge(now: Reading, anchor: Option<Reading>, newest_row: Option<i64>) -> Verdict {
    if let Some(anchor) = anchor {
        let expected = expected_wall(anchor, now.boot_ms);
        if now.wall.abs_diff(expected) > TOLERANCE_SECS.unsigned_abs() {
            return Verdict::Stepped { expected };
        }
    }
    match newest_row {
        Some(newest) if now.wall < newest.saturating_sub(TOLERANCE_SECS) => {
            Verdict::BeforeNewestRow { newest }
        }
        _ => Verdict::Agrees,
    }
}

/// What a reading came to, for whoever acts on it (and logs it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The wall clock agrees: go by it.
    Trusted,
    /// The wall clock stepped and has since run steadily for
    /// [`ACCEPT_AFTER_SECS`]: from now on it is the anchor. `expected` is
    /// where the old anchor put now.
    Accepted { expected: i64 },
    /// The wall clock is judged wrong: hold what goes by it.
    Held(Verdict),
}

impl Outcome {
    pub fn trusted(self) -> bool {
        !matches!(self, Outcome::Held(_))
    }

    /// The best guess at the time now when the wall clock reads `wall`.
    pub fn best_estimate(self, wall: i64) -> i64 {
        match self {
            Outcome::Held(verdict) => verdict.best_estimate(wall),
            Outcome::Trusted | Outcome::Accepted { .. } => wall,
        }
    }
}

/// The witnesses a running daemon judges each reading by, and how long a
/// stepped clock has been steady.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Witnesses {
    /// The last trusted reading on this boot.
    pub anchor: Option<Reading>,
    /// The ledger's newest row dated by a clock reading.
    pub newest_row: Option<i64>,
    /// The first reading of the current step, while the clock has run
    /// steadily since.
    stepped_since: Option<Reading>,
}

impl Witnesses {
    pub fn new(anchor: Option<Reading>, newest_row: Option<i64>) -> Witnesses {
        Witnesses {
            anchor,
            newest_row,
            stepped_since: None,
        }
    }

    /// A row dated `at` by a clock reading was found in the ledger.
    pub fn saw_row(&mut self, at: i64) {
        self.newest_row = self.newest_row.max(Some(at));
    }

    /// Judges `now`; a trusted reading becomes the anchor. A boot clock
    /// that cannot be read (0) anchors nothing: only the newest row judges.
    pub fn judge(&mut self, now: Reading) -> Outcome {
        let has_boot = now.boot_ms > 0;
        let verdict = judge(now, self.anchor.filter(|_| has_boot), self.newest_row);
        let Verdict::Stepped { expected } = verdict else {
            self.stepped_since = None;
            if verdict.agrees() {
                if has_boot {
                    self.anchor = Some(now);
                }
                return Outcome::Trusted;
            }
            return Outcome::Held(verdict);
        };
        let first = match self.stepped_since {
            Some(first) if steady(first, now) => first,
            _ => now,
        };
        self.stepped_since = Some(first);
        let waited = now.boot_ms.saturating_sub(first.boot_ms) / 1000;
        if waited >= ACCEPT_AFTER_SECS && judge(now, None, self.newest_row).agrees() {
            self.anchor = Some(now);
            self.stepped_since = None;
            return Outcome::Accepted { expected };
        }
        Outcome::Held(verdict)
    }
}

/// Whether the wall clock moved with the boot clock from `first` to `now`.
fn steady(first: Reading, now: Reading) -> bool {
    now.wall.abs_diff(expected_wall(first, now.boot_ms)) <= TOLERANCE_SECS.unsigned_abs()
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_796_000_000;
    const YEAR: i64 = 365 * 24 * 3600;

    fn at(wall: i64, boot_s: i64) -> Reading {
        Reading {
            wall,
            boot_ms: boot_s * 1000,
        }
    }

    #[test]
    fn a_clock_that_moved_with_the_boot_clock_agrees() {
        let anchor = at(T, 100);
        assert_eq!(
            judge(at(T + 3600, 3700), Some(anchor), Some(T)),
            Verdict::Agrees
        );
        // An NTP correction of a few seconds either way is not a step.
        assert_eq!(
            judge(at(T + 3590, 3700), Some(anchor), Some(T)),
            Verdict::Agrees
        );
        assert_eq!(
            judge(at(T + 3900, 3700), Some(anchor), Some(T)),
            Verdict::Agrees
        );
    }

    #[test]
    fn a_wall_clock_a_year_ahead_of_the_boot_clock_has_stepped() {
        let anchor = at(T, 100);
        let v = judge(at(T + YEAR + 60, 160), Some(anchor), Some(T));
        assert_eq!(v, Verdict::Stepped { expected: T + 60 });
        assert_eq!(v.best_estimate(T + YEAR + 60), T + 60);
    }

    #[test]
    fn a_backward_step_is_a_step_too_and_the_boot_clock_says_when_now_is() {
        let anchor = at(T, 100);
        let v = judge(at(T - 7200 + 600, 700), Some(anchor), None);
        assert_eq!(v, Verdict::Stepped { expected: T + 600 });
        // Just past the tolerance, not just under it.
        assert!(!judge(at(T + 600 - 301, 700), Some(anchor), None).agrees());
        assert!(judge(at(T + 600 - 300, 700), Some(anchor), None).agrees());
    }

    #[test]
    fn a_wall_clock_earlier_than_the_newest_row_is_wrong_without_an_anchor() {
        let v = judge(at(T - 3600, 5), None, Some(T));
        assert_eq!(v, Verdict::BeforeNewestRow { newest: T });
        assert_eq!(v.best_estimate(T - 3600), T);
        assert!(judge(at(T - 299, 5), None, Some(T)).agrees());
        assert!(judge(at(T, 5), None, None).agrees());
    }

    #[test]
    fn without_a_witness_a_clock_ahead_cannot_be_told_from_a_right_one() {
        // The first start on a boot, the ledger's rows all in the past: the
        // reading is all there is. (Expiries it records are reversed later.)
        assert!(judge(at(T + YEAR, 30), None, Some(T)).agrees());
    }

    #[test]
    fn a_mark_anchors_only_readings_on_its_own_boot() {
        let mark = Mark {
            wall: T,
            boot_ms: 5_000,
            boot_id: "boot-a".into(),
        };
        assert_eq!(mark.anchor_on("boot-a"), Some(at(T, 5)));
        assert_eq!(mark.anchor_on("boot-b"), None);
        assert_eq!(mark.anchor_on(""), None);
    }

    #[test]
    fn the_step_rule_comes_first_when_both_fail() {
        let anchor = at(T, 100);
        let v = judge(at(T - YEAR, 160), Some(anchor), Some(T));
        assert_eq!(v, Verdict::Stepped { expected: T + 60 });
    }

    #[test]
    fn a_clock_fixed_forward_after_start_up_is_accepted_after_a_steady_day() {
        // Started on a stale clock (no real-time clock), NTP then set it
        // a week forward: held, then accepted once steady for a day.
        let week = 7 * 24 * 3600;
        let mut w = Witnesses::new(Some(at(T, 20)), Some(T - 60));
        assert_eq!(
            w.judge(at(T + week + 100, 120)),
            Outcome::Held(Verdict::Stepped { expected: T + 100 })
        );
        let hour = 3600;
        assert!(!w.judge(at(T + week + 100 + hour, 120 + hour)).trusted());
        let day = ACCEPT_AFTER_SECS;
        assert_eq!(
            w.judge(at(T + week + 100 + day, 120 + day)),
            Outcome::Accepted {
                expected: T + 100 + day
            }
        );
        assert_eq!(
            w.judge(at(T + week + 160 + day, 180 + day)),
            Outcome::Trusted
        );
    }

    #[test]
    fn a_clock_that_keeps_jumping_is_not_steady_and_is_never_accepted() {
        let mut w = Witnesses::new(Some(at(T, 0)), None);
        let day = ACCEPT_AFTER_SECS;
        assert!(!w.judge(at(T + YEAR, 10)).trusted());
        assert!(!w.judge(at(T + 2 * YEAR, 10 + day / 2)).trusted());
        // A day after the first step, but only half a day after the second.
        assert!(!w.judge(at(T + 2 * YEAR + day / 2, 10 + day)).trusted());
        assert!(w
            .judge(at(T + 2 * YEAR + day, 10 + day + day / 2))
            .trusted());
    }

    #[test]
    fn a_clock_earlier_than_the_newest_row_is_held_however_long_it_waits() {
        let mut w = Witnesses::new(Some(at(T, 0)), Some(T));
        for hours in [0, 24, 48, 24 * 30] {
            let boot = 60 + hours * 3600;
            let o = w.judge(at(T - YEAR + boot, boot));
            assert!(!o.trusted(), "{hours} h: {o:?}");
            assert_eq!(o.best_estimate(T - YEAR + boot), T + boot);
        }
        // Until it agrees again.
        assert_eq!(w.judge(at(T + 40_000, 40_000)), Outcome::Trusted);
    }

    #[test]
    fn without_a_boot_clock_only_the_newest_row_judges() {
        let mut w = Witnesses::new(Some(at(T, 10)), Some(T));
        assert_eq!(w.judge(at(T + YEAR, 0)), Outcome::Trusted);
        assert_eq!(
            w.anchor,
            Some(at(T, 10)),
            "a reading without a boot clock anchors nothing"
        );
        assert!(!w.judge(at(T - YEAR, 0)).trusted());
    }
}
