//! Restarted and stale frames, debounce, line framings, and fuzzing.

use super::*;

#[test]
fn stx_mid_frame_restarts_the_frame() {
    for framing in hex_framings() {
        let mut dec = decoder(framing);
        let mut bytes = b"\x0214008E".to_vec();
        bytes.extend(frame(framing, "0A0B0C0D0E"));
        assert_eq!(
            dec.push(&bytes, ms(0)),
            [Event::Garbage { bytes: 7 }, card("0A0B0C0D0E")]
        );
        // The same across reads.
        let mut dec = decoder(framing);
        let events = feed(
            &mut dec,
            &[&bytes[..3], &bytes[3..9], &bytes[9..]],
            ms(0),
            ms(10),
        );
        assert_eq!(events, [Event::Garbage { bytes: 7 }, card("0A0B0C0D0E")]);
        // Two restarts are two runs.
        let mut dec = decoder(framing);
        let events = feed(&mut dec, &[b"\x0214008E", &bytes], ms(0), ms(10));
        assert_eq!(
            events,
            [
                Event::Garbage { bytes: 7 },
                Event::Garbage { bytes: 7 },
                card("0A0B0C0D0E")
            ]
        );
    }
}

#[test]
fn stale_partial_frame_is_dropped_and_the_next_frame_decodes() {
    for framing in hex_framings() {
        let whole = frame(framing, "14008EC793");
        // Gap of exactly `stale_after`: not stale yet.
        let mut dec = decoder(framing);
        let events = feed(&mut dec, &[&whole[..6], &whole[6..]], ms(0), STALE);
        assert_eq!(events, [card("14008EC793")], "{framing}");

        // Longer: the partial is dropped, the rest of it is garbage.
        let mut dec = decoder(framing);
        assert_eq!(dec.push(&whole[..6], ms(0)), []);
        assert_eq!(dec.push(&whole[6..], ms(101)), [Event::Stale { bytes: 6 }]);
        assert_eq!(
            dec.push(&whole, ms(110)),
            [
                Event::Garbage {
                    bytes: whole.len() - 6
                },
                card("14008EC793")
            ]
        );

        // A stale partial followed by a whole frame in one read.
        let mut dec = decoder(framing);
        dec.push(&whole[..1], ms(0));
        assert_eq!(
            dec.push(&frame(framing, "0A0B0C0D0E"), ms(1000)),
            [Event::Stale { bytes: 1 }, card("0A0B0C0D0E")]
        );

        // An empty read after the gap reports the partial without waiting.
        let mut dec = decoder(framing);
        dec.push(&whole[..9], ms(0));
        assert_eq!(dec.push(&[], ms(50)), []);
        assert_eq!(dec.push(&[], ms(200)), [Event::Stale { bytes: 9 }]);
        assert_eq!(dec.push(&[], ms(400)), []);
        assert_eq!(dec.push(&whole, ms(401)), [card("14008EC793")]);
    }
}

#[test]
fn stale_partial_line_is_dropped() {
    let cases = [
        (Framing::LineHex, "8EC7", "93\n", "0000000093"),
        (Framing::LineDecimal, "1234", "56\n", "0000000038"),
    ];
    for (framing, first, rest, id) in cases {
        let mut dec = decoder(framing);
        assert_eq!(dec.push(first.as_bytes(), ms(0)), []);
        assert_eq!(
            dec.push(rest.as_bytes(), ms(200)),
            [Event::Stale { bytes: 4 }, card(id)],
            "{framing}"
        );
        // A bad line that goes quiet is garbage, not stale.
        assert_eq!(dec.push(b"12x4", ms(2000)), []);
        assert_eq!(
            dec.push(rest.as_bytes(), ms(3000)),
            [Event::Garbage { bytes: 4 }, card(id)]
        );
    }
}

#[test]
fn repeats_within_debounce_are_one_tap() {
    for framing in Framing::ALL {
        let f = frame(framing, "14008EC793");
        let mut dec = decoder(framing);
        let mut taps = Vec::new();
        // Each sighting is less than 500 ms after the previous one.
        for t in [0, 100, 499, 998, 1497] {
            taps.push((t, dec.push(&f, ms(t))));
        }
        // 500 ms after the last sighting: a new tap.
        taps.push((1997, dec.push(&f, ms(1997))));
        let reported: Vec<u64> = taps
            .iter()
            .filter(|(_, e)| !e.is_empty())
            .map(|(t, _)| *t)
            .collect();
        assert_eq!(reported, [0, 1997], "{framing}");
    }
}

#[test]
fn held_card_is_one_tap_until_it_is_away() {
    for framing in Framing::ALL {
        let f = frame(framing, "14008EC793");
        let mut dec = decoder(framing);
        let mut events = Vec::new();
        // Held for 2 s, the reader repeating every 60 ms.
        for t in (0..=2000).step_by(60) {
            events.extend(dec.push(&f, ms(t)));
        }
        assert_eq!(events, [card("14008EC793")], "{framing}");
        // Away for 600 ms, then back: a new tap.
        assert_eq!(dec.push(&f, ms(1980 + 600)), [card("14008EC793")]);
    }
}

