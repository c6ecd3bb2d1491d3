//! The hash chain that makes the money rows tamper-evident, as a pure
//! function: each row's hash is SHA-256 over the hash of the row before it
//! (in the same table) and a canonical encoding of the row's columns. Edit a
//! row, and its hash no longer matches; rewrite its hash too, and the next
//! row's no longer does. The SQL that writes and reads the hashes is in
//! [`super::integrity`].

use sha2::{Digest, Sha256};

/// A row's hash.
pub type Hash = [u8; 32];

/// The `prev` of a table's first row.
pub const GENESIS: Hash = [0; 32];

/// One column's value, as SQLite stores it (money rows hold no reals or
/// blobs besides their hash).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field<'a> {
    Null,
    Int(i64),
    Text(&'a str),
}

impl From<i64> for Field<'_> {
    fn from(n: i64) -> Self {
        Field::Int(n)
    }
}

impl<'a> From<&'a str> for Field<'a> {
    fn from(s: &'a str) -> Self {
        Field::Text(s)
    }
}

impl<'a, T: Into<Field<'a>>> From<Option<T>> for Field<'a> {
    fn from(v: Option<T>) -> Self {
        v.map_or(Field::Null, Into::into)
    }
}

/// Names the encoding, so a later version can change it without ambiguity.
const DOMAIN: &[u8] = b"tallyd-chain-v1\0";

/// The hash of a row of `table` whose columns are `fields`, following the
/// row hashed `prev`. The encoding is unambiguous: each field carries its
/// type and texts their length, so no two different rows encode alike.
pub fn link(table: &str, prev: &Hash, fields: &[Field<'_>]) -> Hash {
    let mut h = Sha256::new();
    h.update(DOMAIN);
    h.update((table.len() as u64).to_be_bytes());
    h.update(table.as_bytes());
    h.update(prev);
    h.update((fields.len() as u64).to_be_bytes());
    for field in fields {
        match field {
            Field::Null => h.update([0u8]),
            Field::Int(n) => {
                h.update([1u8]);
                h.update(n.to_be_bytes());
            }
            Field::Text(s) => {
                h.update([2u8]);
                h.update((s.len() as u64).to_be_bytes());
                h.update(s.as_bytes());
            }
        }
    }
    h.finalize().into()
}

/// A hash as lower-case hex, for log lines and `check-ledger`.
pub fn hex(hash: &[u8]) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where a chain stops agreeing with its rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Break {
    /// The row's stored hash is missing or not what its columns and the
    /// row before it hash to: it was edited (or a row before it was
    /// removed or rewritten).
    Mismatch { row: i64 },
    /// The row a verification was recorded at no longer carries the hash
    /// recorded for it.
    TipChanged { row: i64 },
    /// The row a verification was recorded at is gone.
    TipMissing { row: i64 },
}

impl std::fmt::Display for Break {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Break::Mismatch { row } => write!(
                f,
                "row {row} does not match its hash (it, or a row before it, was changed outside tallyd)"
            ),
            Break::TipChanged { row } => write!(
                f,
                "row {row}, where the chain was last verified, no longer carries the hash recorded for it (the chain was rewritten)"
            ),
            Break::TipMissing { row } => {
                write!(f, "row {row}, where the chain was last verified, is gone")
            }
        }
    }
}

impl Break {
    /// The row the chain breaks at.
    pub fn row(&self) -> i64 {
        match self {
            Break::Mismatch { row } | Break::TipChanged { row } | Break::TipMissing { row } => *row,
        }
    }
}

