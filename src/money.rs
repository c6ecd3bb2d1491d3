//! Display of amounts: cents as `$12.34`, minutes as `2h 05m`.
//!
//! Storage and arithmetic never use these strings; every amount is an `i64`
//! (cents for printing credit, minutes for time credit). This module only turns
//! those integers into text for people and parses the few amounts people type.
//!
//! It also holds the one bound on amounts, [`MAX_UNITS`], that every entry
//! point (grants file, site config, command line, the ledger itself) checks.

/// The largest amount tallyd takes in anywhere: 10^9 units, that is
/// $10,000,000.00 of printing credit (in cents) or 10^9 minutes of time
/// credit. A grants file's amounts and caps, the site config's prices and
/// caps, the amounts typed on the command line and every amount handed to
/// the ledger are refused above it, so no sum tallyd makes of lots, usages
/// or overage comes near `i64::MAX` (that would take over nine billion
/// amounts at the bound).
pub const MAX_UNITS: i64 = 1_000_000_000;

/// Why an amount is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("must be more than zero, got {0}")]
    NotPositive(i64),
    #[error("must not be negative, got {0}")]
    Negative(i64),
    #[error("must be at most {max} (10^9 units: $10,000,000.00 in cents, or 10^9 minutes), got {0}", max = MAX_UNITS)]
    TooLarge(i64),
}

/// An amount that must be more than zero (a grant, a charge typed by a
/// manager): `1..=MAX_UNITS`.
pub fn positive(n: i64) -> Result<i64, AmountError> {
    if n <= 0 {
        return Err(AmountError::NotPositive(n));
    }
    non_negative(n)
}

/// An amount that may be zero (a price, a cap, a usage): `0..=MAX_UNITS`.
pub fn non_negative(n: i64) -> Result<i64, AmountError> {
    if n < 0 {
        Err(AmountError::Negative(n))
    } else if n > MAX_UNITS {
        Err(AmountError::TooLarge(n))
    } else {
        Ok(n)
    }
}

/// What an amount counts: money in cents or time in minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Cents,
    Minutes,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Cents => "cents",
            Unit::Minutes => "minutes",
        }
    }
}

/// Formats cents with a currency symbol: `1234` → `$12.34`, `-5` → `-$0.05`.
pub fn format_cents(symbol: &str, cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    format!("{sign}{symbol}{}.{:02}", abs / 100, abs % 100)
}

/// Formats minutes as hours and minutes: `125` → `2h 05m`, `45` → `0h 45m`.
pub fn format_minutes(minutes: i64) -> String {
    let sign = if minutes < 0 { "-" } else { "" };
    let abs = minutes.unsigned_abs();
    format!("{sign}{}h {:02}m", abs / 60, abs % 60)
}

/// Formats an amount in its unit.
pub fn format_amount(symbol: &str, unit: Unit, amount: i64) -> String {
    match unit {
        Unit::Cents => format_cents(symbol, amount),
        Unit::Minutes => format_minutes(amount),
    }
}

/// Parses a money amount typed by a manager: `12.34`, `$12.34`, `12`, `0.5`
/// (50 cents). Never goes through floating point.
pub fn parse_cents(text: &str, symbol: &str) -> Option<i64> {
    let t = text.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t),
    };
    let t = t.strip_prefix(symbol).unwrap_or(t);
    let (whole, frac) = match t.split_once('.') {
        Some((w, f)) => (w, f),
        None => (t, ""),
    };
    if whole.is_empty() && frac.is_empty() {
        return None;
    }
    if !whole.chars().all(|c| c.is_ascii_digit()) || !frac.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    if frac.len() > 2 {
        return None;
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let frac_cents: i64 = match frac.len() {
        0 => 0,
        1 => frac.parse::<i64>().ok()?.checked_mul(10)?,
        _ => frac.parse().ok()?,
    };
    let cents = whole.checked_mul(100)?.checked_add(frac_cents)?;
    if neg {
        cents.checked_neg()
    } else {
        Some(cents)
    }
}

