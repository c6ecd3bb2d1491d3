//! Which format a document is in: its magic bytes first, then the job's
//! `document-format` (clients send `application/octet-stream` freely, and
//! a wrong label must not send a PDF down the text path).

use std::io::{Read, Seek};

use super::AnalysisError;

/// The formats [`super::analyse`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Pdf,
    PostScript,
    PwgRaster,
    Urf,
    Jpeg,
    Png,
    Text,
}

impl Format {
    /// The format's MIME type, as IPP's `document-format` names it.
    pub fn mime(self) -> &'static str {
        match self {
            Format::Pdf => "application/pdf",
            Format::PostScript => "application/postscript",
            Format::PwgRaster => "image/pwg-raster",
            Format::Urf => "image/urf",
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
            Format::Text => "text/plain",
        }
    }
}

/// How far into a document its magic bytes are looked for (a PDF may start
/// with up to 1,024 bytes of anything before `%PDF-`).
const HEAD: u64 = 1024;

/// Reads the head of `input`, decides its format and rewinds it.
pub(super) fn format_of<R: Read + Seek>(
    input: &mut R,
    document_format: &str,
) -> Result<Format, AnalysisError> {
    let mut head = Vec::with_capacity(HEAD as usize);
    input.by_ref().take(HEAD).read_to_end(&mut head)?;
    input.rewind()?;
    decide(&head, document_format)
}

/// The format of a document that starts with `head`, labelled
/// `document_format` by its job.
pub fn decide(head: &[u8], document_format: &str) -> Result<Format, AnalysisError> {
    if let Some(format) = by_magic(head) {
        return Ok(format);
    }
    let mime = document_format
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "application/pdf" => Ok(Format::Pdf),
        "application/postscript" => Ok(Format::PostScript),
        "text/plain" => Ok(Format::Text),
        "" | "application/octet-stream" if looks_like_text(head) => Ok(Format::Text),
        _ => Err(AnalysisError::UnknownFormat {
            format: document_format.to_string(),
        }),
    }
}

fn by_magic(head: &[u8]) -> Option<Format> {
    let starts = |magic: &[u8]| head.starts_with(magic);
    if starts(b"%!") || starts(b"\x04%!") {
        Some(Format::PostScript)
    } else if starts(b"RaS2") {
        Some(Format::PwgRaster)
    } else if starts(b"UNIRAST\0") {
        Some(Format::Urf)
    } else if starts(b"\xff\xd8\xff") {
        Some(Format::Jpeg)
    } else if starts(b"\x89PNG\r\n\x1a\n") {
        Some(Format::Png)
    } else if head.windows(5).any(|w| w == b"%PDF-") {
        Some(Format::Pdf)
    } else {
        None
    }
}

/// UTF-8 (a character cut by the end of the head allowed) with no control
/// characters but tab, line feed, form feed and carriage return.
fn looks_like_text(head: &[u8]) -> bool {
    let text = match std::str::from_utf8(head) {
        Ok(text) => text,
        Err(e) if e.error_len().is_none() => {
            // Only the last character is cut short: valid up to there.
            std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or("")
        }
        Err(_) => return false,
    };
    text.chars()
        .all(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\x0c' | '\r'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_bytes_win_over_the_label() {
        assert_eq!(decide(b"%PDF-1.4\n", "text/plain").unwrap(), Format::Pdf);
        assert_eq!(
            decide(b"\r\n\r\n%PDF-1.7", "application/octet-stream").unwrap(),
            Format::Pdf
        );
        assert_eq!(
            decide(b"%!PS-Adobe-3.0", "application/pdf").unwrap(),
            Format::PostScript
        );
        assert_eq!(
            decide(b"RaS2\0\0", "application/octet-stream").unwrap(),
            Format::PwgRaster
        );
        assert_eq!(decide(b"UNIRAST\0\0", "").unwrap(), Format::Urf);
        assert_eq!(
            decide(b"\xff\xd8\xff\xe0", "image/png").unwrap(),
            Format::Jpeg
        );
        assert_eq!(
            decide(b"\x89PNG\r\n\x1a\n", "image/jpeg").unwrap(),
            Format::Png
        );
    }

    #[test]
    fn without_magic_the_label_decides() {
        assert_eq!(
            decide(b"hello", "text/plain; charset=utf-8").unwrap(),
            Format::Text
        );
        assert_eq!(
            decide(b"hello\x0cpage two\n", "application/octet-stream").unwrap(),
            Format::Text
        );
        assert_eq!(
            decide(b"", "application/octet-stream").unwrap(),
            Format::Text
        );
        assert_eq!(decide(b"junk", "APPLICATION/PDF").unwrap(), Format::Pdf);
        // A multi-byte character cut by the end of the head is still text.
        assert_eq!(
            decide("caf\u{e9}".as_bytes()[..4].as_ref(), "").unwrap(),
            Format::Text
        );
    }

    #[test]
    fn binary_without_magic_is_unknown() {
        for (head, label) in [
            (&b"\x00\x01\x02binary"[..], "application/octet-stream"),
            (&b"\x1b%-12345X@PJL"[..], "application/octet-stream"),
            (&b"GIF89a"[..], "image/gif"),
        ] {
            let err = decide(head, label).unwrap_err();
            assert_eq!(err.kind(), "unknown-format", "{head:?}");
        }
    }
}
