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

use crate::ids::{mask, CardId, Framing, MAX_ID_CHARS};
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

/// What follows the twelve hex digits of a hex frame, or `None` for the
/// line framings.
fn tail(framing: Framing) -> Option<&'static [u8]> {
    match framing {
        Framing::Rdm6300 => Some(&[ETX]),
        Framing::Id12 => Some(&[CR, LF, ETX]),
        Framing::LineHex | Framing::LineDecimal => None,
    }
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
        match tail(self.framing) {
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

    /// Whether a new tap is on its way at `now`: a frame or line has begun
    /// and not ended, and no card rests on the reader (a card held there
    /// repeats its frame within `debounce`, and repeats are not taps).
    pub fn tap_coming(&self, now: Duration) -> bool {
        let begun = self.in_frame || (!self.buf.is_empty() && !self.skipping);
        begun
            && !self
                .seen
                .values()
                .any(|&last| now.saturating_sub(last) < self.debounce)
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
        // Ten hex digits always parse as a card id.
        match CardId::parse(&text[..DATA_HEX]) {
            Some(card) if data.iter().fold(0, |acc, b| acc ^ b) == sum[0] => {
                self.sighted(card, now, out)
            }
            _ => out.push(Event::BadChecksum { frame: mask(&text) }),
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
