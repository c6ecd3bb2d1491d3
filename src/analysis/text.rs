//! Plain text: pages as CUPS's text filter lays them out by default, 60
//! lines of 80 columns (longer lines wrap, tabs stop every 8 columns); a
//! form feed ends the page it is on. Always mono.

use std::io::BufRead;

use super::{AnalysisError, Limits, Page};

/// Lines on one page.
pub const LINES_PER_PAGE: u32 = 60;
/// Columns on one line.
pub const COLUMNS: u32 = 80;

/// Where the layout is.
#[derive(Debug, Default)]
struct Layout {
    pages: u32,
    /// Whether a page is open (something was laid out on it).
    open: bool,
    line: u32,
    column: u32,
}

impl Layout {
    fn open_page(&mut self) {
        if !self.open {
            self.open = true;
            self.pages = self.pages.saturating_add(1);
            self.line = 0;
            self.column = 0;
        }
    }

    fn new_line(&mut self) {
        self.open_page();
        self.column = 0;
        self.line += 1;
        if self.line >= LINES_PER_PAGE {
            self.open = false;
        }
    }

    fn character(&mut self, width: u32) {
        self.open_page();
        if self.column + width > COLUMNS {
            self.new_line();
            self.open_page();
        }
        self.column += width;
    }

    fn byte(&mut self, b: u8) {
        match b {
            b'\n' => self.new_line(),
            b'\r' => self.column = 0,
            b'\x0c' => self.open = false,
            b'\t' => {
                let to_stop = 8 - self.column % 8;
                self.character(to_stop.min(COLUMNS - self.column).max(1));
            }
            // A UTF-8 continuation byte belongs to the character before.
            0x80..=0xbf => {}
            _ => self.character(1),
        }
    }
}

/// The pages of a plain text document.
pub(super) fn pages<R: BufRead>(
    input: &mut R,
    limits: &Limits,
) -> Result<Vec<Page>, AnalysisError> {
    let mut layout = Layout::default();
    loop {
        let buf = input.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        for &b in buf {
            layout.byte(b);
        }
        let used = buf.len();
        input.consume(used);
        if layout.pages > limits.max_pages {
            return Err(AnalysisError::TooManyPages {
                limit: limits.max_pages,
            });
        }
    }
    Ok(vec![Page::by_header(false); layout.pages as usize])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(text: &str) -> usize {
        pages(&mut text.as_bytes(), &Limits::default())
            .unwrap()
            .len()
    }

    #[test]
    fn sixty_lines_a_page() {
        assert_eq!(count(""), 0);
        assert_eq!(count("one line"), 1);
        assert_eq!(count(&"x\n".repeat(60)), 1);
        assert_eq!(count(&"x\n".repeat(61)), 2);
        assert_eq!(count(&"\n".repeat(120)), 2);
    }

    #[test]
    fn form_feeds_end_pages_and_long_lines_wrap() {
        assert_eq!(count("a\x0cb\x0cc"), 3);
        assert_eq!(count("a\n\x0c"), 1);
        assert_eq!(count(&format!("{}\n", "y".repeat(80)).repeat(60)), 1);
        assert_eq!(count(&format!("{}\n", "y".repeat(81)).repeat(30)), 1);
        assert_eq!(count(&format!("{}\n", "y".repeat(81)).repeat(31)), 2);
        assert_eq!(count(&"\u{e9}".repeat(80 * 60)), 1);
        assert_eq!(count(&"\t".repeat(10 * 60)), 1);
    }

    #[test]
    fn too_many_pages_is_refused() {
        let limits = Limits {
            max_pages: 2,
            ..Limits::default()
        };
        let text = "x\x0c".repeat(3);
        let err = pages(&mut text.as_bytes(), &limits).unwrap_err();
        assert_eq!(err.kind(), "too-many-pages");
    }
}
