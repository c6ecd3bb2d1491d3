//! Hex frames: valid, split, garbage around them, bad checksums.

use super::*;

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
fn a_tap_is_coming_from_a_frame_s_first_byte_until_it_ends() {
    for framing in [Framing::Rdm6300, Framing::Id12, Framing::LineHex] {
        let mut d = decoder(framing);
        let f = frame(framing, "14008EC793");
        // A line frame's leading terminator is not a tap on its way.
        let first = f
            .iter()
            .position(|b| b.is_ascii_hexdigit() || *b == STX)
            .unwrap();
        assert!(d.push(&f[..first + 1], ms(0)).is_empty());
        assert!(d.tap_coming(ms(0)), "{framing:?}: the frame began");
        assert_eq!(d.push(&f[first + 1..], ms(10)), vec![card("14008EC793")]);
        assert!(!d.tap_coming(ms(10)), "{framing:?}: the frame ended");
        // The same card resting on the reader repeats its frame: no tap comes.
        d.push(&f[..first + 1], ms(60));
        assert!(!d.tap_coming(ms(60)), "{framing:?}: a repeat is no tap");
        // Once the card was away for the debounce, a new frame is one.
        d.push(&f[first + 1..], ms(70));
        d.push(&f[..first + 1], ms(70) + DEBOUNCE);
        assert!(d.tap_coming(ms(70) + DEBOUNCE), "{framing:?}: a new tap");
    }
}

#[test]
fn garbage_is_no_tap_coming() {
    let mut d = decoder(Framing::LineHex);
    d.push(b"zz", ms(0));
    assert!(!d.tap_coming(ms(0)));
    let mut d = decoder(Framing::Rdm6300);
    d.push(b"zz", ms(0));
    assert!(!d.tap_coming(ms(0)));
}
