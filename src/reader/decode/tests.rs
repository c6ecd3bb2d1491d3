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

#[test]
fn framing_names_round_trip() {
    for f in Framing::ALL {
        assert_eq!(Framing::parse(f.as_str()), Some(f));
        assert_eq!(f.to_string(), f.as_str());
    }
    let names: Vec<_> = Framing::ALL.iter().map(|f| f.as_str()).collect();
    assert_eq!(names, ["rdm6300", "id12", "line-hex", "line-decimal"]);
    for bad in ["", "RDM6300", "id-12", "line_hex", "hex", " rdm6300"] {
        assert_eq!(Framing::parse(bad), None, "{bad:?}");
    }
}

#[test]
fn card_id_parse_normalises() {
    let cases: &[(&str, Option<&str>)] = &[
        ("14008EC793", Some("14008EC793")),
        ("14008ec793", Some("14008EC793")),
        ("8EC793", Some("00008EC793")),
        ("ABC", Some("0000000ABC")),
        ("0", Some("0000000000")),
        ("0000000000", Some("0000000000")),
        ("1234567890A", Some("01234567890A")),
        ("04A1B2C3D4E5F6", Some("04A1B2C3D4E5F6")),
        (&"F".repeat(32), Some(&"F".repeat(32))),
        (&"F".repeat(31), Some(&format!("0{}", "F".repeat(31)))),
        (&"F".repeat(33), None),
        ("", None),
        ("12G4", None),
        (" 1234", None),
        ("1234\n", None),
        ("0x1234", None),
        ("-1234", None),
        ("１２", None),
    ];
    for (text, want) in cases {
        let got = CardId::parse(text);
        assert_eq!(got.as_ref().map(CardId::as_str), *want, "{text:?}");
        if let Some(id) = got {
            assert!(id.as_str().len() >= 10 && id.as_str().len() % 2 == 0);
        }
    }
}

#[test]
fn masked_and_display_show_only_last_four() {
    for text in [
        "14008EC793",
        "00008EC793",
        "04A1B2C3D4E5F6",
        &"AB".repeat(16),
    ] {
        let id = CardId::parse(text).unwrap();
        let last4 = &text[text.len() - 4..];
        assert_eq!(id.masked(), format!("…{last4}"));
        assert_eq!(id.to_string(), id.masked());
        assert_eq!(format!("card {id} tapped"), format!("card …{last4} tapped"));
        assert!(!id.to_string().contains(&text[..text.len() - 4]));
        assert_eq!(
            id.to_string()
                .chars()
                .filter(char::is_ascii_hexdigit)
                .count(),
            4
        );
    }
    assert_eq!(mask("AB"), "…AB");
    assert_eq!(mask(""), "…");
}

#[test]
fn testing_md_rdm6300_example() {
    assert_eq!(checksum("14008EC793"), "CE");
    let mut bytes = vec![0x02];
    bytes.extend_from_slice(b"14008EC793CE");
    bytes.push(0x03);
    assert_eq!(bytes.len(), 14);
    assert_eq!(frame(Framing::Rdm6300, "14008EC793"), bytes);
    let mut dec = decoder(Framing::Rdm6300);
    assert_eq!(dec.push(&bytes, ms(0)), [card("14008EC793")]);
}

#[test]
fn valid_frame_of_each_framing() {
    let cases: &[(Framing, &[u8], &str)] = &[
        (Framing::Rdm6300, b"\x0214008EC793CE\x03", "14008EC793"),
        (Framing::Rdm6300, b"\x0214008ec793ce\x03", "14008EC793"),
        (Framing::Id12, b"\x0214008EC793CE\r\n\x03", "14008EC793"),
        (Framing::Id12, b"\x0214008ec793cE\r\n\x03", "14008EC793"),
        (Framing::LineHex, b"14008EC793\n", "14008EC793"),
        (Framing::LineHex, b"14008ec793\r", "14008EC793"),
        (Framing::LineHex, b"14008EC793\r\n", "14008EC793"),
        (Framing::LineDecimal, b"0012345678\n", "0000BC614E"),
        (Framing::LineDecimal, b"85908703123\r\n", "14008EC793"),
    ];
    for &(framing, bytes, id) in cases {
        let mut dec = decoder(framing);
        assert_eq!(dec.push(bytes, ms(0)), [card(id)], "{framing} {bytes:?}");
        assert_eq!(dec.partial_len(), 0);
        assert_eq!(dec.garbage, 0);
    }
    // All-zero data has checksum 00.
    let mut dec = decoder(Framing::Rdm6300);
    let zero = frame(Framing::Rdm6300, "0000000000");
    assert_eq!(zero, b"\x02000000000000\x03");
    assert_eq!(dec.push(&zero, ms(0)), [card("0000000000")]);
}