/// Walks `rows` (id, stored hash, columns, in id order) from `prev`: the
/// first row whose stored hash is not the expected one breaks the chain.
/// Returns the last row's id and hash (or `start` when there are none).
pub fn verify<'a, I>(table: &str, start: (i64, Hash), rows: I) -> Result<(i64, Hash), Break>
where
    I: IntoIterator<Item = (i64, Option<Hash>, Vec<Field<'a>>)>,
{
    let (mut last, mut prev) = start;
    for (id, stored, fields) in rows {
        let expected = link(table, &prev, &fields);
        if stored != Some(expected) {
            return Err(Break::Mismatch { row: id });
        }
        (last, prev) = (id, expected);
    }
    Ok((last, prev))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, delta: i64, note: &str) -> Vec<Field<'_>> {
        vec![
            Field::Int(id),
            Field::Int(delta),
            Field::Text(note),
            Field::Null,
        ]
    }

    fn chain(rows: &[Vec<Field<'_>>]) -> Vec<Hash> {
        let mut prev = GENESIS;
        rows.iter()
            .map(|f| {
                prev = link("history", &prev, f);
                prev
            })
            .collect()
    }

    #[test]
    fn a_hash_depends_on_every_field_the_table_and_the_row_before() {
        let base = link("history", &GENESIS, &row(1, -10, "x"));
        assert_eq!(base, link("history", &GENESIS, &row(1, -10, "x")));
        assert_ne!(base, link("history", &GENESIS, &row(2, -10, "x")));
        assert_ne!(base, link("history", &GENESIS, &row(1, -11, "x")));
        assert_ne!(base, link("history", &GENESIS, &row(1, -10, "y")));
        assert_ne!(base, link("overage", &GENESIS, &row(1, -10, "x")));
        assert_ne!(base, link("history", &[1; 32], &row(1, -10, "x")));
    }

    #[test]
    fn the_encoding_is_unambiguous() {
        // Text boundaries, null against empty, integer against text.
        let ab_c = link("t", &GENESIS, &[Field::Text("ab"), Field::Text("c")]);
        let a_bc = link("t", &GENESIS, &[Field::Text("a"), Field::Text("bc")]);
        assert_ne!(ab_c, a_bc);
        assert_ne!(
            link("t", &GENESIS, &[Field::Null]),
            link("t", &GENESIS, &[Field::Text("")])
        );
        assert_ne!(
            link("t", &GENESIS, &[Field::Int(0)]),
            link("t", &GENESIS, &[Field::Null])
        );
        assert_ne!(
            link("t", &GENESIS, &[Field::Text("1")]),
            link("t", &GENESIS, &[Field::Int(1)])
        );
        assert_ne!(
            link("t", &GENESIS, &[]),
            link("t", &GENESIS, &[Field::Null])
        );
    }

    #[test]
    fn verify_names_the_first_edited_row_and_returns_the_tip() {
        let rows = vec![row(1, 100, "grant"), row(2, -10, ""), row(3, -5, "")];
        let hashes = chain(&rows);
        let stored =
            |rows: Vec<Vec<Field<'static>>>, hashes: &[Hash]| -> Vec<(i64, Option<Hash>, _)> {
                rows.into_iter()
                    .zip(hashes)
                    .enumerate()
                    .map(|(i, (f, h))| (i as i64 + 1, Some(*h), f))
                    .collect()
            };
        assert_eq!(
            verify("history", (0, GENESIS), stored(rows.clone(), &hashes)),
            Ok((3, hashes[2]))
        );
        // Row 2 edited, its hash kept.
        let mut edited = rows.clone();
        edited[1] = row(2, -1, "");
        assert_eq!(
            verify("history", (0, GENESIS), stored(edited.clone(), &hashes)),
            Err(Break::Mismatch { row: 2 })
        );
        // Row 2 edited and its hash recomputed: row 3 no longer follows.
        let mut rehashed = hashes.clone();
        rehashed[1] = link("history", &hashes[0], &edited[1]);
        assert_eq!(
            verify("history", (0, GENESIS), stored(edited, &rehashed)),
            Err(Break::Mismatch { row: 3 })
        );
        // A row without a hash.
        let mut missing = stored(rows.clone(), &hashes);
        missing[0].1 = None;
        assert_eq!(
            verify("history", (0, GENESIS), missing),
            Err(Break::Mismatch { row: 1 })
        );
        // From a verified point: only the rows after it.
        let tail = stored(rows, &hashes).split_off(2);
        assert_eq!(verify("history", (2, hashes[1]), tail), Ok((3, hashes[2])));
        assert_eq!(verify("history", (3, hashes[2]), []), Ok((3, hashes[2])));
    }
}