#[test]
fn different_cards_are_each_reported() {
    for framing in Framing::ALL {
        let a = frame(framing, "14008EC793");
        let b = frame(framing, "0A0B0C0D0E");
        // A different card right away is a tap of its own.
        let mut dec = decoder(framing);
        assert_eq!(dec.push(&a, ms(0)), [card("14008EC793")]);
        assert_eq!(dec.push(&b, ms(1)), [card("0A0B0C0D0E")]);

        // Alternating every 60 ms: each card is reported once.
        let mut dec = decoder(framing);
        let mut events = Vec::new();
        for (i, t) in (0..1200).step_by(60).enumerate() {
            events.extend(dec.push(if i % 2 == 0 { &a } else { &b }, ms(t)));
        }
        assert_eq!(
            events,
            [card("14008EC793"), card("0A0B0C0D0E")],
            "{framing}"
        );

        // Alternating 1 s apart: every tap is reported.
        let mut dec = decoder(framing);
        let mut events = Vec::new();
        for (i, t) in (0..4000).step_by(1000).enumerate() {
            events.extend(dec.push(if i % 2 == 0 { &a } else { &b }, ms(t)));
        }
        assert_eq!(
            cards(&events),
            ["14008EC793", "0A0B0C0D0E", "14008EC793", "0A0B0C0D0E"]
        );
    }
}

#[test]
fn debounce_memory_forgets_old_cards() {
    let mut dec = decoder(Framing::LineHex);
    for i in 0..1000u64 {
        let line = format!("{:010X}\n", i);
        assert_eq!(dec.push(line.as_bytes(), ms(i * 100)).len(), 1);
    }
    // Only the cards of the last 500 ms are remembered.
    assert!(dec.seen.len() <= 5, "{}", dec.seen.len());
    let mut zero = Decoder::new(Framing::LineHex, Duration::ZERO, STALE);
    assert_eq!(zero.push(b"AB\nAB\n", ms(0)), [card("AB"), card("AB")]);
}

#[test]
fn reset_forgets_the_partial_frame_but_keeps_debounce() {
    for framing in hex_framings() {
        let f = frame(framing, "14008EC793");
        let mut dec = decoder(framing);
        assert_eq!(dec.push(&f, ms(0)), [card("14008EC793")]);
        assert_eq!(dec.push(&f[..5], ms(10)), []);
        dec.reset();
        // The rest of the old frame is garbage now.
        assert_eq!(dec.push(&f[5..], ms(20)), []);
        // Still within the debounce of the first sighting: no new tap.
        assert_eq!(
            dec.push(&f, ms(30)),
            [Event::Garbage { bytes: f.len() - 5 }]
        );
        assert_eq!(dec.push(&f, ms(400)), []);
        assert_eq!(dec.push(&f, ms(900)), [card("14008EC793")]);
    }
    let mut dec = decoder(Framing::LineHex);
    dec.push(b"12x", ms(0));
    dec.reset();
    assert_eq!(dec.push(b"34\n", ms(1)), [card("34")]);
}

#[test]
fn line_hex_lines() {
    let cases: &[(&[u8], &[&str], usize)] = &[
        (b"14008EC793\r", &["14008EC793"], 0),
        (b"14008EC793\n", &["14008EC793"], 0),
        (b"14008EC793\r\n", &["14008EC793"], 0),
        (b"14008ec793\r\n", &["14008EC793"], 0),
        (b"8EC793\n", &["00008EC793"], 0),
        (b"8ec793\r", &["00008EC793"], 0),
        (b"04A1B2C3D4E5F6\n", &["04A1B2C3D4E5F6"], 0),
        (b"ABC\n", &["0000000ABC"], 0),
        (b"\n\n\r\r\n\r\n", &[], 0),
        (b"\r\n\r\n8EC793\r\n\r\n", &["00008EC793"], 0),
        (
            b"11\r22\n33\r\n44\n\r55\r",
            &["11", "22", "33", "44", "55"],
            0,
        ),
        (b"12 34\n", &[], 5),
        (b"12G4\r\nABCD\n", &["ABCD"], 4),
        (b"0x12\nAB\n", &["AB"], 4),
        (b"\x0214008EC793CE\x03\n", &[], 14),
        // No terminator yet: nothing.
        (b"14008EC793", &[], 0),
    ];
    for &(bytes, ids, garbage) in cases {
        let mut dec = decoder(Framing::LineHex);
        let events = dec.push(bytes, ms(0));
        let want: Vec<String> = ids
            .iter()
            .map(|i| CardId::parse(i).unwrap().as_str().to_string())
            .collect();
        assert_eq!(cards(&events), want, "{bytes:?}");
        assert_eq!(garbage_total(&events), garbage, "{bytes:?}");
    }
}

#[test]
fn line_hex_crlf_split_across_reads_is_one_terminator() {
    let mut dec = decoder(Framing::LineHex);
    let events = feed(&mut dec, &[b"ABCD\r", b"\nEF01\r", b"\n"], ms(0), ms(5));
    assert_eq!(events, [card("ABCD"), card("EF01")]);
}