#[test]
fn several_frames_in_one_push_come_out_in_order() {
    for framing in Framing::ALL {
        let mut dec = decoder(framing);
        let mut bytes = Vec::new();
        for id in ["14008EC793", "0A0B0C0D0E", "1122334455"] {
            bytes.extend(frame(framing, id));
        }
        assert_eq!(
            dec.push(&bytes, ms(0)),
            [card("14008EC793"), card("0A0B0C0D0E"), card("1122334455")],
            "{framing}"
        );
    }
}

#[test]
fn split_at_every_pair_of_boundaries() {
    for framing in Framing::ALL {
        let mut stream = b"\x03q".to_vec();
        stream.extend(frame(framing, "14008EC793"));
        stream.extend(frame(framing, "0A0B0C0D0E"));
        for a in 0..=stream.len() {
            for b in a..=stream.len() {
                let mut dec = decoder(framing);
                let pieces = [&stream[..a], &stream[a..b], &stream[b..]];
                let events = feed(&mut dec, &pieces, ms(0), ms(5));
                // Hex framings report "\x03q" at the next STX, line
                // framings at the LF that ends it.
                let want = [
                    Event::Garbage { bytes: 2 },
                    card("14008EC793"),
                    card("0A0B0C0D0E"),
                ];
                assert_eq!(events, want, "{framing} split at {a}, {b}");
            }
        }
    }
}

#[test]
fn one_byte_at_a_time() {
    for framing in Framing::ALL {
        let mut stream = Vec::new();
        stream.extend(frame(framing, "14008EC793"));
        stream.extend(b"xyz");
        stream.extend(frame(framing, "0A0B0C0D0E"));
        let mut dec = decoder(framing);
        let pieces: Vec<&[u8]> = stream.chunks(1).collect();
        let events = feed(&mut dec, &pieces, ms(0), ms(1));
        // The garbage run is one event however it was read.
        assert_eq!(
            events,
            [
                card("14008EC793"),
                Event::Garbage { bytes: 3 },
                card("0A0B0C0D0E")
            ],
            "{framing}"
        );
    }
}

#[test]
fn garbage_before_between_and_after_frames() {
    for framing in hex_framings() {
        let mut dec = decoder(framing);
        let mut bytes = b"xx".to_vec();
        bytes.extend(frame(framing, "14008EC793"));
        bytes.extend(b"\r\n\x03");
        bytes.extend(frame(framing, "0A0B0C0D0E"));
        bytes.extend(b"zz");
        assert_eq!(
            dec.push(&bytes, ms(0)),
            [
                Event::Garbage { bytes: 2 },
                card("14008EC793"),
                Event::Garbage { bytes: 3 },
                card("0A0B0C0D0E"),
            ],
            "{framing}"
        );
        // Trailing garbage is reported when the next frame starts...
        let next = frame(framing, "1122334455");
        assert_eq!(
            dec.push(&next, ms(10)),
            [Event::Garbage { bytes: 2 }, card("1122334455")],
        );
        // ...or once the line has been quiet for `stale_after`.
        assert_eq!(dec.push(b"zzz", ms(20)), []);
        assert_eq!(dec.push(&[], ms(20) + STALE), []);
        assert_eq!(dec.push(&[], ms(21) + STALE), [Event::Garbage { bytes: 3 }]);
        assert_eq!(dec.push(&[], ms(500)), []);
    }
}

#[test]
fn random_garbage_then_a_valid_frame_still_decodes() {
    let fixed: &[&[u8]] = &[
        b"\x02",
        b"\x03",
        b"\x02\x03",
        b"\x02\x02\x02\x02",
        b"\x0214",
        b"\x0214008EC793CE",
        b"\x0214008EC793CE\r\n",
        b"\x0214008EC793CE\x04",
        b"\x03\x03\x0214008EC793\x03",
        b"\r\n\r\n",
        b"\xff\xfe\x00",
    ];
    let mut rng = XorShift(0x5EED);
    let random: Vec<Vec<u8>> = (0..300).map(|_| rng.bytes(40)).collect();
    for framing in Framing::ALL {
        for junk in fixed
            .iter()
            .copied()
            .chain(random.iter().map(Vec::as_slice))
        {
            let mut dec = decoder(framing);
            let mut bytes = junk.to_vec();
            bytes.extend(frame(framing, "0A0B0C0D0E"));
            let events = dec.push(&bytes, ms(0));
            assert_eq!(
                events.last(),
                Some(&card("0A0B0C0D0E")),
                "{framing} {junk:?}"
            );
            if tail(framing).is_some() {
                // Every junk byte is accounted for, as garbage or as part of
                // a (bad-checksum) frame.
                let frames = events.len() - 1 - garbage_total_events(&events);
                let len = frame(framing, "0A0B0C0D0E").len();
                assert_eq!(
                    garbage_total(&events) + frames * len,
                    junk.len(),
                    "{junk:?}"
                );
            }
        }
    }
}

