//! `[prices.*]`: the price tables, each validated by
//! [`PriceTable::validate`]. A price that is negative or above
//! [`MAX_UNITS`](crate::money::MAX_UNITS) is reported at its own line and
//! field (`prices.standard.media.a4.mono.one_sided`); any other problem at
//! the table's.

use super::{ConfigError, ErrAt};
use crate::pricing::{PriceTable, PriceTableError};
use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;
use toml::Spanned;

/// Each table validated, by name; `text` is the config file, for lines.
pub(super) fn price_tables(
    raw: BTreeMap<String, Spanned<PriceTable>>,
    text: &str,
    err: &ErrAt<'_>,
) -> Result<BTreeMap<String, PriceTable>, ConfigError> {
    let mut prices = BTreeMap::new();
    for (name, table) in raw {
        let span = table.span();
        let table = table.into_inner();
        table.validate().map_err(|e| {
            let (span, field) = match &e {
                PriceTableError::Price { media, which, .. } => {
                    let mut keys = vec!["prices", name.as_str(), "media", media.as_str()];
                    keys.extend(which.split('.'));
                    (
                        span_of(text, &keys).unwrap_or(span),
                        format!("prices.{name}.media.{media}.{which}"),
                    )
                }
                _ => (span, format!("prices.{name}")),
            };
            let at = err(Some(span), &field, e.to_string());
            ConfigError {
                source: Some(Arc::new(e)),
                ..at
            }
        })?;
        prices.insert(name, table);
    }
    Ok(prices)
}

/// Where the value under `keys` is written in a TOML document, if it is.
fn span_of(text: &str, keys: &[&str]) -> Option<Range<usize>> {
    let doc = toml_edit::Document::parse(text.to_string()).ok()?;
    let mut item: &toml_edit::Item = doc.as_item();
    for key in keys {
        item = item.get(*key)?;
    }
    item.span()
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::path::Path;

    const SITE: &str = "[site]\ntimezone = \"UTC\"\n";

    fn price_error(media: &str, mono: &str) -> crate::config::ConfigError {
        let text = format!(
            "{SITE}[prices.std]\ndefault_media = {media:?}\n[prices.std.media.{media:?}]\n\
             colour = {{ one_sided = 40, two_sided = 35 }}\n\
             mono = {{ one_sided = 10, two_sided = {mono} }}\n"
        );
        Config::parse(&text, "test.toml", Path::new("/etc/tallyd")).expect_err("a bad price")
    }

    #[test]
    fn a_price_out_of_bounds_is_reported_at_its_own_line_and_field() {
        for (bad, says) in [
            ("9223372036854775807", "must be at most 1000000000"),
            ("4611686018427387904", "must be at most 1000000000"),
            ("1000000001", "must be at most 1000000000"),
            ("-1", "must not be negative, got -1"),
        ] {
            let e = price_error("a4", bad);
            assert_eq!(e.line, Some(7), "{e}");
            assert_eq!(e.field, "prices.std.media.a4.mono.two_sided");
            assert!(e.message.contains(says), "{e}");
        }
        let e = price_error("na_letter_8.5x11in", "-1");
        assert_eq!(e.line, Some(7), "{e}");
        assert_eq!(
            e.field,
            "prices.std.media.na_letter_8.5x11in.mono.two_sided"
        );
    }
}
