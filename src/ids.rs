//! Card ids, how readers frame them, and print user names: the small
//! values that grants, printers, readers and the ledger all speak of. A leaf:
//! it imports nothing from the rest of tallyd.

use std::fmt;

/// The shortest card id: five bytes, what RDM6300 and ID-12 readers send.
const MIN_ID_CHARS: usize = 10;
/// The longest card id, and so the longest line a line reader may send: a
/// 10-byte ISO 14443 UID is 20 hex digits and a `u64` at most 20 decimal
/// digits, so this leaves room for leading zeros.
pub const MAX_ID_CHARS: usize = 32;

/// How a reader frames card ids on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// STX, 10 hex data, 2 hex checksum, ETX.
    Rdm6300,
    /// STX, 10 hex data, 2 hex checksum, CR LF, ETX (ID-12LA / ID-20LA).
    Id12,
    /// A line of hex digits.
    LineHex,
    /// A line of decimal digits.
    LineDecimal,
}

impl Framing {
    /// Every framing, in the order the docs list them.
    pub const ALL: [Framing; 4] = [
        Framing::Rdm6300,
        Framing::Id12,
        Framing::LineHex,
        Framing::LineDecimal,
    ];

    /// The framing named `s` in the config: `"rdm6300"`, `"id12"`,
    /// `"line-hex"` or `"line-decimal"`, exactly as written here.
    pub fn parse(s: &str) -> Option<Framing> {
        Framing::ALL.into_iter().find(|f| f.as_str() == s)
    }

    /// The config name, the inverse of [`Framing::parse`].
    pub fn as_str(self) -> &'static str {
        match self {
            Framing::Rdm6300 => "rdm6300",
            Framing::Id12 => "id12",
            Framing::LineHex => "line-hex",
            Framing::LineDecimal => "line-decimal",
        }
    }
}

impl fmt::Display for Framing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A card id: fixed-width uppercase hex, never an integer (leading zeros
/// matter). At least 10 characters and always an even number of them.
///
/// `Display` shows only the masked form (see [`CardId::masked`]); use
/// [`CardId::as_str`] where the whole id is meant, such as the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CardId(String);

impl CardId {
    /// Normalises hex text as a line-hex reader would: uppercase, left-padded
    /// with `0` to at least 10 characters and to an even length. `None` for
    /// empty text, any character that is not a hex digit (no trimming, no
    /// `0x`), or more than 32 digits.
    pub fn parse(text: &str) -> Option<CardId> {
        if text.is_empty()
            || text.len() > MAX_ID_CHARS
            || !text.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return None;
        }
        Some(CardId::padded(text.to_ascii_uppercase()))
    }

    /// The id of a decimal card number as a line-decimal reader sends it:
    /// the value's hex, padded as [`CardId::parse`] pads. `None` unless
    /// `text` is all decimal digits and fits a `u64`.
    pub fn from_decimal(text: &str) -> Option<CardId> {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let value: u64 = text.parse().ok()?;
        Some(CardId::padded(format!("{value:X}")))
    }

    /// Pads uppercase hex digits to the canonical width.
    fn padded(hex: String) -> CardId {
        let width = hex.len().max(MIN_ID_CHARS).next_multiple_of(2);
        CardId(format!("{hex:0>width$}"))
    }

    /// The whole id, e.g. `"14008EC793"`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Only the last 4 characters, e.g. `"…C793"`: the form for logs.
    pub fn masked(&self) -> String {
        mask(&self.0)
    }
}

impl fmt::Display for CardId {
    /// The masked form, so a careless log line never leaks a whole id.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

/// `"…"` followed by the last 4 characters of `text`.
pub fn mask(text: &str) -> String {
    let start = text.char_indices().rev().nth(3).map_or(0, |(i, _)| i);
    format!("…{}", &text[start..])
}

/// A print user name as jobs are matched: lowercase, no `DOMAIN\`, no `@domain`.
pub fn normalize_print_user(name: &str) -> String {
    let name = name.trim();
    let name = name.rsplit('\\').next().unwrap_or(name);
    let name = name.split('@').next().unwrap_or(name);
    name.to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_names_round_trip() {
        for f in Framing::ALL {
            assert_eq!(Framing::parse(f.as_str()), Some(f));
            assert_eq!(f.to_string(), f.as_str());
        }
        let names: Vec<_> = Framing::ALL.iter().map(|f| f.as_str()).collect();
        assert_eq!(names, ["rdm6300", "id12", "line-hex", "line-decimal"]);
        for bad in ["", "RDM6300", "id-12", "line_hex", "hex", " rdm6300"] {
            assert_eq!(Framing::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn card_id_parse_normalises() {
        let cases: &[(&str, Option<&str>)] = &[
            ("14008EC793", Some("14008EC793")),
            ("14008ec793", Some("14008EC793")),
            ("8EC793", Some("00008EC793")),
            ("ABC", Some("0000000ABC")),
            ("0", Some("0000000000")),
            ("0000000000", Some("0000000000")),
            ("1234567890A", Some("01234567890A")),
            ("04A1B2C3D4E5F6", Some("04A1B2C3D4E5F6")),
            (&"F".repeat(32), Some(&"F".repeat(32))),
            (&"F".repeat(31), Some(&format!("0{}", "F".repeat(31)))),
            (&"F".repeat(33), None),
            ("", None),
            ("12G4", None),
            (" 1234", None),
            ("1234\n", None),
            ("0x1234", None),
            ("-1234", None),
            ("１２", None),
        ];
        for (text, want) in cases {
            let got = CardId::parse(text);
            assert_eq!(got.as_ref().map(CardId::as_str), *want, "{text:?}");
            if let Some(id) = got {
                assert!(id.as_str().len() >= 10 && id.as_str().len() % 2 == 0);
            }
        }
    }

    #[test]
    fn masked_and_display_show_only_last_four() {
        for text in [
            "14008EC793",
            "00008EC793",
            "04A1B2C3D4E5F6",
            &"AB".repeat(16),
        ] {
            let id = CardId::parse(text).unwrap();
            let last4 = &text[text.len() - 4..];
            assert_eq!(id.masked(), format!("…{last4}"));
            assert_eq!(id.to_string(), id.masked());
            assert_eq!(format!("card {id} tapped"), format!("card …{last4} tapped"));
            assert!(!id.to_string().contains(&text[..text.len() - 4]));
            assert_eq!(
                id.to_string()
                    .chars()
                    .filter(char::is_ascii_hexdigit)
                    .count(),
                4
            );
        }
        assert_eq!(mask("AB"), "…AB");
        assert_eq!(mask(""), "…");
    }
}
