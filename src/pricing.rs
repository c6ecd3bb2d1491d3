//! What a print job costs: a pure function from a price table and the job's
//! facts to integer cents.
//!
//! Prices are cents per impression (one side of a sheet with an image on it),
//! for mono or colour, one- or two-sided, per media size. A job's impressions
//! already count every copy, so nothing here multiplies by `copies`.
//!
//! Every price, and every job's cost, is at most [`MAX_UNITS`] cents.

use crate::money::{self, AmountError, MAX_UNITS};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Cents per impression for one colour mode, one- and two-sided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SidedPrices {
    pub one_sided: i64,
    pub two_sided: i64,
}

/// Prices for one media size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaPrices {
    pub mono: SidedPrices,
    pub colour: SidedPrices,
}

/// A printer's price table, as written in the config.
///
/// Media keys are PWG media names (`iso_a4_210x297mm`) or their short size
/// name (`a4`, `a3`, `letter`); a job on a size the table does not list is
/// priced as `default_media`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceTable {
    pub default_media: String,
    pub media: BTreeMap<String, MediaPrices>,
}

/// Whether the job printed on one side of each sheet or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sides {
    OneSided,
    TwoSided,
}

impl Sides {
    /// `one-sided` or `two-sided`, as IPP and the ledger name them.
    pub fn as_str(self) -> &'static str {
        match self {
            Sides::OneSided => "one-sided",
            Sides::TwoSided => "two-sided",
        }
    }
}

/// What the printer reported about a job, reduced to what costs money.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFacts {
    pub mono_impressions: i64,
    pub colour_impressions: i64,
    pub sides: Sides,
    /// The PWG media name (`iso_a3_297x420mm`), if the printer said.
    pub media: Option<String>,
}

impl JobFacts {
    /// Mono and colour impressions together; `None` if too many to count.
    /// [`price`] prices only facts whose total this counts.
    pub fn impressions(&self) -> Option<i64> {
        self.mono_impressions.checked_add(self.colour_impressions)
    }
}

/// Why a price table cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PriceTableError {
    #[error("default_media `{0}` is not one of the media listed in the table")]
    UnknownDefault(String),
    /// A price below zero or above [`MAX_UNITS`].
    #[error("price for media `{media}` ({which}) {error}")]
    Price {
        media: String,
        /// `mono.one_sided`, `colour.two_sided`, ...
        which: &'static str,
        error: AmountError,
    },
    #[error("the table lists no media")]
    Empty,
}

impl PriceTable {
    /// Checks what serde cannot: the default exists and every price is from
    /// 0 to [`MAX_UNITS`] cents.
    pub fn validate(&self) -> Result<(), PriceTableError> {
        if self.media.is_empty() {
            return Err(PriceTableError::Empty);
        }
        if self.lookup(&self.default_media).is_none() {
            return Err(PriceTableError::UnknownDefault(self.default_media.clone()));
        }
        for (name, p) in &self.media {
            let all = [
                ("mono.one_sided", p.mono.one_sided),
                ("mono.two_sided", p.mono.two_sided),
                ("colour.one_sided", p.colour.one_sided),
                ("colour.two_sided", p.colour.two_sided),
            ];
            for (which, cents) in all {
                money::non_negative(cents).map_err(|error| PriceTableError::Price {
                    media: name.clone(),
                    which,
                    error,
                })?;
            }
        }
        Ok(())
    }

    /// Finds the prices for a media name, by full PWG name or short size name,
    /// ignoring case.
    fn lookup(&self, media: &str) -> Option<&MediaPrices> {
        let wanted = media.trim().to_ascii_lowercase();
        let short = short_media_name(&wanted);
        self.media.iter().find_map(|(key, prices)| {
            let key = key.to_ascii_lowercase();
            (key == wanted || key == short || short_media_name(&key) == short).then_some(prices)
        })
    }

    /// The prices that apply to a job on `media`, falling back to the default.
    pub fn prices_for(&self, media: Option<&str>) -> Option<&MediaPrices> {
        media
            .and_then(|m| self.lookup(m))
            .or_else(|| self.lookup(&self.default_media))
    }
}

/// `iso_a4_210x297mm` → `a4`; `na_letter_8.5x11in` → `letter`; `a4` → `a4`.
fn short_media_name(name: &str) -> &str {
    let mut parts = name.split('_');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(_class), Some(size), Some(_dims)) => size,
        _ => name,
    }
}