#[test]
fn line_too_long_is_garbage() {
    let mut dec = decoder(Framing::LineHex);
    let long = "A".repeat(33);
    let ok = "B".repeat(32);
    let events = dec.push(format!("{long}\n{ok}\n").as_bytes(), ms(0));
    assert_eq!(events, [Event::Garbage { bytes: 33 }, card(&ok)]);
}

#[test]
fn line_decimal_lines() {
    let cases: &[(&[u8], &[&str], usize)] = &[
        (b"0012345678\n", &["0000BC614E"], 0),
        (b"12345678\r\n", &["0000BC614E"], 0),
        (b"0\n", &["0000000000"], 0),
        (b"00000000000000000000000000000255\n", &["00000000FF"], 0),
        (b"000000000000000000000000000000255\n", &[], 33),
        (b"1099511627775\n", &["FFFFFFFFFF"], 0),
        (b"1099511627776\n", &["010000000000"], 0),
        (b"18446744073709551615\n", &["FFFFFFFFFFFFFFFF"], 0),
        // Overflow, hex digits, signs and spaces are garbage.
        (b"18446744073709551616\n", &[], 20),
        (b"99999999999999999999\r42\r", &["000000002A"], 20),
        (b"12AB\n", &[], 4),
        (b"+123\n", &[], 4),
        (b"-1\n", &[], 2),
        (b"1 2\n", &[], 3),
        (b"\r\n\n\r", &[], 0),
    ];
    for &(bytes, ids, garbage) in cases {
        let mut dec = decoder(Framing::LineDecimal);
        let events = dec.push(bytes, ms(0));
        assert_eq!(cards(&events), ids, "{bytes:?}");
        assert_eq!(garbage_total(&events), garbage, "{bytes:?}");
    }
}

#[test]
fn debug_does_not_show_remembered_ids() {
    let mut dec = decoder(Framing::Rdm6300);
    dec.push(&frame(Framing::Rdm6300, "14008EC793"), ms(0));
    dec.push(b"\x0214", ms(1));
    let debug = format!("{dec:?}");
    assert!(!debug.contains("8EC7"), "{debug}");
    assert!(debug.contains("cards_in_debounce: 1"), "{debug}");
    assert!(debug.contains("partial_bytes: 3"), "{debug}");
}

/// Random chunks, gaps and stray control bytes, with valid frames of
/// distinct cards mixed in: no panic, every embedded card reported exactly
/// once, in order, and for hex framings every byte accounted for.
#[test]
fn fuzz_random_chunks_with_embedded_frames() {
    for (seed, framing) in Framing::ALL.into_iter().enumerate() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15 ^ seed as u64);
        let mut dec = decoder(framing);
        let mut now = Duration::ZERO;
        let mut last_frame = Duration::ZERO;
        let mut fed = 0usize;
        let mut events = Vec::new();
        let mut embedded = Vec::new();
        for i in 0..10_000u64 {
            now += match rng.below(50) {
                0 => ms(150),
                _ => ms(rng.below(20)),
            };
            let chunk = rng.bytes(24);
            fed += chunk.len();
            events.extend(dec.push(&chunk, now));
            if i % 40 == 39 {
                now = now.max(last_frame + DEBOUNCE + ms(1));
                last_frame = now;
                let id = format!("{:010X}", 0x10_0000_0000 + i * 7919);
                let mut f = frame(framing, &id);
                if rng.below(2) == 0 {
                    f.make_ascii_lowercase();
                }
                if tail(framing).is_none() && rng.below(2) == 0 {
                    // CR instead of LF as the terminator.
                    f = f.iter().map(|&b| if b == LF { CR } else { b }).collect();
                }
                let cut = rng.below(f.len() as u64 + 1) as usize;
                fed += f.len();
                events.extend(dec.push(&f[..cut], now));
                now += ms(1);
                events.extend(dec.push(&f[cut..], now));
                embedded.push(id);
            }
        }
        assert_eq!(embedded.len(), 250);
        let seen = cards(&events);
        let mut rest = seen.iter();
        for id in &embedded {
            assert_eq!(
                seen.iter().filter(|s| *s == id).count(),
                1,
                "{framing} {id}"
            );
            assert!(rest.any(|s| s == id), "{framing}: {id} out of order");
        }
        let stale: usize = events
            .iter()
            .map(|e| match e {
                Event::Stale { bytes } => *bytes,
                _ => 0,
            })
            .sum();
        let garbage = garbage_total(&events);
        // The noise did exercise resynchronisation and expiry.
        assert!(garbage > 0 && stale > 0, "{framing}: {garbage} {stale}");
        if let Some(tail) = tail(framing) {
            let frames = events
                .iter()
                .filter(|e| matches!(e, Event::Card(_) | Event::BadChecksum { .. }))
                .count();
            let len = 1 + FRAME_HEX + tail.len();
            assert_eq!(
                garbage + stale + frames * len + dec.garbage + dec.partial_len(),
                fed,
                "{framing}"
            );
        } else {
            assert!(garbage + stale <= fed);
        }
    }
}