/// How many `Garbage` events there are.
fn garbage_total_events(events: &[Event]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, Event::Garbage { .. }))
        .count()
}

#[test]
fn bad_checksum_is_reported_masked_and_not_a_card() {
    for framing in hex_framings() {
        let mut dec = decoder(framing);
        let mut bytes = frame_with_sum(framing, "14008EC793", "CF");
        bytes.extend(frame_with_sum(framing, "14008ec793", "00"));
        bytes.extend(frame(framing, "14008EC793"));
        assert_eq!(
            dec.push(&bytes, ms(0)),
            [
                Event::BadChecksum {
                    frame: "…93CF".into()
                },
                Event::BadChecksum {
                    frame: "…9300".into()
                },
                card("14008EC793"),
            ],
            "{framing}"
        );
    }
}

#[test]
fn non_hex_inside_a_frame_is_garbage_and_the_next_frame_decodes() {
    for framing in hex_framings() {
        let good = frame(framing, "14008EC793");
        for at in 1..=12 {
            for bad in [b'G', b'z', b' ', 0x03, b'\r', 0x00, 0xff] {
                let mut broken = good.clone();
                broken[at] = bad;
                let mut bytes = broken.clone();
                bytes.extend(frame(framing, "0A0B0C0D0E"));
                let mut dec = decoder(framing);
                // The broken frame holds no other STX, so it is all garbage.
                assert_eq!(
                    dec.push(&bytes, ms(0)),
                    [
                        Event::Garbage {
                            bytes: broken.len()
                        },
                        card("0A0B0C0D0E")
                    ],
                    "{framing} {bad:#x} at {at}"
                );
            }
        }
    }
}

#[test]
fn wrong_terminator_is_garbage() {
    let data = "14008EC793CE";
    let cases: &[(Framing, Vec<u8>)] = &[
        (
            Framing::Rdm6300,
            [b"\x02", data.as_bytes(), b"\x04"].concat(),
        ),
        (Framing::Rdm6300, [b"\x02", data.as_bytes(), b"\r"].concat()),
        (Framing::Rdm6300, [b"\x02", data.as_bytes(), b"0"].concat()),
        (Framing::Id12, [b"\x02", data.as_bytes(), b"\x03"].concat()),
        (
            Framing::Id12,
            [b"\x02", data.as_bytes(), b"\n\r\x03"].concat(),
        ),
        (Framing::Id12, [b"\x02", data.as_bytes(), b"\r\r"].concat()),
        (
            Framing::Id12,
            [b"\x02", data.as_bytes(), b"\r\n\x04"].concat(),
        ),
        (
            Framing::Id12,
            [b"\x02", data.as_bytes(), b"\r\n\r"].concat(),
        ),
    ];
    for (framing, broken) in cases {
        let mut dec = decoder(*framing);
        let mut bytes = broken.clone();
        bytes.extend(frame(*framing, "0A0B0C0D0E"));
        assert_eq!(
            dec.push(&bytes, ms(0)),
            [
                Event::Garbage {
                    bytes: broken.len()
                },
                card("0A0B0C0D0E")
            ],
            "{framing} {broken:?}"
        );
    }
    // A frame cut short by the next STX: the cut frame is garbage.
    for framing in hex_framings() {
        let mut dec = decoder(framing);
        let whole = frame(framing, "14008EC793");
        let mut bytes = whole[..whole.len() - 1].to_vec();
        bytes.extend(frame(framing, "0A0B0C0D0E"));
        assert_eq!(
            dec.push(&bytes, ms(0)),
            [
                Event::Garbage {
                    bytes: whole.len() - 1
                },
                card("0A0B0C0D0E")
            ]
        );
    }
}

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
