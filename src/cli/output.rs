//! Rendering for the manager's commands: aligned tables for people, JSON and
//! CSV for tools. Amounts stay integers in JSON and CSV; only tables format
//! them as `$12.34` and `2h 05m`.

use serde::ser::{Error as _, SerializeSeq};
use serde::{Serialize, Serializer};
use std::cell::RefCell;
use std::io::Write;

/// How a command prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Csv,
}

/// A table of strings with a header; numeric-looking columns align right.
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new<S: Into<String>>(header: impl IntoIterator<Item = S>) -> Self {
        Table {
            header: header.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    /// Writes the table with two spaces between columns. A control
    /// character in a cell is written escaped (`\n`), so a row is one line.
    pub fn write(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let mut layout = Layout::new(&self.header);
        for row in &self.rows {
            layout.measure(row);
        }
        layout.write_header(out)?;
        for row in &self.rows {
            layout.write_row(out, row)?;
        }
        Ok(())
    }

    /// Writes the table as CSV (header first).
    pub fn write_csv(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let mut w = csv::Writer::from_writer(out);
        w.write_record(&self.header)?;
        for row in &self.rows {
            w.write_record(row)?;
        }
        w.flush()
    }
}

/// A table's column widths and alignment, measured row by row: what writing
/// it aligned needs, without holding its rows. Rows too long for a table
/// (a statement of years) are measured in one pass and written in a second.
pub struct Layout {
    header: Vec<String>,
    widths: Vec<usize>,
    /// Every cell so far empty or an amount (`$12.34`, `-0h 45m`, `42`).
    amounts: Vec<bool>,
    rows: usize,
}

impl Layout {
    pub fn new<S: AsRef<str>>(header: &[S]) -> Self {
        let header: Vec<String> = header.iter().map(|h| escaped(h.as_ref())).collect();
        Layout {
            widths: header.iter().map(|h| h.chars().count()).collect(),
            amounts: vec![true; header.len()],
            header,
            rows: 0,
        }
    }

    pub fn measure(&mut self, row: &[String]) {
        self.rows += 1;
        for (i, cell) in row.iter().enumerate().take(self.header.len()) {
            let cell = escaped(cell);
            self.widths[i] = self.widths[i].max(cell.chars().count());
            self.amounts[i] &= cell.is_empty() || is_amount(&cell);
        }
    }

    /// No row measured.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    pub fn write_header(&self, out: &mut dyn Write) -> std::io::Result<()> {
        writeln!(out, "{}", self.line(&self.header))
    }

    /// Writes `row` with two spaces between columns. A control character
    /// in a cell is written escaped (`\n`), so a row is one line.
    pub fn write_row(&self, out: &mut dyn Write, row: &[String]) -> std::io::Result<()> {
        let row: Vec<String> = row.iter().map(|c| escaped(c)).collect();
        writeln!(out, "{}", self.line(&row))
    }

    /// A column aligns right when every cell is an amount or a count, never
    /// a date or a name.
    fn line(&self, cells: &[String]) -> String {
        let cols = self.header.len();
        let mut s = String::new();
        for (i, cell) in cells.iter().enumerate().take(cols) {
            let pad = self.widths[i].saturating_sub(cell.chars().count());
            if i > 0 {
                s.push_str("  ");
            }
            if self.rows > 0 && self.amounts[i] {
                s.push_str(&" ".repeat(pad));
                s.push_str(cell);
            } else {
                s.push_str(cell);
                if i + 1 < cols {
                    s.push_str(&" ".repeat(pad));
                }
            }
        }
        s.trim_end().to_string()
    }
}

fn escaped(cell: &str) -> String {
    crate::logging::escape_controls(cell).into_owned()
}

fn is_amount(cell: &str) -> bool {
    cell.chars().any(|ch| ch.is_ascii_digit())
        && cell.chars().all(|ch| {
            ch.is_ascii_digit() || " .,-+hm".contains(ch) || (!ch.is_alphanumeric() && ch != ':')
        })
}

/// Walks rows read from the ledger, handing each to its argument as it is
/// read: what a streamed command writes from, once or twice.
pub type Walk<'a, T> = dyn Fn(&mut dyn FnMut(T) -> anyhow::Result<()>) -> anyhow::Result<()> + 'a;

/// Rows as a JSON array, each serialized as it is read: a walk, taken once
/// when serialized.
pub struct Streamed<'a, 'b, T>(RefCell<Option<&'a Walk<'b, T>>>);

impl<'a, 'b, T> Streamed<'a, 'b, T> {
    pub fn new(walk: &'a Walk<'b, T>) -> Self {
        Streamed(RefCell::new(Some(walk)))
    }
}

impl<T: Serialize> Serialize for Streamed<'_, '_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let walk = self
            .0
            .borrow_mut()
            .take()
            .ok_or_else(|| S::Error::custom("rows walked twice"))?;
        let mut seq = serializer.serialize_seq(None)?;
        let mut failed = None;
        let walked = walk(&mut |row| {
            seq.serialize_element(&row).map_err(|e| {
                let text = e.to_string();
                failed = Some(e);
                anyhow::anyhow!(text)
            })
        });
        if let Some(e) = failed {
            return Err(e);
        }
        walked.map_err(|e| S::Error::custom(format!("{e:#}")))?;
        seq.end()
    }
}

/// Writes a value as pretty JSON.
pub fn write_json<T: Serialize>(out: &mut dyn Write, value: &T) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cell_with_a_newline_stays_on_its_row() {
        let mut t = Table::new(["member", "reason"]);
        t.push(vec!["alice".into(), "x\n<0>forged".into()]);
        let mut out = Vec::new();
        t.write(&mut out).expect("write");
        let text = String::from_utf8(out).expect("utf-8");
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(text.contains("x\\n<0>forged"), "{text}");
    }
}
