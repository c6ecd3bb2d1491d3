//! PWG raster (PWG 5102.4) and Apple URF: pages walked header by header.
//!
//! Both formats compress each page the same way: a line-repeat byte, then
//! runs of pixels (a byte n < 128 repeats the next pixel n + 1 times, n >
//! 128 copies 257 − n pixels, 128 blanks the rest of the line). The walk
//! decodes every run, so the next page's header is found and, for 8-bit
//! RGB and CMYK pages, each run's pixel is judged for chroma exactly as a
//! rendered page's pixels are (weighted by its repeats). Other colour
//! spaces are colour or mono by their header. Every count and length is
//! checked against the header; malformed input is an error, never a panic.

use std::io::{self, BufRead};

use super::chroma::{self, chromatic, chromatic_cmyk};
use super::{AnalysisError, Format, Limits, Page};

/// How a page's pixels are judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pixels {
    /// A grey or single-ink colour space.
    Mono,
    /// A colour space whose pixels are not decoded: colour by its header.
    Colour,
    /// Chunky RGB, 8 or 16 bits per channel (the high byte is judged).
    Rgb { bytes_per_channel: usize },
    /// Chunky CMYK, 8 bits per channel.
    Cmyk,
}

/// What the walk needs from a page header.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    height: u32,
    /// Bytes in one line of pixels.
    bytes_per_line: u32,
    /// Bits per pixel (all channels).
    bits_per_pixel: u32,
    dpi: (u32, u32),
    pixels: Pixels,
}

impl Geometry {
    /// Bytes per run unit: one pixel, or one byte below 8 bits per pixel.
    fn unit(&self) -> usize {
        (self.bits_per_pixel as usize / 8).max(1)
    }
}

/// The pages of a PWG raster stream (`RaS2`, big-endian headers).
pub(super) fn pwg_pages<R: BufRead>(
    input: &mut R,
    limits: &Limits,
) -> Result<Vec<Page>, AnalysisError> {
    let format = Format::PwgRaster;
    let mut sync = [0u8; 4];
    read_exact(input, &mut sync, format)?;
    if &sync != b"RaS2" {
        return Err(AnalysisError::malformed(format, "no RaS2 sync word"));
    }
    let mut pages = Vec::new();
    let mut header = vec![0u8; 1796];
    while !at_end(input)? {
        read_exact(input, &mut header, format)?;
        let geometry = pwg_geometry(&header)?;
        pages.push(walk_page(input, &geometry, format)?);
        check_count(&pages, limits)?;
    }
    Ok(pages)
}

/// The pages of an Apple URF stream (`UNIRAST`, a page count that may be
/// 0, then 32-byte page headers).
pub(super) fn urf_pages<R: BufRead>(
    input: &mut R,
    limits: &Limits,
) -> Result<Vec<Page>, AnalysisError> {
    let format = Format::Urf;
    let mut file_header = [0u8; 12];
    read_exact(input, &mut file_header, format)?;
    if &file_header[..8] != b"UNIRAST\0" {
        return Err(AnalysisError::malformed(format, "no UNIRAST magic"));
    }
    let mut pages = Vec::new();
    let mut header = [0u8; 32];
    while !at_end(input)? {
        read_exact(input, &mut header, format)?;
        let geometry = urf_geometry(&header)?;
        pages.push(walk_page(input, &geometry, format)?);
        check_count(&pages, limits)?;
    }
    Ok(pages)
}

fn check_count(pages: &[Page], limits: &Limits) -> Result<(), AnalysisError> {
    if pages.len() > limits.max_pages as usize {
        return Err(AnalysisError::TooManyPages {
            limit: limits.max_pages,
        });
    }
    Ok(())
}

