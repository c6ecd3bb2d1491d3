//! Where a field is in a JSON grants file, for errors: the line of the value
//! a [`Path`] (`member[0].grant[1].amount`) leads to. serde_json keeps no
//! spans, so this walks the text itself; it only ever reads a file
//! serde_json has already accepted, so it need not judge JSON, only skip it.

use super::{Path, Seg};
use crate::config::line_of;

impl Path {
    /// The line of this path's value in a JSON document; of the nearest
    /// enclosing value when the last keys are missing (a field the file
    /// lacks is reported where its object starts).
    pub(super) fn json_line(&self, text: &str) -> Option<usize> {
        let mut scan = Scan {
            text,
            bytes: text.as_bytes(),
            at: 0,
        };
        scan.value_at(&self.0).map(|at| line_of(text, at))
    }
}

/// A cursor over JSON text.
struct Scan<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl Scan<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn space(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.at += 1;
        }
    }

    /// Past `byte` (after any space), or `None` if something else is there.
    fn expect(&mut self, byte: u8) -> Option<()> {
        self.space();
        (self.peek()? == byte).then(|| self.at += 1)
    }

    /// The string starting here, decoded (escapes and all) by serde_json.
    fn string(&mut self) -> Option<String> {
        let start = self.at;
        self.at += 1;
        loop {
            match self.peek()? {
                b'\\' => self.at += 2,
                b'"' => break,
                _ => self.at += 1,
            }
        }
        self.at += 1;
        serde_json::from_str(self.text.get(start..self.at)?).ok()
    }

    /// Past the value starting here (after any space).
    fn skip(&mut self) -> Option<()> {
        self.space();
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    match self.peek()? {
                        b'"' => {
                            self.string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.at += 1;
                                return Some(());
                            }
                        }
                        _ => {}
                    }
                    self.at += 1;
                }
            }
            _ => {
                while self
                    .peek()
                    .is_some_and(|b| !matches!(b, b',' | b'}' | b']') && !b.is_ascii_whitespace())
                {
                    self.at += 1;
                }
                Some(())
            }
        }
    }

    /// The offset of the value `path` leads to from the value starting here
    /// (this value's own when `path` is empty, or when it holds no such
    /// key or index).
    fn value_at(&mut self, path: &[Seg]) -> Option<usize> {
        self.space();
        let start = self.at;
        let Some((seg, rest)) = path.split_first() else {
            return Some(start);
        };
        let found = match (self.peek()?, seg) {
            (b'{', Seg::Key(key)) => self.member(key)?,
            (b'[', Seg::Index(index)) => self.element(*index)?,
            _ => false,
        };
        if found {
            self.value_at(rest)
        } else {
            Some(start)
        }
    }

    /// In the object starting here, moves to the value of `key`; `false`
    /// if it has none.
    fn member(&mut self, key: &str) -> Option<bool> {
        self.at += 1;
        loop {
            self.space();
            if self.peek()? != b'"' {
                return Some(false);
            }
            let name = self.string()?;
            self.expect(b':')?;
            if name == key {
                return Some(true);
            }
            self.skip()?;
            if self.expect(b',').is_none() {
                return Some(false);
            }
        }
    }

    /// In the array starting here, moves to element `index`; `false` if it
    /// is shorter.
    fn element(&mut self, index: usize) -> Option<bool> {
        self.at += 1;
        for _ in 0..index {
            self.space();
            if self.peek()? == b']' {
                return Some(false);
            }
            self.skip()?;
            if self.expect(b',').is_none() {
                return Some(false);
            }
        }
        self.space();
        Some(self.peek()? != b']')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"{
  "timezone": "Europe/Lisbon",
  "plan": [
    {"id": "a", "benefit": [{"id": "x", "note": "a \"quoted\" ] }", "amount": 1}]},
    {
      "id": "b",
      "benefit": [
        {"id": "y", "credit": "printing",
         "amount": 9223372036854775807}
      ]
    }
  ]
}"#;

    fn line(path: Path) -> Option<usize> {
        path.json_line(FILE)
    }

    #[test]
    fn a_path_leads_to_its_values_line() {
        let root = Path::default();
        assert_eq!(line(root.key("timezone")), Some(2));
        assert_eq!(line(root.at("plan", 0).key("id")), Some(4));
        assert_eq!(line(root.at("plan", 1).key("id")), Some(6));
        let benefit = root.at("plan", 1).at("benefit", 0);
        assert_eq!(line(benefit.key("amount")), Some(9));
        assert_eq!(line(benefit.key("credit")), Some(8));
    }

    #[test]
    fn a_missing_field_is_reported_where_its_object_starts() {
        let root = Path::default();
        assert_eq!(line(root.at("plan", 1).key("renews")), Some(5));
        assert_eq!(line(root.at("plan", 7)), Some(3));
        assert_eq!(line(root.at("plan", 0).at("benefit", 0).key("x")), Some(4));
        assert_eq!(line(root), Some(1));
    }
}