/// Parses a duration typed by a manager: `90`, `90m`, `2h`, `2h05m`, `2h 5m`.
pub fn parse_minutes(text: &str) -> Option<i64> {
    let t: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if t.is_empty() {
        return None;
    }
    if t.chars().all(|c| c.is_ascii_digit()) {
        return t.parse().ok();
    }
    let mut total: i64 = 0;
    let mut number = String::new();
    let mut seen_unit = false;
    for c in t.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: i64 = number.parse().ok()?;
        number.clear();
        let factor = match c {
            'h' => 60,
            'm' => 1,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(factor)?)?;
        seen_unit = true;
    }
    if !number.is_empty() || !seen_unit {
        return None;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cents_are_shown_with_two_decimals() {
        assert_eq!(format_cents("$", 1234), "$12.34");
        assert_eq!(format_cents("$", 5), "$0.05");
        assert_eq!(format_cents("$", 0), "$0.00");
        assert_eq!(format_cents("€", -120), "-€1.20");
    }

    #[test]
    fn minutes_are_shown_as_hours_and_minutes() {
        assert_eq!(format_minutes(125), "2h 05m");
        assert_eq!(format_minutes(45), "0h 45m");
        assert_eq!(format_minutes(-60), "-1h 00m");
    }

    #[test]
    fn typed_money_is_parsed_without_floats() {
        assert_eq!(parse_cents("12.34", "$"), Some(1234));
        assert_eq!(parse_cents("$12.34", "$"), Some(1234));
        assert_eq!(parse_cents("12", "$"), Some(1200));
        assert_eq!(parse_cents("0.5", "$"), Some(50));
        assert_eq!(parse_cents("-1.05", "$"), Some(-105));
        assert_eq!(parse_cents("1.234", "$"), None);
        assert_eq!(parse_cents("abc", "$"), None);
        assert_eq!(parse_cents("", "$"), None);
    }

    #[test]
    fn amounts_are_bounded_by_max_units() {
        assert_eq!(positive(1), Ok(1));
        assert_eq!(positive(MAX_UNITS), Ok(MAX_UNITS));
        assert_eq!(positive(0), Err(AmountError::NotPositive(0)));
        assert_eq!(positive(-1), Err(AmountError::NotPositive(-1)));
        assert_eq!(non_negative(0), Ok(0));
        assert_eq!(non_negative(-1), Err(AmountError::Negative(-1)));
        for big in [MAX_UNITS + 1, 1 << 62, i64::MAX] {
            assert_eq!(positive(big), Err(AmountError::TooLarge(big)));
            assert_eq!(non_negative(big), Err(AmountError::TooLarge(big)));
        }
        assert_eq!(format_cents("$", MAX_UNITS), "$10000000.00");
        assert!(AmountError::TooLarge(i64::MAX)
            .to_string()
            .starts_with("must be at most 1000000000 "));
    }

    #[test]
    fn typed_money_too_large_to_count_is_not_money() {
        assert_eq!(parse_cents("92233720368547758.07", "$"), Some(i64::MAX));
        assert_eq!(parse_cents("92233720368547758.08", "$"), None);
        assert_eq!(parse_cents("9223372036854775807", "$"), None);
        assert_eq!(parse_minutes("9223372036854775807h"), None);
    }

    #[test]
    fn typed_durations_are_parsed() {
        assert_eq!(parse_minutes("90"), Some(90));
        assert_eq!(parse_minutes("2h"), Some(120));
        assert_eq!(parse_minutes("2h05m"), Some(125));
        assert_eq!(parse_minutes("2h 5m"), Some(125));
        assert_eq!(parse_minutes("45m"), Some(45));
        assert_eq!(parse_minutes("h"), None);
        assert_eq!(parse_minutes("5x"), None);
    }
}
