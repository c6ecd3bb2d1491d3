//! When a page is colour: enough of its pixels, seen in RGB, show real
//! chroma. A pixel is chromatic when max(R,G,B) − min(R,G,B) is at least
//! [`CHROMA_THRESHOLD`]; grey, black, white, rich black and neutral tints
//! stay under it (Ghostscript's CMYK→RGB turns a 50% K tint into
//! 147,149,152, a spread of 5). A page is colour with at least
//! [`MIN_COLOUR_PIXELS`] such pixels at [`RENDER_DPI`], scaled by area at
//! other resolutions: one line of 12 pt red text has about 100 at 50 dpi.
//!
//! Also here: a reader of the concatenated binary PPM (`P6`) stream that
//! Ghostscript's `ppmraw` device writes, one page at a time, row by row,
//! so a page is never held whole.

use std::io::{self, BufRead};

/// The smallest max(R,G,B) − min(R,G,B), on 0..=255, of a chromatic pixel.
pub const CHROMA_THRESHOLD: u8 = 20;
/// The fewest chromatic pixels, at [`RENDER_DPI`], on a colour page.
pub const MIN_COLOUR_PIXELS: u64 = 8;
/// The resolution pages are rendered at, in dots per inch.
pub const RENDER_DPI: u32 = 50;

/// Whether an RGB pixel shows real chroma.
pub fn chromatic(r: u8, g: u8, b: u8) -> bool {
    r.max(g).max(b) - r.min(g).min(b) >= CHROMA_THRESHOLD
}

/// Whether a CMYK pixel shows real chroma: its C, M and Y differ as an RGB
/// pixel's channels would (K darkens, it adds no hue).
pub fn chromatic_cmyk(c: u8, m: u8, y: u8) -> bool {
    chromatic(255 - c, 255 - m, 255 - y)
}

/// Chromatic pixels in packed 8-bit RGB (a trailing partial pixel is
/// ignored).
///
/// Written as a plain indexed loop with a neutral fast path: this runs on
/// every rendered pixel (240,000 a page), and iterator adaptors cost
/// about 70 ms a page in a debug build where this loop costs a few.
pub fn count_rgb(pixels: &[u8]) -> u64 {
    let mut count = 0;
    let mut i = 0;
    while i + 2 < pixels.len() {
        let (r, g, b) = (pixels[i], pixels[i + 1], pixels[i + 2]);
        if (r != g || g != b) && chromatic(r, g, b) {
            count += 1;
        }
        i += 3;
    }
    count
}

/// Whether a page with `chroma_pixels` chromatic pixels, at `dpi_x` ×
/// `dpi_y`, is colour.
pub fn is_colour(chroma_pixels: u64, dpi_x: u32, dpi_y: u32) -> bool {
    let area = u64::from(dpi_x.max(1)) * u64::from(dpi_y.max(1));
    let base = u64::from(RENDER_DPI) * u64::from(RENDER_DPI);
    // Scaled by area, rounded up, never below the 50 dpi figure.
    let needed = (MIN_COLOUR_PIXELS.saturating_mul(area)).div_ceil(base);
    chroma_pixels >= needed.max(MIN_COLOUR_PIXELS)
}

/// The largest page a PPM stream may hold, in pixels (Ghostscript renders
/// onto a fixed A4 canvas of 413 × 585 at 50 dpi).
const MAX_PAGE_PIXELS: u64 = 16 * 1024 * 1024;

/// Why a PPM stream could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PpmError {
    #[error("bad PPM header: {0}")]
    Header(&'static str),
    #[error("PPM page of {width}x{height} is too large")]
    TooLarge { width: u64, height: u64 },
    #[error("PPM stream ends inside a page")]
    Truncated,
    #[error("reading the PPM stream")]
    Io(#[from] io::Error),
}

/// Reads the next page of a binary PPM stream and counts its chromatic
/// pixels. `None` at the clean end of the stream.
pub fn next_ppm_page<R: BufRead>(input: &mut R) -> Result<Option<u64>, PpmError> {
    let Some(first) = byte(input)? else {
        return Ok(None);
    };
    if first != b'P' || byte(input)? != Some(b'6') {
        return Err(PpmError::Header("not P6"));
    }
    let width = number(input)?;
    let height = number(input)?;
    let maxval = number(input)?;
    if maxval != 255 {
        return Err(PpmError::Header("maxval is not 255"));
    }
    if width.saturating_mul(height) > MAX_PAGE_PIXELS {
        return Err(PpmError::TooLarge { width, height });
    }
    // `number` consumed the one whitespace byte after maxval.
    let mut row = vec![0u8; (width * 3) as usize];
    let mut chroma = 0u64;
    for _ in 0..height {
        input.read_exact(&mut row).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => PpmError::Truncated,
            _ => PpmError::Io(e),
        })?;
        chroma += count_rgb(&row);
    }
    Ok(Some(chroma))
}

