//! JPEG and PNG: one page, colour or mono by the header. A JPEG with one
//! component is mono, three or four colour; a PNG of colour type grey is
//! mono, a palette PNG is mono when every palette entry is grey, RGB
//! colour. Pixels are not decoded, so a grey picture saved as RGB counts
//! as colour.

use std::io::{self, BufRead, Read};

use super::chroma::chromatic;
use super::{AnalysisError, Format, Page};

/// The page of a JPEG: the component count of its first frame header.
pub(super) fn jpeg_page<R: BufRead>(input: &mut R) -> Result<Page, AnalysisError> {
    let f = Format::Jpeg;
    let mut soi = [0u8; 2];
    read(input, &mut soi, f)?;
    if soi != [0xff, 0xd8] {
        return Err(AnalysisError::malformed(f, "no start of image"));
    }
    loop {
        // A marker: 0xFF (fill bytes allowed), then its code.
        let mut code = [0u8];
        read(input, &mut code, f)?;
        if code[0] != 0xff {
            return Err(AnalysisError::malformed(f, "expected a marker"));
        }
        while code[0] == 0xff {
            read(input, &mut code, f)?;
        }
        match code[0] {
            0x01 | 0xd0..=0xd7 => continue, // no length
            0xd9 | 0xda => return Err(AnalysisError::malformed(f, "no frame header")),
            _ => {}
        }
        let mut length = [0u8; 2];
        read(input, &mut length, f)?;
        let body = u64::from(u16::from_be_bytes(length))
            .checked_sub(2)
            .ok_or_else(|| AnalysisError::malformed(f, "segment length under 2"))?;
        let frame = matches!(code[0], 0xc0..=0xcf) && !matches!(code[0], 0xc4 | 0xc8 | 0xcc);
        if frame {
            // Precision, height, width, then the component count.
            let mut sof = [0u8; 6];
            read(input, &mut sof, f)?;
            return match sof[5] {
                1 => Ok(Page::by_header(false)),
                3 | 4 => Ok(Page::by_header(true)),
                n => Err(AnalysisError::malformed(f, format!("{n} components"))),
            };
        }
        skip(input, body, f)?;
    }
}

/// The page of a PNG: its colour type, and its palette for type 3.
pub(super) fn png_page<R: BufRead>(input: &mut R) -> Result<Page, AnalysisError> {
    let f = Format::Png;
    let mut signature = [0u8; 8];
    read(input, &mut signature, f)?;
    let (kind, ihdr) = chunk_header(input)?;
    if &kind != b"IHDR" || ihdr != 13 {
        return Err(AnalysisError::malformed(f, "IHDR is not first"));
    }
    let mut header = [0u8; 13 + 4]; // and its CRC
    read(input, &mut header, f)?;
    match header[9] {
        0 | 4 => return Ok(Page::by_header(false)),
        2 | 6 => return Ok(Page::by_header(true)),
        3 => {}
        other => return Err(AnalysisError::malformed(f, format!("colour type {other}"))),
    }
    loop {
        let (kind, length) = chunk_header(input)?;
        match &kind {
            b"PLTE" if length <= 768 && length.is_multiple_of(3) => {
                let mut palette = vec![0u8; length as usize];
                read(input, &mut palette, f)?;
                let colour = palette.chunks_exact(3).any(|p| chromatic(p[0], p[1], p[2]));
                return Ok(Page::by_header(colour));
            }
            b"PLTE" | b"IDAT" | b"IEND" => {
                return Err(AnalysisError::malformed(f, "no usable palette"))
            }
            _ => skip(input, u64::from(length) + 4, f)?,
        }
    }
}

fn chunk_header<R: BufRead>(input: &mut R) -> Result<([u8; 4], u32), AnalysisError> {
    let mut header = [0u8; 8];
    read(input, &mut header, Format::Png)?;
    let length = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
    if length > 0x7fff_ffff {
        return Err(AnalysisError::malformed(Format::Png, "chunk too long"));
    }
    Ok(([header[4], header[5], header[6], header[7]], length))
}

