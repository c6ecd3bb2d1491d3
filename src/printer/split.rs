//! How many of a job's impressions were colour, and who said so: the
//! printer's own per-colour counts, else the spool analysis of its document
//! (scaled to what was really printed), else the job's `print-color-mode`,
//! else the printer's default. Pure.

use crate::ledger::detail::ColourSource;

/// What the spool analysis says a job will print, with its copies, sides,
/// number-up and page ranges applied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Known {
    pub mono: i64,
    pub colour: i64,
    /// Blank back sides a two-sided job adds to an odd page count (one per
    /// copy): CUPS counts them as impressions; tallyd does not charge them.
    pub blank_backs: i64,
}

impl Known {
    /// Impressions with something on them.
    pub fn total(&self) -> Option<i64> {
        self.mono.checked_add(self.colour)
    }
}

/// A job's impressions, split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    pub mono: i64,
    pub colour: i64,
    pub source: ColourSource,
}

/// Splits `total` printed impressions. `printer_counts` is
/// `job-impressions-completed-col`; `asks_colour` is the job's
/// `print-color-mode` read as colour or mono, `None` when it has none.
pub fn split(
    total: i64,
    printer_counts: Option<(i64, i64)>,
    known: Option<&Known>,
    asks_colour: Option<bool>,
    colour_default: bool,
) -> Option<Split> {
    if let Some((mono, colour)) = printer_counts {
        return Some(Split {
            mono,
            colour,
            source: ColourSource::Printer,
        });
    }
    if let Some(split) = known.and_then(|k| scaled(total, k)) {
        return Some(split);
    }
    let (colour, source) = match asks_colour {
        Some(c) => (c, ColourSource::JobMode),
        None => (colour_default, ColourSource::PrinterDefault),
    };
    Some(if colour {
        Split {
            mono: 0,
            colour: total,
            source,
        }
    } else {
        Split {
            mono: total,
            colour: 0,
            source,
        }
    })
}

/// The analysis's split of `total`: the blank backs CUPS counted are dropped
/// when the total is exactly what the analysis expects with them, and the
/// colour share is scaled to the impressions really printed (rounded to the
/// nearest, never more than printed). `None` when the analysis knows no page.
fn scaled(total: i64, known: &Known) -> Option<Split> {
    let expected = known.total().filter(|t| *t > 0)?;
    let total = match expected.checked_add(known.blank_backs) {
        Some(with_blanks) if known.blank_backs > 0 && total == with_blanks => expected,
        _ => total,
    };
    let colour = if total == expected {
        known.colour
    } else {
        let share = i128::from(known.colour) * i128::from(total);
        let rounded = (2 * share + i128::from(expected)) / (2 * i128::from(expected));
        i64::try_from(rounded).ok()?.clamp(0, total.max(0))
    };
    Some(Split {
        mono: total - colour,
        colour,
        source: ColourSource::Analysis,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(mono: i64, colour: i64, blank_backs: i64) -> Known {
        Known {
            mono,
            colour,
            blank_backs,
        }
    }

    #[test]
    fn the_printers_own_counts_win() {
        let s = split(20, Some((18, 2)), Some(&known(19, 1, 0)), Some(true), true).unwrap();
        assert_eq!((s.mono, s.colour, s.source), (18, 2, ColourSource::Printer));
    }

    #[test]
    fn a_mono_report_with_one_colour_logo_is_charged_one_colour_page() {
        // A colour queue says `print-color-mode=color` for all 20 pages.
        let s = split(20, None, Some(&known(19, 1, 0)), Some(true), false).unwrap();
        assert_eq!(
            (s.mono, s.colour, s.source),
            (19, 1, ColourSource::Analysis)
        );
        // Without the analysis the job's mode decides, then the default.
        let s = split(20, None, None, Some(true), false).unwrap();
        assert_eq!((s.mono, s.colour, s.source), (0, 20, ColourSource::JobMode));
        let s = split(20, None, None, None, true).unwrap();
        assert_eq!(
            (s.mono, s.colour, s.source),
            (0, 20, ColourSource::PrinterDefault)
        );
    }

    #[test]
    fn the_blank_back_of_an_odd_duplex_job_is_not_charged() {
        // 5 pages two-sided: CUPS reports 6 impressions.
        let s = split(6, None, Some(&known(5, 0, 1)), None, false).unwrap();
        assert_eq!((s.mono, s.colour), (5, 0));
        // Two copies: 12 reported, 10 with ink.
        let s = split(12, None, Some(&known(8, 2, 2)), None, false).unwrap();
        assert_eq!((s.mono, s.colour), (8, 2));
    }

    #[test]
    fn a_partial_print_scales_the_colour_share() {
        // 10 of 20 printed (a jam): half the colour pages.
        let s = split(10, None, Some(&known(16, 4, 0)), None, false).unwrap();
        assert_eq!((s.mono, s.colour), (8, 2));
        // More printed than analysed (copies the analysis did not see).
        let s = split(40, None, Some(&known(19, 1, 0)), None, false).unwrap();
        assert_eq!((s.mono, s.colour), (38, 2));
        // An analysis of nothing falls back.
        let s = split(3, None, Some(&known(0, 0, 0)), Some(false), true).unwrap();
        assert_eq!(s.source, ColourSource::JobMode);
    }

    #[test]
    fn scaling_never_overflows_or_exceeds_the_total() {
        for total in [0, 1, 7, 1_000_000] {
            for k in [
                known(i64::MAX / 2, i64::MAX / 2, 0),
                known(0, 5, 0),
                known(1, i64::MAX - 1, 3),
            ] {
                if let Some(s) = split(total, None, Some(&k), None, false) {
                    assert!((0..=total).contains(&s.colour), "{total} {k:?} {s:?}");
                    assert_eq!(s.mono + s.colour, total);
                }
            }
        }
    }
}
