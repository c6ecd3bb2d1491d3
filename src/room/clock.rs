//! The clocks a session is measured on: the wall clock (for the ledger and
//! statements) and the boot clock, `/proc/uptime` — monotonic, unaffected by
//! wall-clock jumps, and the same for a restarted daemon. After a reboot
//! (a new boot id) the wall clock is all there is.
//!
//! Both are read through the daemon's [`Clock`], which tests replace to move
//! time (see `crate::clock::TimeSource`).

use crate::clock::Clock;

/// One reading of both clocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Now {
    /// Unix seconds.
    pub wall: i64,
    /// Milliseconds since boot.
    pub boot_ms: i64,
    /// Changes at every boot.
    pub boot_id: String,
}

impl Now {
    /// Reads the clocks.
    pub fn read(clock: &Clock) -> Now {
        Now {
            wall: clock.wall(),
            boot_ms: clock.boot_ms(),
            boot_id: crate::clock::boot_id(),
        }
    }

    /// Seconds from a start read earlier: on the boot clock when both are
    /// from this boot, else on the wall clock; never negative.
    pub fn secs_since(&self, wall: i64, boot_ms: i64, boot_id: &str) -> i64 {
        let secs = if !boot_id.is_empty() && boot_id == self.boot_id {
            (self.boot_ms - boot_ms) / 1000
        } else {
            self.wall - wall
        };
        secs.max(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_boot_clock_wins_within_a_boot_and_the_wall_clock_after_a_reboot() {
        let now = Now {
            wall: 10_000,
            boot_ms: 500_000,
            boot_id: "a".into(),
        };
        // The wall clock jumped back an hour; the boot clock says 100 s.
        assert_eq!(now.secs_since(13_500, 400_000, "a"), 100);
        assert_eq!(now.secs_since(9_000, 900_000, "b"), 1_000);
        assert_eq!(now.secs_since(11_000, 900_000, "b"), 0);
    }
}
