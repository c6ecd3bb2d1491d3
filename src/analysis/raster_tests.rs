use proptest::prelude::*;

use super::*;

/// One line as literal runs of at most 128 pixels, repeated `repeat + 1`
/// times.
fn line(pixels: &[&[u8]], repeat: u8) -> Vec<u8> {
    let mut out = vec![repeat];
    for run in pixels.chunks(128) {
        out.push((257 - run.len()) as u8);
        for p in run {
            out.extend_from_slice(p);
        }
    }
    out
}

fn pwg_header(width: u32, height: u32, space: u32, bits_per_color: u32, colors: u32) -> Vec<u8> {
    let mut h = vec![0u8; 1796];
    let mut put = |at: usize, v: u32| h[at..at + 4].copy_from_slice(&v.to_be_bytes());
    let bpp = bits_per_color * colors;
    put(276, 50);
    put(280, 50);
    put(372, width);
    put(376, height);
    put(384, bits_per_color);
    put(388, bpp);
    put(392, (width * bpp).div_ceil(8));
    put(400, space);
    put(420, colors);
    h
}

/// A PWG page `width` pixels wide whose lines are `lines`, each repeated.
fn pwg_page(width: u32, space: u32, colors: u32, lines: &[(Vec<u8>, u8)]) -> Vec<u8> {
    let height: u32 = lines.iter().map(|(_, r)| u32::from(*r) + 1).sum();
    let mut out = pwg_header(width, height, space, 8, colors);
    for (pixels, repeat) in lines {
        let px: Vec<&[u8]> = pixels.chunks(colors as usize).collect();
        out.extend(line(&px, *repeat));
    }
    out
}

fn pwg(pages: &[Vec<u8>]) -> Vec<u8> {
    let mut out = b"RaS2".to_vec();
    for page in pages {
        out.extend(page);
    }
    out
}

fn analyse_pwg(bytes: &[u8]) -> Result<Vec<Page>, AnalysisError> {
    pwg_pages(&mut &bytes[..], &Limits::default())
}

#[test]
fn pwg_pages_are_judged_by_their_pixels() {
    let white = vec![255u8; 3 * 4];
    let mut red = white.clone();
    red[3..6].copy_from_slice(&[255, 0, 0]);
    let grey = vec![40u8; 3 * 4];
    let pages = analyse_pwg(&pwg(&[
        pwg_page(4, 19, 3, &[(white.clone(), 9), (grey.clone(), 200)]),
        pwg_page(4, 19, 3, &[(white.clone(), 0), (red.clone(), 7)]),
        pwg_page(4, 19, 3, &[(red, 6)]),
        pwg_page(4, 18, 1, &[(vec![0, 128, 255, 9], 3)]),
    ]))
    .unwrap();
    let colour: Vec<bool> = pages.iter().map(|p| p.colour).collect();
    assert_eq!(colour, [false, true, false, false]);
    assert_eq!(pages[1].chroma_pixels, Some(8));
    assert_eq!(pages[2].chroma_pixels, Some(7));
    assert_eq!(pages[3].chroma_pixels, None);
}

#[test]
fn a_repeat_run_and_a_blank_rest_of_line() {
    let mut page = pwg_header(300, 2, 1, 8, 3);
    // Line 1: 200 red pixels in two repeat runs, then blank to the end.
    page.extend([0, 127, 255, 0, 0, 71, 255, 0, 0, 128]);
    // Line 2: blank.
    page.extend([0, 128]);
    let pages = analyse_pwg(&pwg(&[page])).unwrap();
    assert_eq!(pages[0].chroma_pixels, Some(200));
}

