//! Display of amounts: cents as `$12.34`, minutes as `2h 05m`.
//!
//! Storage and arithmetic never use these strings; every amount is an `i64`
//! (cents for printing credit, minutes for time credit). This module only turns
//! those integers into text for people and parses the few amounts people type.

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
        1 => frac.parse::<i64>().ok()? * 10,
        _ => frac.parse().ok()?,
    };
    let cents = whole.checked_mul(100)?.checked_add(frac_cents)?;
    Some(if neg { -cents } else { cents })
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
