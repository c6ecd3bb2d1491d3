//! The decoder's tests: helpers here, hex frames in [`frames`], lines,
//! debounce, staleness and fuzzing in [`lines`].

use super::*;

const DEBOUNCE: Duration = Duration::from_millis(500);
const STALE: Duration = Duration::from_millis(100);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn decoder(framing: Framing) -> Decoder {
    Decoder::new(framing, DEBOUNCE, STALE)
}

fn card(id: &str) -> Event {
    Event::Card(CardId::parse(id).unwrap())
}

/// The XOR checksum of ten hex digits, as two uppercase hex digits.
fn checksum(data: &str) -> String {
    let sum = (0..data.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&data[i..i + 2], 16).unwrap())
        .fold(0, |acc, b| acc ^ b);
    format!("{sum:02X}")
}

/// A hex frame for `data` with the given checksum text.
fn frame_with_sum(framing: Framing, data: &str, sum: &str) -> Vec<u8> {
    let mut f = vec![STX];
    f.extend_from_slice(data.as_bytes());
    f.extend_from_slice(sum.as_bytes());
    f.extend_from_slice(tail(framing).unwrap());
    f
}

/// What a reader of `framing` sends for the card whose id is `data`
/// (ten hex digits); line frames get a terminator on both sides.
fn frame(framing: Framing, data: &str) -> Vec<u8> {
    match framing {
        Framing::Rdm6300 | Framing::Id12 => frame_with_sum(framing, data, &checksum(data)),
        Framing::LineHex => format!("\n{data}\n").into_bytes(),
        Framing::LineDecimal => {
            format!("\n{}\n", u64::from_str_radix(data, 16).unwrap()).into_bytes()
        }
    }
}

fn hex_framings() -> [Framing; 2] {
    [Framing::Rdm6300, Framing::Id12]
}

fn garbage_total(events: &[Event]) -> usize {
    events
        .iter()
        .map(|e| match e {
            Event::Garbage { bytes } => *bytes,
            _ => 0,
        })
        .sum()
}

fn cards(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Card(id) => Some(id.as_str().to_string()),
            _ => None,
        })
        .collect()
}

/// Feeds `pieces` one push each, `step` apart from `start`; all events.
fn feed(dec: &mut Decoder, pieces: &[&[u8]], start: Duration, step: Duration) -> Vec<Event> {
    let mut now = start;
    let mut out = Vec::new();
    for piece in pieces {
        out.extend(dec.push(piece, now));
        now += step;
    }
    out
}

/// A small deterministic xorshift generator.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// A byte biased towards the ones a decoder cares about.
    fn byte(&mut self) -> u8 {
        const INTERESTING: &[u8] = b"0123456789ABCDEFabcdef\x02\x03\r\n";
        match self.below(2) {
            0 => INTERESTING[self.below(INTERESTING.len() as u64) as usize],
            _ => self.next() as u8,
        }
    }

    fn bytes(&mut self, max_len: u64) -> Vec<u8> {
        let len = self.below(max_len + 1);
        (0..len).map(|_| self.byte()).collect()
    }
}

mod frames;
mod lines;
