//! Pure decoders for serial card readers: bytes in, card taps out.
//!
//! Four framings are understood:
//!
//! - `rdm6300`: STX, ten hex digits of data (a version byte and four card
//!   bytes), two hex digits of checksum (the XOR of the five data bytes), ETX.
//! - `id12` (ID-12LA / ID-20LA in ASCII mode): as `rdm6300`, with CR LF
//!   before the ETX.
//! - `line-hex`: a line of hex digits ended by CR, LF or CR LF.
//! - `line-decimal`: a line of decimal digits (a Wiegand number printed by a
//!   keyboard-style reader), turned into hex.
//!
//! The decoder owns no port and no clock: the caller feeds what it read
//! together with a monotonic instant, so the reader task stays thin and tests
//! control time. It resynchronises on garbage, accepts frames split across
//! reads at any byte, drops a partial frame that went quiet, and folds the
//! repeats of a card held on the reader into one tap.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

const STX: u8 = 0x02;
const ETX: u8 = 0x03;
const CR: u8 = b'\r';
const LF: u8 = b'\n';

/// Hex digits between the STX and the tail of a hex frame: ten of data, two
/// of checksum.
const FRAME_HEX: usize = 12;
/// Hex digits of card data in a hex frame.
const DATA_HEX: usize = 10;
/// The shortest card id: five bytes, what RDM6300 and ID-12 readers send.
const MIN_ID_CHARS: usize = 10;
/// The longest card id, and so the longest line a line reader may send: a
/// 10-byte ISO 14443 UID is 20 hex digits and a `u64` at most 20 decimal
/// digits, so this leaves room for leading zeros.
const MAX_ID_CHARS: usize = 32;

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

    /// What follows the twelve hex digits of a hex frame, or `None` for the
    /// line framings.
    fn tail(self) -> Option<&'static [u8]> {
        match self {
            Framing::Rdm6300 => Some(&[ETX]),
            Framing::Id12 => Some(&[CR, LF, ETX]),
            Framing::LineHex | Framing::LineDecimal => None,
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
    fn from_decimal(text: &str) -> Option<CardId> {
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
fn mask(text: &str) -> String {
    let start = text.char_indices().rev().nth(3).map_or(0, |(i, _)| i);
    format!("…{}", &text[start..])
}

/// What the decoder saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A valid frame or line: a new tap of this card (repeats within the
    /// debounce window are not reported).
    Card(CardId),
    /// A complete hex frame whose checksum did not match; `frame` is its
    /// twelve hex digits (data and checksum), masked to the last 4.
    BadChecksum { frame: String },
    /// Bytes skipped while resynchronising, reported once per run of
    /// garbage rather than per byte. Hex framings report a run when the next
    /// frame begins (at its STX); line framings report a bad line at its
    /// terminator. A run may span several reads; a run left pending is also
    /// reported once the line has been quiet for `stale_after`.
    Garbage { bytes: usize },
    /// A partial frame or line (`bytes` long, STX included) dropped because
    /// no byte came for `stale_after`.
    Stale { bytes: usize },
}

/// Turns the bytes read from one reader into [`Event`]s.
pub struct Decoder {
    framing: Framing,
    debounce: Duration,
    stale_after: Duration,
    /// The frame or line in progress: for hex framings what followed the STX.
    buf: Vec<u8>,
    /// Hex framings: an STX was seen and `buf` holds what followed it.
    in_frame: bool,
    /// Line framings: the current line is garbage; skip to its terminator.
    skipping: bool,
    /// Line framings: the last byte was a CR, so an LF now only completes
    /// its terminator.
    after_cr: bool,
    /// Bytes skipped and not reported yet.
    garbage: usize,
    /// When the last byte arrived.
    last_byte: Option<Duration>,
    /// Cards seen within the debounce window, with their last sighting.
    seen: HashMap<CardId, Duration>,
}

impl Decoder {
    /// A decoder for one reader. `debounce`: the same card again less than
    /// this after its LAST sighting is the same tap (a card held on an
    /// RDM6300 repeats its frame continuously, so that is one tap until it
    /// is away for `debounce`). `stale_after`: a partial frame whose last
    /// byte is older than this when the next byte arrives is dropped.
    pub fn new(framing: Framing, debounce: Duration, stale_after: Duration) -> Decoder {
        Decoder {
            framing,
            debounce,
            stale_after,
            buf: Vec::with_capacity(FRAME_HEX + 3),
            in_frame: false,
            skipping: false,
            after_cr: false,
            garbage: 0,
            last_byte: None,
            seen: HashMap::new(),
        }
    }

    /// The framing this decoder reads.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// Feeds bytes read at `now` (a monotonic instant chosen by the caller,
    /// as a `Duration` since any fixed origin, so tests control time).
    /// Returns what completed, in order.
    ///
    /// Empty `bytes` delivers nothing but still lets a quiet gap expire: a
    /// caller whose reads time out may pass `&[]` to have a stale partial
    /// frame and pending garbage reported without waiting for the next byte.
    pub fn push(&mut self, bytes: &[u8], now: Duration) -> Vec<Event> {
        let mut out = Vec::new();
        if let Some(last) = self.last_byte {
            if now.saturating_sub(last) > self.stale_after {
                self.expire(&mut out);
            }
        }
        if bytes.is_empty() {
            return out;
        }
        self.last_byte = Some(now);
        match self.framing.tail() {
            Some(tail) => bytes
                .iter()
                .for_each(|&b| self.hex_byte(b, tail, now, &mut out)),
            None => bytes.iter().for_each(|&b| self.line_byte(b, now, &mut out)),
        }
        out
    }

    /// Forgets the partial frame and any unreported garbage (e.g. after the
    /// port was reopened). Debounce memory is kept.
    pub fn reset(&mut self) {
        self.clear_partial();
        self.garbage = 0;
        self.last_byte = None;
    }

    /// Bytes of the frame or line in progress, STX included.
    fn partial_len(&self) -> usize {
        usize::from(self.in_frame) + self.buf.len()
    }

    fn clear_partial(&mut self) {
        self.buf.clear();
        self.in_frame = false;
        self.skipping = false;
        self.after_cr = false;
    }

    /// The line went quiet: drop the partial frame, report pending garbage.
    fn expire(&mut self, out: &mut Vec<Event>) {
        let partial = self.partial_len();
        if partial > 0 {
            out.push(Event::Stale { bytes: partial });
        }
        self.flush_garbage(out);
        self.clear_partial();
    }

    fn flush_garbage(&mut self, out: &mut Vec<Event>) {
        if self.garbage > 0 {
            out.push(Event::Garbage {
                bytes: std::mem::take(&mut self.garbage),
            });
        }
    }

    /// One byte of an `rdm6300` or `id12` stream; `tail` is what follows
    /// the twelve hex digits.
    fn hex_byte(&mut self, b: u8, tail: &[u8], now: Duration, out: &mut Vec<Event>) {
        if b == STX {
            // A frame starts here, whatever came before.
            if self.in_frame {
                self.garbage += 1 + self.buf.len();
            }
            self.flush_garbage(out);
            self.in_frame = true;
            self.buf.clear();
            return;
        }
        if !self.in_frame {
            self.garbage += 1;
            return;
        }
        let at = self.buf.len();
        let expected = match at.checked_sub(FRAME_HEX) {
            None => b.is_ascii_hexdigit(),
            Some(i) => tail[i] == b,
        };
        if !expected {
            // The STX, what followed and this byte; hunt for the next STX.
            self.garbage += 1 + at + 1;
            self.in_frame = false;
            self.buf.clear();
            return;
        }
        self.buf.push(b);
        if self.buf.len() == FRAME_HEX + tail.len() {
            self.in_frame = false;
            self.complete_frame(now, out);
            self.buf.clear();
        }
    }

    /// Checks the checksum of the complete hex frame in `buf`.
    fn complete_frame(&mut self, now: Duration, out: &mut Vec<Event>) {
        let text = String::from_utf8_lossy(&self.buf[..FRAME_HEX]).to_ascii_uppercase();
        let mut bytes = [0u8; FRAME_HEX / 2];
        for (byte, pair) in bytes.iter_mut().zip(self.buf.chunks_exact(2)) {
            *byte = hex_value(pair[0]) << 4 | hex_value(pair[1]);
        }
        let (data, sum) = bytes.split_at(DATA_HEX / 2);
        if data.iter().fold(0, |acc, b| acc ^ b) == sum[0] {
            self.sighted(CardId(text[..DATA_HEX].to_string()), now, out);
        } else {
            out.push(Event::BadChecksum { frame: mask(&text) });
        }
    }

    /// One byte of a `line-hex` or `line-decimal` stream.
    fn line_byte(&mut self, b: u8, now: Duration, out: &mut Vec<Event>) {
        let after_cr = std::mem::replace(&mut self.after_cr, b == CR);
        if b == CR || b == LF {
            if !(b == LF && after_cr) {
                self.end_line(now, out);
            }
            return;
        }
        if self.skipping {
            self.garbage += 1;
            return;
        }
        let digit = match self.framing {
            Framing::LineDecimal => b.is_ascii_digit(),
            _ => b.is_ascii_hexdigit(),
        };
        if digit && self.buf.len() < MAX_ID_CHARS {
            self.buf.push(b);
        } else {
            self.garbage += self.buf.len() + 1;
            self.buf.clear();
            self.skipping = true;
        }
    }

    /// A line terminator: decode the line (an empty one is ignored).
    fn end_line(&mut self, now: Duration, out: &mut Vec<Event>) {
        if self.skipping {
            self.skipping = false;
        } else if !self.buf.is_empty() {
            let id = std::str::from_utf8(&self.buf)
                .ok()
                .and_then(|text| match self.framing {
                    Framing::LineDecimal => CardId::from_decimal(text),
                    _ => CardId::parse(text),
                });
            match id {
                Some(id) => self.sighted(id, now, out),
                None => self.garbage += self.buf.len(),
            }
            self.buf.clear();
        }
        self.flush_garbage(out);
    }

    /// A valid card: a new tap unless it was seen less than `debounce` ago.
    /// Either way its last sighting is now.
    fn sighted(&mut self, id: CardId, now: Duration, out: &mut Vec<Event>) {
        let debounce = self.debounce;
        self.seen
            .retain(|_, last| now.saturating_sub(*last) < debounce);
        let repeat = self.seen.insert(id.clone(), now).is_some();
        if !repeat {
            out.push(Event::Card(id));
        }
    }
}

impl fmt::Debug for Decoder {
    /// Counts only: the debounce memory holds whole card ids.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decoder")
            .field("framing", &self.framing)
            .field("debounce", &self.debounce)
            .field("stale_after", &self.stale_after)
            .field("partial_bytes", &self.partial_len())
            .field("pending_garbage", &self.garbage)
            .field("cards_in_debounce", &self.seen.len())
            .finish()
    }
}

/// The value of an ASCII hex digit (already checked to be one).
fn hex_value(b: u8) -> u8 {
    (b as char).to_digit(16).map_or(0, |d| d as u8)
}

#[cfg(test)]
mod tests;
