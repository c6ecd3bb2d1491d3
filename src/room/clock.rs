//! The clocks a session is measured on: the wall clock (for the ledger and
//! statements) and the boot clock, `/proc/uptime` — monotonic, unaffected by
//! wall-clock jumps, and the same for a restarted daemon. After a reboot
//! (a new boot id) the wall clock is all there is.
//!
//! Tests move the boot clock forward through `TALLYD_TEST_CLOCK_FILE`: a
//! file holding a number of seconds added to every reading of it (the wall
//! clock, which dates ledger rows, stays real).

use crate::clock;

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
    pub fn read() -> Now {
        let offset = test_offset_secs();
        Now {
            wall: clock::now(),
            boot_ms: boot_ms() + offset * 1000,
            boot_id: std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
                .map(|s| s.trim().to_string())
                .unwrap_or_default(),
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

fn test_offset_secs() -> i64 {
    std::env::var_os("TALLYD_TEST_CLOCK_FILE")
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptime_is_read_as_integer_milliseconds() {
        assert_eq!(uptime_ms("12345.67"), Some(12_345_670));
        assert_eq!(uptime_ms("0.05"), Some(50));
        assert_eq!(uptime_ms("7"), Some(7_000));
        assert_eq!(uptime_ms("x.1"), None);
    }

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
