//! Rendering for the manager's commands: aligned tables for people, JSON and
//! CSV for tools. Amounts stay integers in JSON and CSV; only tables format
//! them as `$12.34` and `2h 05m`.

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

    /// A column aligns right when every cell is an amount or a count
    /// (`$12.34`, `-0h 45m`, `42`), never a date or a name.
    fn right_aligned(&self, col: usize) -> bool {
        let amount = |c: &str| {
            c.chars().any(|ch| ch.is_ascii_digit())
                && c.chars().all(|ch| {
                    ch.is_ascii_digit()
                        || " .,-+hm".contains(ch)
                        || (!ch.is_alphanumeric() && ch != ':')
                })
        };
        !self.rows.is_empty()
            && self
                .rows
                .iter()
                .all(|r| r.get(col).is_none_or(|c| c.is_empty() || amount(c)))
    }

    /// Writes the table with two spaces between columns. A control
    /// character in a cell is written escaped (`\n`), so a row is one line.
    pub fn write(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let escaped = self.escaped();
        escaped.write_plain(out)
    }

    fn escaped(&self) -> Table {
        let clean = |row: &Vec<String>| -> Vec<String> {
            row.iter()
                .map(|c| crate::logging::escape_controls(c).into_owned())
                .collect()
        };
        Table {
            header: clean(&self.header),
            rows: self.rows.iter().map(clean).collect(),
        }
    }

    fn write_plain(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let cols = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(cols) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let right: Vec<bool> = (0..cols).map(|i| self.right_aligned(i)).collect();
        let line = |cells: &[String]| -> String {
            let mut s = String::new();
            for (i, cell) in cells.iter().enumerate().take(cols) {
                let pad = widths[i].saturating_sub(cell.chars().count());
                if i > 0 {
                    s.push_str("  ");
                }
                if right[i] {
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
        };
        writeln!(out, "{}", line(&self.header))?;
        for row in &self.rows {
            writeln!(out, "{}", line(row))?;
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

/// Writes a value as pretty JSON.
pub fn write_json<T: serde::Serialize>(out: &mut dyn Write, value: &T) -> std::io::Result<()> {
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