#[test]
fn cmyk_and_undecoded_colour_spaces() {
    let cyan = [255u8, 0, 0, 0].repeat(10);
    let black = [0u8, 0, 0, 255].repeat(10);
    let pages = analyse_pwg(&pwg(&[
        pwg_page(10, 6, 4, &[(cyan, 0)]),
        pwg_page(10, 6, 4, &[(black.clone(), 0)]),
        // Lab: not decoded, colour by its header.
        pwg_page(10, 16, 3, &[(vec![0; 30], 0)]),
    ]))
    .unwrap();
    let colour: Vec<bool> = pages.iter().map(|p| p.colour).collect();
    assert_eq!(colour, [true, false, true]);
}

#[test]
fn malformed_pwg_is_an_error() {
    let good = pwg(&[pwg_page(4, 19, 3, &[(vec![255; 12], 1)])]);
    // The sync word alone is an empty document; any other cut is an error.
    assert!(analyse_pwg(&good[..4]).unwrap().is_empty());
    for cut in (0..4).chain(5..good.len()) {
        assert!(analyse_pwg(&good[..cut]).is_err(), "cut at {cut}");
    }
    let mut long_run = pwg_header(4, 1, 19, 8, 3);
    long_run.extend([0, 4, 1, 2, 3]); // 5 pixels on a 4-pixel line
    assert!(analyse_pwg(&pwg(&[long_run])).is_err());
    let mut bad_line = pwg_header(4, 1, 19, 8, 3);
    bad_line[392..396].copy_from_slice(&99u32.to_be_bytes());
    assert!(analyse_pwg(&pwg(&[bad_line])).is_err());
    assert!(analyse_pwg(b"RaS3").is_err());
}

#[test]
fn too_many_pwg_pages_is_refused() {
    let page = pwg_page(1, 18, 1, &[(vec![0], 0)]);
    let limits = Limits {
        max_pages: 2,
        ..Limits::default()
    };
    let three = pwg(&[page.clone(), page.clone(), page]);
    let err = pwg_pages(&mut &three[..], &limits).unwrap_err();
    assert_eq!(err.kind(), "too-many-pages");
}

fn urf_page(bpp: u8, space: u8, width: u32, lines: &[(Vec<u8>, u8)]) -> Vec<u8> {
    let height: u32 = lines.iter().map(|(_, r)| u32::from(*r) + 1).sum();
    let mut out = vec![bpp, space, 1, 4, 0, 0, 0, 0, 0, 0, 0, 0];
    out.extend(width.to_be_bytes());
    out.extend(height.to_be_bytes());
    out.extend(50u32.to_be_bytes());
    out.extend([0u8; 8]);
    let unit = (usize::from(bpp) / 8).max(1);
    for (pixels, repeat) in lines {
        let px: Vec<&[u8]> = pixels.chunks(unit).collect();
        out.extend(line(&px, *repeat));
    }
    out
}

#[test]
fn urf_pages_by_pixels_and_header() {
    let mut urf = b"UNIRAST\0\0\0\0\x03".to_vec();
    urf.extend(urf_page(24, 1, 2, &[(vec![0, 0, 255, 255, 255, 255], 9)]));
    urf.extend(urf_page(24, 1, 2, &[(vec![9, 9, 9, 255, 255, 255], 9)]));
    urf.extend(urf_page(1, 0, 16, &[(vec![0xff, 0], 3)]));
    let pages = urf_pages(&mut &urf[..], &Limits::default()).unwrap();
    let colour: Vec<bool> = pages.iter().map(|p| p.colour).collect();
    assert_eq!(colour, [true, false, false]);
    assert_eq!(pages[0].chroma_pixels, Some(10));
}

proptest! {
    #[test]
    fn any_bytes_after_a_sync_word_never_panic(tail in prop::collection::vec(any::<u8>(), 0..4000)) {
        let mut bytes = b"RaS2".to_vec();
        bytes.extend(pwg_header(3, 2, 19, 8, 3));
        bytes.extend(&tail);
        let _ = analyse_pwg(&bytes);
        let mut urf = b"UNIRAST\0\0\0\0\x01".to_vec();
        urf.extend(&tail);
        let _ = urf_pages(&mut &urf[..], &Limits::default());
    }
}
