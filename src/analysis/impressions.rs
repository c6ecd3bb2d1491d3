//! How a job's document becomes impressions: a pure function of the
//! analysed pages and the job's layout attributes, in the order a printer
//! applies them. `page-ranges` pick pages first, `number-up` puts that many
//! pages on one side (a side is colour when any page on it is), two-sided
//! jobs pair sides onto sheets (the blank back of an odd side count is
//! counted apart, never as an impression), and every copy repeats it all.

use std::ops::RangeInclusive;

use crate::pricing::Sides;

use super::Document;

/// A job's layout attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// `copies`; 0 counts as 1.
    pub copies: u32,
    pub sides: Sides,
    /// `number-up`: pages per side; 0 counts as 1.
    pub number_up: u32,
    /// `page-ranges`, 1-based and inclusive; empty means every page.
    pub page_ranges: Vec<RangeInclusive<u32>>,
}

impl Default for Layout {
    fn default() -> Self {
        Layout {
            copies: 1,
            sides: Sides::OneSided,
            number_up: 1,
            page_ranges: Vec::new(),
        }
    }
}

/// What a job prints, counted over all its copies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Impressions {
    /// Sides printed with only grey on them.
    pub mono: u64,
    /// Sides printed with colour on them.
    pub colour: u64,
    /// Sheets of paper.
    pub sheets: u64,
    /// Back sides left blank because a two-sided copy had an odd number of
    /// sides (a printer may report them as impressions; they print nothing).
    pub blank_backs: u64,
}

impl Impressions {
    /// Mono and colour impressions together.
    pub fn total(&self) -> u64 {
        self.mono + self.colour
    }
}

/// The impressions `document` makes when printed with `layout`.
///
/// Counts saturate instead of overflowing (a document has at most
/// `Limits::max_pages` pages, so they never come near).
pub fn impressions(document: &Document, layout: &Layout) -> Impressions {
    let selected: Vec<bool> = document
        .pages
        .iter()
        .zip(1u64..)
        .filter(|(_, number)| in_ranges(*number, &layout.page_ranges))
        .map(|(page, _)| page.colour)
        .collect();
    let per_side = layout.number_up.max(1) as usize;
    let sides = selected.len().div_ceil(per_side) as u64;
    let colour_sides = selected
        .chunks(per_side)
        .filter(|side| side.iter().any(|&colour| colour))
        .count() as u64;
    let (sheets, blank_backs) = match layout.sides {
        Sides::OneSided => (sides, 0),
        Sides::TwoSided => (sides.div_ceil(2), sides % 2),
    };
    let copies = u64::from(layout.copies.max(1));
    Impressions {
        mono: (sides - colour_sides).saturating_mul(copies),
        colour: colour_sides.saturating_mul(copies),
        sheets: sheets.saturating_mul(copies),
        blank_backs: blank_backs.saturating_mul(copies),
    }
}

fn in_ranges(page: u64, ranges: &[RangeInclusive<u32>]) -> bool {
    ranges.is_empty()
        || ranges
            .iter()
            .any(|r| u64::from(*r.start()) <= page && page <= u64::from(*r.end()))
}

#[cfg(test)]
#[path = "impressions_tests.rs"]
mod tests;