fn be32(bytes: &[u8], at: usize) -> u32 {
    // Callers index inside their fixed-size header.
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// A PWG page header (the 1,796 bytes after the sync word or the previous
/// page). Offsets as in CUPS's `cups_page_header2_t`.
fn pwg_geometry(h: &[u8]) -> Result<Geometry, AnalysisError> {
    let width = be32(h, 372);
    let bits_per_color = be32(h, 384);
    let bits_per_pixel = be32(h, 388);
    let color_order = be32(h, 396);
    let color_space = be32(h, 400);
    let num_colors = be32(h, 420);
    let pixels = match color_space {
        _ if num_colors == 1 => Pixels::Mono,
        // W, K, white, gold, silver, sGray: one channel.
        0 | 3 | 12 | 13 | 14 | 18 => Pixels::Mono,
        // RGB, sRGB, AdobeRGB.
        1 | 19 | 20 if matches!(bits_per_color, 8 | 16) && bits_per_pixel == 3 * bits_per_color => {
            Pixels::Rgb {
                bytes_per_channel: bits_per_color as usize / 8,
            }
        }
        6 if bits_per_pixel == 32 && bits_per_color == 8 => Pixels::Cmyk,
        _ => Pixels::Colour,
    };
    if color_order != 0 {
        return Err(AnalysisError::malformed(
            Format::PwgRaster,
            "not chunky pixels",
        ));
    }
    geometry(
        Format::PwgRaster,
        width,
        be32(h, 376),
        bits_per_pixel,
        Some(be32(h, 392)),
        (be32(h, 276), be32(h, 280)),
        pixels,
    )
}

/// A URF page header: bits per pixel, colour space, duplex, quality, two
/// reserved words, width, height, resolution, two reserved words.
fn urf_geometry(h: &[u8; 32]) -> Result<Geometry, AnalysisError> {
    let bits_per_pixel = u32::from(h[0]);
    let pixels = match (h[1], bits_per_pixel) {
        // sGray, Gray.
        (0 | 4, _) => Pixels::Mono,
        // sRGB, AdobeRGB, RGB.
        (1 | 3 | 5, 24) => Pixels::Rgb {
            bytes_per_channel: 1,
        },
        (1 | 3 | 5, 48) => Pixels::Rgb {
            bytes_per_channel: 2,
        },
        (6, 32) => Pixels::Cmyk,
        _ => Pixels::Colour,
    };
    let dpi = be32(h, 20);
    geometry(
        Format::Urf,
        be32(h, 12),
        be32(h, 16),
        bits_per_pixel,
        None,
        (dpi, dpi),
        pixels,
    )
}

/// Checks a header's numbers against each other.
fn geometry(
    format: Format,
    width: u32,
    height: u32,
    bits_per_pixel: u32,
    bytes_per_line: Option<u32>,
    dpi: (u32, u32),
    pixels: Pixels,
) -> Result<Geometry, AnalysisError> {
    if !matches!(bits_per_pixel, 1 | 2 | 4)
        && (bits_per_pixel == 0 || !bits_per_pixel.is_multiple_of(8) || bits_per_pixel > 240)
    {
        return Err(AnalysisError::malformed(
            format,
            format!("{bits_per_pixel} bits per pixel"),
        ));
    }
    let line_bits = u64::from(width) * u64::from(bits_per_pixel);
    let line_bytes = u32::try_from(line_bits.div_ceil(8))
        .map_err(|_| AnalysisError::malformed(format, "line too long"))?;
    if width == 0 || height == 0 || bytes_per_line.is_some_and(|b| b != line_bytes) {
        return Err(AnalysisError::malformed(
            format,
            "page size does not add up",
        ));
    }
    Ok(Geometry {
        height,
        bytes_per_line: line_bytes,
        bits_per_pixel,
        dpi,
        pixels,
    })
}

/// Walks one page's compressed lines and judges it.
fn walk_page<R: BufRead>(
    input: &mut R,
    g: &Geometry,
    format: Format,
) -> Result<Page, AnalysisError> {
    let unit = g.unit();
    let units_per_line = u64::from(g.bytes_per_line) / unit as u64;
    let mut pixel = vec![0u8; unit];
    let mut chroma = 0u64;
    let mut y = 0u64;
    while y < u64::from(g.height) {
        let lines = (u64::from(byte(input, format)?) + 1).min(u64::from(g.height) - y);
        let mut line_chroma = 0u64;
        let mut x = 0u64;
        while x < units_per_line {
            let control = byte(input, format)?;
            let (count, literal) = match control {
                128 => {
                    x = units_per_line; // the rest of the line is blank
                    continue;
                }
                0..=127 => (u64::from(control) + 1, false),
                _ => (257 - u64::from(control), true),
            };
            if x + count > units_per_line {
                return Err(AnalysisError::malformed(
                    format,
                    "a run passes the end of its line",
                ));
            }
            for i in 0..count {
                if i == 0 || literal {
                    read_exact(input, &mut pixel, format)?;
                }
                if is_chromatic(&pixel, g.pixels) {
                    line_chroma += 1;
                }
            }
            x += count;
        }
        chroma = chroma.saturating_add(line_chroma.saturating_mul(lines));
        y += lines;
    }
    Ok(match g.pixels {
        Pixels::Mono => Page::by_header(false),
        Pixels::Colour => Page::by_header(true),
        Pixels::Rgb { .. } | Pixels::Cmyk => Page {
            colour: chroma::is_colour(chroma, g.dpi.0, g.dpi.1),
            chroma_pixels: Some(chroma),
        },
    })
}

fn is_chromatic(pixel: &[u8], pixels: Pixels) -> bool {
    match (pixels, pixel) {
        (
            Pixels::Rgb {
                bytes_per_channel: 1,
            },
            [r, g, b],
        ) => chromatic(*r, *g, *b),
        (
            Pixels::Rgb {
                bytes_per_channel: 2,
            },
            [r, _, g, _, b, _],
        ) => chromatic(*r, *g, *b),
        (Pixels::Cmyk, [c, m, y, _]) => chromatic_cmyk(*c, *m, *y),
        _ => false,
    }
}

fn at_end<R: BufRead>(input: &mut R) -> io::Result<bool> {
    Ok(input.fill_buf()?.is_empty())
}

fn byte<R: BufRead>(input: &mut R, format: Format) -> Result<u8, AnalysisError> {
    let mut b = [0u8];
    read_exact(input, &mut b, format)?;
    Ok(b[0])
}

fn read_exact<R: BufRead>(
    input: &mut R,
    buf: &mut [u8],
    format: Format,
) -> Result<(), AnalysisError> {
    input.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => AnalysisError::malformed(format, "ends inside a page"),
        _ => AnalysisError::Io(e),
    })
}

#[cfg(test)]
#[path = "raster_tests.rs"]
mod tests;
