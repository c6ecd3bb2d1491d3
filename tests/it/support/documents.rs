//! Documents whose truth the test knows: PostScript pages built from marks
//! (text, a colour photo, a grey photo, rich black, a small logo...),
//! turned into PDF by `ps2pdf` and into PWG raster, URF, JPEG or PNG by
//! Ghostscript's own devices. A missing `gs` or `ps2pdf` panics, naming the
//! Debian package (`ghostscript`).

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::process::{require, run, text_of, COMMAND_TIMEOUT};

/// Something drawn on a page, and whether it needs colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// 50 lines of black Helvetica.
    Text,
    /// One line of red text.
    RedLine,
    /// A two-colour logo, 24 points square, in a corner.
    Logo,
    /// A 64×64 RGB photo-like image, scaled to most of the page.
    Photo,
    /// The same picture in DeviceGray.
    GreyPhoto,
    /// The grey picture as an RGB image (R = G = B).
    GreyPhotoRgb,
    /// A CMYK rich black fill (C60 M40 Y40 K100) and a 20% RGB grey fill.
    RichBlack,
    /// A 50% K tint and a light grey fill.
    NeutralTint,
    /// A bar chart with orange bars.
    OrangeChart,
}

impl Mark {
    /// Whether a page with this mark on it is colour.
    pub fn colour(self) -> bool {
        matches!(
            self,
            Mark::RedLine | Mark::Logo | Mark::Photo | Mark::OrangeChart
        )
    }

    fn postscript(self, out: &mut String) {
        match self {
            Mark::Text => {
                out.push_str("0 setgray /Helvetica findfont 10 scalefont setfont\n");
                for line in 0..50 {
                    let _ = writeln!(
                        out,
                        "72 {} moveto (Line {line}: the quick brown fox jumps over the lazy dog, 0123456789.) show",
                        760 - line * 13
                    );
                }
            }
            Mark::RedLine => out.push_str(
                "1 0 0 setrgbcolor /Helvetica findfont 12 scalefont setfont \
                 72 100 moveto (Only this line is red.) show\n",
            ),
            Mark::Logo => out.push_str(
                "gsave 0.1 0.3 0.8 setrgbcolor 520 770 24 24 rectfill \
                 0.95 0.5 0.1 setrgbcolor 532 782 12 12 rectfill grestore\n",
            ),
            Mark::Photo => image(out, 3, |x, y| {
                let wave = ((x as f64 / 6.0).sin() * 30.0) as i32;
                [x * 4, y * 4, (255 - x * 2 - y * 2 + wave).clamp(0, 255)]
            }),
            Mark::GreyPhoto => image(out, 1, |x, y| [grey(x, y), 0, 0]),
            Mark::GreyPhotoRgb => image(out, 3, |x, y| [grey(x, y); 3]),
            Mark::RichBlack => out.push_str(
                "0.6 0.4 0.4 1 setcmykcolor 72 420 450 300 rectfill \
                 0.2 0.2 0.2 setrgbcolor 72 72 450 300 rectfill\n",
            ),
            Mark::NeutralTint => out.push_str(
                "0 0 0 0.5 setcmykcolor 72 420 450 300 rectfill \
                 0.85 setgray 72 72 450 300 rectfill\n",
            ),
            Mark::OrangeChart => {
                out.push_str("0 setgray 100 100 moveto 100 500 lineto 500 500 lineto stroke\n");
                for (i, height) in [120, 260, 180, 340].iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "1 0.55 0 setrgbcolor {} 100 60 {height} rectfill",
                        130 + i * 90
                    );
                }
            }
        }
    }
}

fn grey(x: i32, y: i32) -> i32 {
    (x * 2 + y * 2 + ((y as f64 / 5.0).cos() * 20.0) as i32).clamp(0, 255)
}

/// A 64×64 image with `channels` channels (1 or 3) from `pixel`, over most
/// of the page.
fn image(out: &mut String, channels: usize, pixel: impl Fn(i32, i32) -> [i32; 3]) {
    let _ = writeln!(
        out,
        "gsave 72 250 translate 450 450 scale /row {} string def \
         64 64 8 [64 0 0 -64 0 64] {{currentfile row readhexstring pop}} {}",
        64 * channels,
        if channels == 3 {
            "false 3 colorimage"
        } else {
            "image"
        }
    );
    for y in 0..64 {
        for x in 0..64 {
            for value in &pixel(x, y)[..channels] {
                let _ = write!(out, "{:02x}", value.clamp(&0, &255));
            }
        }
        out.push('\n');
    }
    out.push_str("grestore\n");
}

/// A PostScript document with one page per entry, each with its marks.
pub fn postscript(pages: &[&[Mark]]) -> String {
    let mut out = String::from("%!PS-Adobe-3.0\n");
    for marks in pages {
        for mark in marks.iter() {
            mark.postscript(&mut out);
        }
        out.push_str("showpage\n");
    }
    out
}

/// Writes `dir/name` as PostScript with these pages.
pub fn write_ps(dir: &Path, name: &str, pages: &[&[Mark]]) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, postscript(pages)).expect("write the PostScript");
    path
}

/// Writes `dir/name` as a PDF with these pages, through `ps2pdf`.
pub fn write_pdf_of(dir: &Path, name: &str, pages: &[&[Mark]]) -> PathBuf {
    let ps = write_ps(dir, &format!("{name}.ps"), pages);
    let pdf = dir.join(name);
    let out = run(
        Command::new(require("ps2pdf")).arg(&ps).arg(&pdf),
        COMMAND_TIMEOUT,
    );
    assert!(
        out.status.success(),
        "ps2pdf {}: {}",
        ps.display(),
        text_of(&out)
    );
    pdf
}

/// Runs Ghostscript's `device` over `input` into `output`, with `args`.
pub fn ghostscript(input: &Path, device: &str, args: &[&str], output: &Path) {
    let out = run(
        Command::new(require("gs"))
            .args(["-q", "-dSAFER", "-dBATCH", "-dNOPAUSE"])
            .arg(format!("-sDEVICE={device}"))
            .args(args)
            .arg(format!("-sOutputFile={}", output.display()))
            .arg(input),
        COMMAND_TIMEOUT,
    );
    assert!(
        out.status.success(),
        "gs -sDEVICE={device} {}: {}",
        input.display(),
        text_of(&out)
    );
}