fn byte<R: BufRead>(input: &mut R) -> io::Result<Option<u8>> {
    let buf = input.fill_buf()?;
    let Some(&b) = buf.first() else {
        return Ok(None);
    };
    input.consume(1);
    Ok(Some(b))
}

/// A decimal header field: whitespace and `#` comments before it, and the
/// one whitespace byte that ends it consumed.
fn number<R: BufRead>(input: &mut R) -> Result<u64, PpmError> {
    let mut b = byte(input)?.ok_or(PpmError::Truncated)?;
    loop {
        if b == b'#' {
            while b != b'\n' {
                b = byte(input)?.ok_or(PpmError::Truncated)?;
            }
        } else if !b.is_ascii_whitespace() {
            break;
        }
        b = byte(input)?.ok_or(PpmError::Truncated)?;
    }
    let mut value = 0u64;
    let mut digits = 0;
    while b.is_ascii_digit() {
        digits += 1;
        if digits > 9 {
            return Err(PpmError::Header("number too long"));
        }
        value = value * 10 + u64::from(b - b'0');
        b = byte(input)?.ok_or(PpmError::Truncated)?;
    }
    if digits == 0 || !b.is_ascii_whitespace() {
        return Err(PpmError::Header("expected a number"));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ppm(width: u64, pixels: &[[u8; 3]]) -> Vec<u8> {
        let height = pixels.len() as u64 / width;
        let mut out =
            format!("P6\n# Image generated by a test\n{width} {height}\n255\n").into_bytes();
        out.extend(pixels.iter().flatten());
        out
    }

    #[test]
    fn grey_and_rich_black_are_not_chromatic() {
        assert!(!chromatic(0, 0, 0));
        assert!(!chromatic(127, 127, 127));
        assert!(!chromatic(147, 149, 152)); // Ghostscript's 50% K
        assert!(!chromatic(20, 18, 21)); // a rich black
        assert!(chromatic(255, 0, 0));
        assert!(chromatic(230, 120, 20)); // orange
        assert!(!chromatic_cmyk(0, 0, 0));
        assert!(!chromatic_cmyk(100, 100, 100));
        assert!(chromatic_cmyk(0, 255, 255));
    }

    #[test]
    fn the_pixel_floor_scales_with_resolution() {
        assert!(!is_colour(7, 50, 50));
        assert!(is_colour(8, 50, 50));
        assert!(!is_colour(8, 300, 300));
        assert!(is_colour(288, 300, 300));
        assert!(is_colour(8, 25, 25)); // never below the 50 dpi floor
        assert!(!is_colour(7, 0, 0));
    }

    #[test]
    fn reads_a_stream_of_pages() {
        let mut stream = ppm(2, &[[255, 255, 255], [0, 0, 0], [255, 0, 0], [9, 9, 9]]);
        stream.extend(ppm(1, &[[0, 255, 0], [0, 0, 255]]));
        let mut input = &stream[..];
        assert_eq!(next_ppm_page(&mut input).unwrap(), Some(1));
        assert_eq!(next_ppm_page(&mut input).unwrap(), Some(2));
        assert_eq!(next_ppm_page(&mut input).unwrap(), None);
    }

    #[test]
    fn refuses_broken_streams_without_panicking() {
        let good = ppm(2, &[[1, 2, 3], [4, 5, 6]]);
        for cut in 1..good.len() {
            let mut input = &good[..cut];
            assert!(next_ppm_page(&mut input).is_err(), "cut at {cut}");
        }
        for bad in [
            &b"P5\n1 1\n255\n\0"[..],
            b"P6\n1 1\n65535\n\0\0\0\0\0\0",
            b"P6\n99999 99999\n255\n",
            b"P6\n1234567890 1\n255\n",
            b"P6\nx 1\n255\n",
        ] {
            let mut input = bad;
            assert!(next_ppm_page(&mut input).is_err(), "{bad:?}");
        }
    }
}
