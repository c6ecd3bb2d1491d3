//! The card-frame decoders (`tallyd::reader::decode`): arbitrary bytes, cut
//! into arbitrary reads at arbitrary instants, for each framing.
//!
//! Input: `framing, debounce, stale, n`, then `n` pairs `(length, gap)`
//! cutting the rest (the stream) into reads `gap` × 10 ms apart, the last
//! read being what is left. So a seed is 4 bytes (`00 64 64 00`: rdm6300,
//! 1 s, 1 s, no cuts) followed by what a reader sends.
//!
//! Checked:
//! - nothing panics;
//! - the same bytes cut differently but read at one instant give the same
//!   events as one read of them all (the decoder's promise that a frame may
//!   be split at any byte);
//! - every card id is canonical (uppercase hex, even length, 10 to 32
//!   characters) and reads back as itself;
//! - a bad checksum is reported masked (never a whole id);
//! - garbage and stale bytes reported never add up to more than was read.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::time::Duration;
use tallyd::ids::{CardId, Framing};
use tallyd::reader::decode::{Decoder, Event};

struct Case<'a> {
    framing: Framing,
    debounce: Duration,
    stale: Duration,
    /// `(bytes, gap before them)`, in order.
    reads: Vec<(&'a [u8], Duration)>,
    stream: &'a [u8],
}

fn case(data: &[u8]) -> Option<Case<'_>> {
    let (&[framing, debounce, stale, n], rest) = data.split_first_chunk::<4>()?;
    let cuts_len = usize::from(n) * 2;
    let (cuts, stream) = rest.split_at_checked(cuts_len)?;
    let mut reads = Vec::new();
    let mut at = 0;
    for pair in cuts.chunks_exact(2) {
        let end = (at + usize::from(pair[0])).min(stream.len());
        reads.push((&stream[at..end], ms(pair[1])));
        at = end;
    }
    reads.push((&stream[at..], Duration::ZERO));
    Some(Case {
        framing: Framing::ALL[usize::from(framing) % Framing::ALL.len()],
        debounce: ms(debounce),
        stale: ms(stale),
        reads,
        stream,
    })
}

fn ms(tens: u8) -> Duration {
    Duration::from_millis(u64::from(tens) * 10)
}

fn check_event(event: &Event) {
    match event {
        Event::Card(id) => {
            let text = id.as_str();
            assert!((10..=32).contains(&text.len()), "card id {text:?}");
            assert!(text.len() % 2 == 0, "card id {text:?}");
            assert!(
                text.bytes()
                    .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)),
                "card id {text:?}"
            );
            assert_eq!(CardId::parse(text).as_ref(), Some(id));
        }
        Event::BadChecksum { frame } => {
            assert!(frame.starts_with('…'), "unmasked frame {frame:?}");
            assert!(frame.chars().count() <= 5, "unmasked frame {frame:?}");
        }
        Event::Garbage { bytes } | Event::Stale { bytes } => assert!(*bytes > 0),
    }
}

fn skipped(events: &[Event]) -> usize {
    events
        .iter()
        .map(|e| match e {
            Event::Garbage { bytes } | Event::Stale { bytes } => *bytes,
            _ => 0,
        })
        .sum()
}

fuzz_target!(|data: &[u8]| {
    let Some(case) = case(data) else {
        return;
    };
    let decoder = || Decoder::new(case.framing, case.debounce, case.stale);

    // One read of everything, and the same bytes cut up, at one instant.
    let whole = decoder().push(case.stream, Duration::ZERO);
    let mut cut = decoder();
    let pieces: Vec<Event> = case
        .reads
        .iter()
        .flat_map(|(bytes, _)| cut.push(bytes, Duration::ZERO))
        .collect();
    assert_eq!(whole, pieces, "cutting the reads changed what was decoded");

    // The reads as they came, with quiet gaps; then a long silence.
    let mut timed = decoder();
    let mut now = Duration::ZERO;
    let mut events = Vec::new();
    for (bytes, gap) in &case.reads {
        now += *gap;
        events.extend(timed.push(bytes, now));
    }
    events.extend(timed.push(&[], now + case.stale + Duration::from_secs(1)));
    events.iter().for_each(check_event);
    assert!(
        skipped(&events) <= case.stream.len(),
        "{} bytes reported skipped of {} read",
        skipped(&events),
        case.stream.len()
    );
    assert!(skipped(&whole) <= case.stream.len());
});