fn read<R: BufRead>(input: &mut R, buf: &mut [u8], format: Format) -> Result<(), AnalysisError> {
    input.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => AnalysisError::malformed(format, "ends too soon"),
        _ => AnalysisError::Io(e),
    })
}

fn skip<R: BufRead>(input: &mut R, bytes: u64, format: Format) -> Result<(), AnalysisError> {
    let skipped = io::copy(&mut input.by_ref().take(bytes), &mut io::sink())?;
    if skipped < bytes {
        return Err(AnalysisError::malformed(format, "ends too soon"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_bytes_never_panic(tail in prop::collection::vec(any::<u8>(), 0..2000)) {
            for head in [&b"\xff\xd8"[..], b"\xff\xd8\xff\xc0", b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR"] {
                let bytes = [head, &tail].concat();
                let _ = jpeg_page(&mut &bytes[..]);
                let _ = png_page(&mut &bytes[..]);
            }
        }
    }

    fn png(colour_type: u8, extra: &[(&[u8; 4], &[u8])]) -> Vec<u8> {
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = vec![0, 0, 0, 1, 0, 0, 0, 1, 8, colour_type, 0, 0, 0];
        let mut chunk = |kind: &[u8; 4], data: &mut Vec<u8>| {
            out.extend((data.len() as u32).to_be_bytes());
            out.extend(kind);
            out.append(data);
            out.extend([0u8; 4]);
        };
        chunk(b"IHDR", &mut ihdr);
        for (kind, data) in extra {
            chunk(kind, &mut data.to_vec());
        }
        chunk(b"IEND", &mut Vec::new());
        out
    }

    fn jpeg(components: u8) -> Vec<u8> {
        let mut out = vec![0xff, 0xd8, 0xff, 0xe0, 0, 4, b'J', b'F'];
        out.extend([
            0xff,
            0xff,
            0xc0,
            0,
            8 + 3 * components,
            8,
            0,
            1,
            0,
            1,
            components,
        ]);
        out
    }

    fn png_colour(bytes: &[u8]) -> bool {
        png_page(&mut &bytes[..]).unwrap().colour
    }

    fn jpeg_colour(bytes: &[u8]) -> bool {
        jpeg_page(&mut &bytes[..]).unwrap().colour
    }

    #[test]
    fn pngs_by_colour_type_and_palette() {
        assert!(!png_colour(&png(0, &[])));
        assert!(!png_colour(&png(4, &[])));
        assert!(png_colour(&png(2, &[])));
        assert!(png_colour(&png(6, &[])));
        let grey: &[u8] = &[0, 0, 0, 128, 128, 128, 255, 255, 255];
        let red: &[u8] = &[0, 0, 0, 255, 0, 0];
        assert!(!png_colour(&png(3, &[(b"tEXt", b"a\0b"), (b"PLTE", grey)])));
        assert!(png_colour(&png(3, &[(b"PLTE", red)])));
        assert!(png_page(&mut &png(3, &[])[..]).is_err());
    }

    #[test]
    fn jpegs_by_component_count() {
        assert!(!jpeg_colour(&jpeg(1)));
        assert!(jpeg_colour(&jpeg(3)));
        assert!(jpeg_colour(&jpeg(4)));
        assert!(jpeg_page(&mut &jpeg(2)[..]).is_err());
    }

    #[test]
    fn every_cut_is_an_error_not_a_panic() {
        for whole in [png(3, &[(b"PLTE", &[1, 2, 3])]), jpeg(3)] {
            for cut in 0..whole.len() - 1 {
                let head = &whole[..cut];
                let _ = png_page(&mut &head[..]);
                assert!(jpeg_page(&mut &head[..]).is_err());
            }
        }
    }
}
