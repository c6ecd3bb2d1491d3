use proptest::prelude::*;

use super::*;
use crate::analysis::{Format, Page};

/// A document whose pages are colour where `pattern` has a `C`.
fn doc(pattern: &str) -> Document {
    Document {
        format: Format::Pdf,
        pages: pattern.chars().map(|c| Page::by_header(c == 'C')).collect(),
    }
}

fn layout(copies: u32, sides: Sides, number_up: u32, ranges: &[(u32, u32)]) -> Layout {
    Layout {
        copies,
        sides,
        number_up,
        page_ranges: ranges.iter().map(|&(a, b)| a..=b).collect(),
    }
}

fn counts(i: Impressions) -> (u64, u64, u64, u64) {
    (i.mono, i.colour, i.sheets, i.blank_backs)
}

#[test]
fn one_sided_pages_are_impressions() {
    let i = impressions(&doc("MCMM"), &Layout::default());
    assert_eq!(counts(i), (3, 1, 4, 0));
}

#[test]
fn a_side_with_any_colour_page_is_colour() {
    let two_up = layout(1, Sides::OneSided, 2, &[]);
    assert_eq!(counts(impressions(&doc("MCMMM"), &two_up)), (2, 1, 3, 0));
    let four_up = layout(1, Sides::OneSided, 4, &[]);
    assert_eq!(
        counts(impressions(&doc("MMMMMMMC"), &four_up)),
        (1, 1, 2, 0)
    );
}

#[test]
fn the_blank_back_of_an_odd_duplex_job_is_apart() {
    let duplex = layout(1, Sides::TwoSided, 1, &[]);
    assert_eq!(counts(impressions(&doc("MMMMM"), &duplex)), (5, 0, 3, 1));
    let copies = layout(3, Sides::TwoSided, 1, &[]);
    assert_eq!(counts(impressions(&doc("MMC"), &copies)), (6, 3, 6, 3));
    assert_eq!(counts(impressions(&doc("MMCC"), &copies)), (6, 6, 6, 0));
}

#[test]
fn page_ranges_pick_pages_before_number_up() {
    let ranges = layout(1, Sides::OneSided, 1, &[(3, 8)]);
    assert_eq!(
        counts(impressions(&doc("MCMMMMMMCM"), &ranges)),
        (6, 0, 6, 0)
    );
    let two_up = layout(2, Sides::OneSided, 2, &[(1, 1), (4, 5), (9, 99)]);
    // Pages 1, 4, 5, 9, 10: sides (1,4) (5,9) (10): colour, colour, mono.
    assert_eq!(
        counts(impressions(&doc("CMMMMMMMCM"), &two_up)),
        (2, 4, 6, 0)
    );
    let nothing = layout(1, Sides::OneSided, 1, &[(20, 30)]);
    assert_eq!(counts(impressions(&doc("MC"), &nothing)), (0, 0, 0, 0));
}

#[test]
fn zero_copies_or_number_up_count_as_one() {
    let zeros = layout(0, Sides::OneSided, 0, &[]);
    assert_eq!(counts(impressions(&doc("MC"), &zeros)), (1, 1, 2, 0));
}

fn any_layout() -> impl Strategy<Value = Layout> {
    (
        1u32..5,
        any::<bool>(),
        prop::sample::select(vec![1u32, 2, 4, 6, 9, 16]),
        prop::collection::vec((1u32..40, 0u32..10), 0..3),
    )
        .prop_map(|(copies, two, number_up, ranges)| Layout {
            copies,
            sides: if two {
                Sides::TwoSided
            } else {
                Sides::OneSided
            },
            number_up,
            page_ranges: ranges.into_iter().map(|(a, len)| a..=a + len).collect(),
        })
}

proptest! {
    #[test]
    fn impressions_add_up(pattern in "[MC]{0,40}", layout in any_layout()) {
        let document = doc(&pattern);
        let i = impressions(&document, &layout);
        let copies = u64::from(layout.copies);
        // Whole copies only.
        prop_assert_eq!(i.total() % copies, 0);
        prop_assert_eq!(i.sheets % copies, 0);
        // Never more colour sides than colour pages, never more sides than pages.
        prop_assert!(i.colour <= document.colour_pages() as u64 * copies);
        prop_assert!(i.total() <= pattern.len() as u64 * copies);
        match layout.sides {
            Sides::OneSided => {
                prop_assert_eq!(i.sheets, i.total());
                prop_assert_eq!(i.blank_backs, 0);
            }
            Sides::TwoSided => {
                prop_assert_eq!(i.sheets * 2, i.total() + i.blank_backs);
                prop_assert!(i.blank_backs <= copies);
            }
        }
    }

    #[test]
    fn all_pages_one_up_one_sided_is_the_document(pattern in "[MC]{0,40}", copies in 1u32..10) {
        let document = doc(&pattern);
        let i = impressions(&document, &layout(copies, Sides::OneSided, 1, &[]));
        let colour = document.colour_pages() as u64;
        prop_assert_eq!(i.colour, colour * u64::from(copies));
        prop_assert_eq!(i.mono, (pattern.len() as u64 - colour) * u64::from(copies));
    }
}
