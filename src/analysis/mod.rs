//! What a print job's document holds before it prints: its pages, and which
//! of them are colour.
//!
//! A held job's document comes from any member's laptop, so this module
//! treats it as hostile bytes. [`analyse`] finds the format from its magic
//! bytes (the job's `document-format` decides only when they say nothing),
//! then:
//!
//! - PDF and PostScript go through Ghostscript ([`ghostscript`]), a
//!   subprocess under `-dSAFER` with a wall-clock time limit and a page
//!   limit, rendering each page to RGB at 50 dpi on a fixed A4 canvas; a
//!   page is colour when enough of its pixels show real chroma
//!   ([`chroma`]), so grey, rich black and neutral tints are mono;
//! - PWG raster and Apple URF are walked page by page ([`raster`]): 8-bit
//!   RGB and CMYK pages are decoded and judged by chroma like rendered
//!   pages, other colour spaces by their header;
//! - JPEG and PNG are one page, colour by their header ([`image`]);
//! - plain text is paged by lines, always mono ([`text`]).
//!
//! [`impressions`] then applies a job's page ranges, number-up, sides and
//! copies, a pure function. Every limit that stops an analysis is its own
//! [`AnalysisError`], so the caller can log once why it fell back to its
//! page estimate. Nothing here panics on any input, and nothing here is
//! async: callers run [`analyse`] on a blocking thread.

pub mod chroma;
mod ghostscript;
mod image;
mod impressions;
mod raster;
mod sniff;
mod text;

use std::fs::File;
use std::io::{self, BufReader};
use std::path::Path;
use std::time::Duration;

pub use impressions::{impressions, Impressions, Layout};
pub use sniff::Format;

/// What one analysis may cost before it gives up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest document read, in bytes.
    pub max_bytes: u64,
    /// Most pages counted; a longer document is refused, not truncated.
    pub max_pages: u32,
    /// Wall-clock time Ghostscript may take for the whole document.
    pub max_time: Duration,
}

impl Default for Limits {
    /// 100 MiB, 1,000 pages, 60 seconds: about twenty times what a
    /// 1,000-page text document takes here.
    fn default() -> Self {
        Limits {
            max_bytes: 100 * 1024 * 1024,
            max_pages: 1_000,
            max_time: Duration::from_secs(60),
        }
    }
}

/// A document's pages, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub format: Format,
    pub pages: Vec<Page>,
}

impl Document {
    /// How many of its pages are colour.
    pub fn colour_pages(&self) -> usize {
        self.pages.iter().filter(|p| p.colour).count()
    }
}

/// One page of a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Whether the page needs colour to print as it looks.
    pub colour: bool,
    /// Pixels with real chroma, when the page's pixels were looked at (none
    /// when its header decided, as for JPEG).
    pub chroma_pixels: Option<u64>,
}

impl Page {
    /// A page whose colour its format's header decided.
    pub fn by_header(colour: bool) -> Page {
        Page {
            colour,
            chroma_pixels: None,
        }
    }
}

/// Why a document was not analysed; each is a reason to fall back to the
/// page estimate.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    #[error("document is {bytes} bytes, over the limit of {limit}")]
    TooBig { bytes: u64, limit: u64 },
    #[error("document has more than {limit} pages")]
    TooManyPages { limit: u32 },
    #[error("analysis took longer than {limit:?}")]
    TooSlow { limit: Duration },
    #[error("document is encrypted")]
    Encrypted,
    #[error("unknown document format {format:?}")]
    UnknownFormat { format: String },
    #[error("malformed {format:?} document: {reason}")]
    Malformed { format: Format, reason: String },
    #[error("could not run ghostscript (`gs`, Debian package ghostscript)")]
    Ghostscript(#[source] io::Error),
    #[error("could not read the document")]
    Io(#[from] io::Error),
}

impl AnalysisError {
    /// A short name for log fields: `too-big`, `too-many-pages`, `too-slow`,
    /// `encrypted`, `unknown-format`, `malformed`, `ghostscript`, `io`.
    pub fn kind(&self) -> &'static str {
        match self {
            AnalysisError::TooBig { .. } => "too-big",
            AnalysisError::TooManyPages { .. } => "too-many-pages",
            AnalysisError::TooSlow { .. } => "too-slow",
            AnalysisError::Encrypted => "encrypted",
            AnalysisError::UnknownFormat { .. } => "unknown-format",
            AnalysisError::Malformed { .. } => "malformed",
            AnalysisError::Ghostscript(_) => "ghostscript",
            AnalysisError::Io(_) => "io",
        }
    }

    fn malformed(format: Format, reason: impl Into<String>) -> AnalysisError {
        AnalysisError::Malformed {
            format,
            reason: reason.into(),
        }
    }
}

/// Analyses the document at `path`, whose job gave `document_format` (a
/// MIME type such as `application/pdf`, or `application/octet-stream`).
///
/// Blocking: it reads the file and may run Ghostscript for up to
/// `limits.max_time`.
pub fn analyse(
    path: &Path,
    document_format: &str,
    limits: &Limits,
) -> Result<Document, AnalysisError> {
    let file = File::open(path)?;
    let bytes = file.metadata()?.len();
    if bytes > limits.max_bytes {
        return Err(AnalysisError::TooBig {
            bytes,
            limit: limits.max_bytes,
        });
    }
    let mut input = BufReader::new(file);
    let format = sniff::format_of(&mut input, document_format)?;
    let pages = match format {
        Format::Pdf | Format::PostScript => ghostscript::pages(path, format, limits)?,
        Format::PwgRaster => raster::pwg_pages(&mut input, limits)?,
        Format::Urf => raster::urf_pages(&mut input, limits)?,
        Format::Jpeg => vec![image::jpeg_page(&mut input)?],
        Format::Png => vec![image::png_page(&mut input)?],
        Format::Text => text::pages(&mut input, limits)?,
    };
    Ok(Document { format, pages })
}