/// The cost of a job in cents. `None` if the table has no usable default
/// (a table that passed [`PriceTable::validate`] always has one), or if the
/// impressions or the cost are too large to count: more than [`MAX_UNITS`]
/// cents, or an overflow on the way there.
pub fn price(table: &PriceTable, job: &JobFacts) -> Option<i64> {
    let prices = table.prices_for(job.media.as_deref())?;
    let (mono, colour) = match job.sides {
        Sides::OneSided => (prices.mono.one_sided, prices.colour.one_sided),
        Sides::TwoSided => (prices.mono.two_sided, prices.colour.two_sided),
    };
    job.impressions()?;
    let mono_cost = job.mono_impressions.max(0).checked_mul(mono)?;
    let colour_cost = job.colour_impressions.max(0).checked_mul(colour)?;
    mono_cost
        .checked_add(colour_cost)
        .filter(|&cents| cents <= MAX_UNITS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> PriceTable {
        toml::from_str(
            r#"
            default_media = "iso_a4_210x297mm"
            [media.iso_a4_210x297mm]
            mono = { one_sided = 10, two_sided = 8 }
            colour = { one_sided = 40, two_sided = 35 }
            [media.a3]
            mono = { one_sided = 20, two_sided = 16 }
            colour = { one_sided = 80, two_sided = 70 }
            "#,
        )
        .expect("test table parses")
    }

    fn job(mono: i64, colour: i64, sides: Sides, media: Option<&str>) -> JobFacts {
        JobFacts {
            mono_impressions: mono,
            colour_impressions: colour,
            sides,
            media: media.map(str::to_string),
        }
    }

    #[test]
    fn price_table_cases() {
        use Sides::*;
        let a4 = Some("iso_a4_210x297mm");
        let a3 = Some("iso_a3_297x420mm");
        let cases: &[(&str, JobFacts, i64)] = &[
            ("one mono page", job(1, 0, OneSided, a4), 10),
            (
                "duplex, odd page count: 5 impressions on 3 sheets",
                job(5, 0, TwoSided, a4),
                40,
            ),
            ("duplex, even page count", job(4, 0, TwoSided, a4), 32),
            (
                "copies already counted: 3 pages x 2 copies = 6",
                job(6, 0, OneSided, a4),
                60,
            ),
            ("colour vs mono", job(0, 3, OneSided, a4), 120),
            (
                "mixed colour and mono impressions",
                job(2, 1, OneSided, a4),
                60,
            ),
            ("A3 costs more than A4", job(1, 0, OneSided, a3), 20),
            ("A3 colour duplex", job(0, 3, TwoSided, a3), 210),
            (
                "unknown media falls back to default",
                job(2, 0, OneSided, Some("na_legal_8.5x14in")),
                20,
            ),
            (
                "no media reported uses default",
                job(2, 0, OneSided, None),
                20,
            ),
            (
                "media matched by short name and case",
                job(1, 0, OneSided, Some("A3")),
                20,
            ),
            (
                "zero-impression job costs nothing",
                job(0, 0, OneSided, a4),
                0,
            ),
            ("negative counts never pay out", job(-5, 0, OneSided, a4), 0),
        ];
        let t = table();
        for (name, facts, want) in cases {
            assert_eq!(price(&t, facts), Some(*want), "{name}");
        }
    }

    #[test]
    fn overflow_is_refused_not_wrapped() {
        let facts = job(i64::MAX, 0, Sides::OneSided, None);
        assert_eq!(price(&table(), &facts), None);
        let facts = job(i64::MAX, i64::MAX, Sides::OneSided, None);
        assert_eq!(price(&table(), &facts), None);
    }

    #[test]
    fn a_cost_above_the_bound_is_no_price() {
        // 10 cents an impression: 10^8 impressions is the most that prices.
        let at_bound = job(MAX_UNITS / 10, 0, Sides::OneSided, None);
        assert_eq!(price(&table(), &at_bound), Some(MAX_UNITS));
        let over = job(MAX_UNITS / 10 + 1, 0, Sides::OneSided, None);
        assert_eq!(price(&table(), &over), None);
    }

    #[test]
    fn validation_catches_bad_tables() {
        let mut t = table();
        assert_eq!(t.validate(), Ok(()));
        t.default_media = "tabloid".into();
        assert!(matches!(
            t.validate(),
            Err(PriceTableError::UnknownDefault(_))
        ));
        for (bad, error) in [
            (-1, AmountError::Negative(-1)),
            (i64::MAX, AmountError::TooLarge(i64::MAX)),
            (1 << 62, AmountError::TooLarge(1 << 62)),
        ] {
            let mut t = table();
            if let Some(p) = t.media.get_mut("a3") {
                p.colour.two_sided = bad;
            }
            assert_eq!(
                t.validate(),
                Err(PriceTableError::Price {
                    media: "a3".into(),
                    which: "colour.two_sided",
                    error
                })
            );
        }
        let mut t = table();
        if let Some(p) = t.media.get_mut("a3") {
            p.colour.two_sided = MAX_UNITS;
        }
        assert_eq!(t.validate(), Ok(()));
    }
}
