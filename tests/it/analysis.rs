//! The document analysis (`tallyd::analysis`) on a corpus of documents the
//! test generates and whose truth it knows: pages exact on all, colour
//! right on all, with `--nocapture` printing the corpus table. Then the
//! limits: too slow, too many pages, too big, unknown, malformed, and a
//! document that tries to read another file or write into the page stream.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tallyd::analysis::{analyse, impressions, AnalysisError, Document, Layout, Limits};
use tallyd::pricing::Sides;

use crate::support;
use crate::support::documents::{ghostscript, write_pdf_of, write_ps, Mark};

use Mark::*;

/// What a corpus document must give.
enum Truth {
    /// Colour per page (`C`/`M`), and the impressions (mono, colour,
    /// blank backs) its layout makes.
    Pages(String, (u64, u64, u64)),
    /// Refused, with this `AnalysisError::kind`.
    Refused(&'static str),
}

struct Case {
    name: &'static str,
    path: PathBuf,
    mime: &'static str,
    layout: Layout,
    truth: Truth,
}

/// `n` pages of text, with `extra` added on the 1-based pages in `at`.
fn text_pages(n: usize, extra: Mark, at: &[usize]) -> Vec<Vec<Mark>> {
    (1..=n)
        .map(|p| {
            if at.contains(&p) {
                vec![Text, extra]
            } else {
                vec![Text]
            }
        })
        .collect()
}

/// The `C`/`M` pattern of pages.
fn pattern(pages: &[Vec<Mark>]) -> String {
    pages
        .iter()
        .map(|marks| {
            if marks.iter().any(|m| m.colour()) {
                'C'
            } else {
                'M'
            }
        })
        .collect()
}

fn refs(pages: &[Vec<Mark>]) -> Vec<&[Mark]> {
    pages.iter().map(Vec::as_slice).collect()
}

fn plain(pattern: String) -> Truth {
    let colour = pattern.matches('C').count() as u64;
    let mono = pattern.len() as u64 - colour;
    Truth::Pages(pattern, (mono, colour, 0))
}

fn layout(copies: u32, sides: Sides, number_up: u32, ranges: &[(u32, u32)]) -> Layout {
    Layout {
        copies,
        sides,
        number_up,
        page_ranges: ranges.iter().map(|&(a, b)| a..=b).collect(),
    }
}

/// A PDF case whose truth is its marks, printed plainly.
fn pdf_case(dir: &Path, name: &'static str, pages: Vec<Vec<Mark>>) -> Case {
    Case {
        name,
        path: write_pdf_of(dir, &format!("{name}.pdf"), &refs(&pages)),
        mime: "application/pdf",
        layout: Layout::default(),
        truth: plain(pattern(&pages)),
    }
}

/// A PDF case printed with `layout`, giving `expected` impressions.
fn layout_case(
    dir: &Path,
    name: &'static str,
    pages: Vec<Vec<Mark>>,
    layout: Layout,
    expected: (u64, u64, u64),
) -> Case {
    Case {
        layout,
        truth: Truth::Pages(pattern(&pages), expected),
        ..pdf_case(dir, name, pages)
    }
}

/// `source` turned into `name` by Ghostscript's `device`.
fn converted(
    dir: &Path,
    source: &Path,
    name: &'static str,
    mime: &'static str,
    device: &str,
    args: &[&str],
    truth: &str,
) -> Case {
    let path = dir.join(name);
    ghostscript(source, device, args, &path);
    Case {
        name,
        path,
        mime,
        layout: Layout::default(),
        truth: plain(truth.to_string()),
    }
}

fn corpus(dir: &Path) -> Vec<Case> {
    let mixed = vec![vec![Text], vec![Photo], vec![RichBlack], vec![Text, Logo]];
    let mixed_pdf = write_pdf_of(dir, "mixed-source.pdf", &refs(&mixed));
    let photo_page = write_pdf_of(dir, "photo-page.pdf", &[&[Text, Photo]]);
    let rgb8 = ["-r100", "-dcupsColorSpace=19", "-dcupsBitsPerColor=8"];
    let mut cases = vec![
        pdf_case(dir, "text only", text_pages(3, Text, &[])),
        pdf_case(
            dir,
            "greyscale photos",
            vec![vec![GreyPhoto], vec![Text, GreyPhotoRgb]],
        ),
        pdf_case(
            dir,
            "rich black, neutral tints",
            vec![vec![RichBlack], vec![Text, NeutralTint]],
        ),
        pdf_case(
            dir,
            "one colour page in 20",
            text_pages(20, OrangeChart, &[7]),
        ),
        pdf_case(dir, "small colour logo", vec![vec![Text, Logo], vec![Text]]),
        pdf_case(dir, "full-colour photos", vec![vec![Photo]; 4]),
        pdf_case(dir, "one red text line", vec![vec![Text, RedLine]]),
        layout_case(
            dir,
            "2-up",
            text_pages(5, Logo, &[2]),
            layout(1, Sides::OneSided, 2, &[]),
            (2, 1, 0),
        ),
        layout_case(
            dir,
            "duplex, odd pages",
            text_pages(5, Text, &[]),
            layout(1, Sides::TwoSided, 1, &[]),
            (5, 0, 1),
        ),
        layout_case(
            dir,
            "3 copies",
            vec![vec![Photo], vec![Text], vec![Text]],
            layout(3, Sides::OneSided, 1, &[]),
            (6, 3, 0),
        ),
        layout_case(
            dir,
            "page range 3-8",
            text_pages(10, OrangeChart, &[2, 9]),
            layout(1, Sides::OneSided, 1, &[(3, 8)]),
            (6, 0, 0),
        ),
        pdf_case(dir, "300 pages", text_pages(300, RedLine, &[150])),
        Case {
            name: "PostScript original",
            path: write_ps(
                dir,
                "original.ps",
                &[&[Text], &[Photo], &[GreyPhoto], &[NeutralTint]],
            ),
            mime: "application/postscript",
            layout: Layout::default(),
            truth: plain("MCMM".into()),
        },
        Case {
            name: "PDF sent as octet-stream",
            path: mixed_pdf.clone(),
            mime: "application/octet-stream",
            layout: Layout::default(),
            truth: plain("MCMC".into()),
        },
        converted(
            dir,
            &mixed_pdf,
            "encrypted.pdf",
            "application/pdf",
            "pdfwrite",
            &["-sOwnerPassword=owner", "-sUserPassword=user"],
            "",
        ),
        converted(
            dir,
            &mixed_pdf,
            "owner-password.pdf",
            "application/pdf",
            "pdfwrite",
            &["-sOwnerPassword=owner"],
            "MCMC",
        ),
        converted(
            dir,
            &mixed_pdf,
            "rgb.pwg",
            "image/pwg-raster",
            "pwgraster",
            &rgb8,
            "MCMC",
        ),
        converted(
            dir,
            &mixed_pdf,
            "grey.pwg",
            "image/pwg-raster",
            "pwgraster",
            &["-r100"],
            "MMMM",
        ),
        converted(
            dir,
            &mixed_pdf,
            "rgb.urf",
            "image/urf",
            "urf",
            &rgb8,
            "MCMC",
        ),
        converted(
            dir,
            &mixed_pdf,
            "grey.urf",
            "image/urf",
            "urf",
            &["-r100"],
            "MMMM",
        ),
        converted(
            dir,
            &photo_page,
            "photo.jpg",
            "image/jpeg",
            "jpeg",
            &["-r50"],
            "C",
        ),
        converted(
            dir,
            &photo_page,
            "grey.jpg",
            "image/jpeg",
            "jpeggray",
            &["-r50"],
            "M",
        ),
        converted(
            dir,
            &photo_page,
            "photo.png",
            "image/png",
            "png16m",
            &["-r50"],
            "C",
        ),
        converted(
            dir,
            &photo_page,
            "grey.png",
            "image/png",
            "pnggray",
            &["-r50"],
            "M",
        ),
    ];
    let encrypted = cases
        .iter_mut()
        .find(|c| c.name == "encrypted.pdf")
        .expect("in the corpus");
    encrypted.truth = Truth::Refused("encrypted");
    let text = dir.join("letter.txt");
    let body = format!(
        "{}\x0c{}",
        "a line of text\n".repeat(150),
        "more\n".repeat(10)
    );
    fs::write(&text, body).expect("write the text");
    cases.push(Case {
        name: "text/plain, 150 lines + form feed",
        path: text,
        mime: "text/plain",
        layout: Layout::default(),
        truth: plain("MMMM".into()),
    });
    cases
}

/// `1,4,7` for the colour pages of a pattern (`-` for none).
fn colour_pages(pattern: &str) -> String {
    let pages: Vec<String> = pattern
        .char_indices()
        .filter(|(_, c)| *c == 'C')
        .map(|(i, _)| (i + 1).to_string())
        .collect();
    if pages.is_empty() {
        "-".into()
    } else {
        pages.join(",")
    }
}

fn got_pattern(doc: &Document) -> String {
    doc.pages
        .iter()
        .map(|p| if p.colour { 'C' } else { 'M' })
        .collect()
}

/// Checks one case; `None` when right, else what went wrong.
fn check(case: &Case, result: &Result<Document, AnalysisError>) -> Option<String> {
    match (&case.truth, result) {
        (Truth::Refused(kind), Err(e)) if e.kind() == *kind => None,
        (Truth::Pages(pattern, expected), Ok(doc)) => {
            let i = impressions(doc, &case.layout);
            let got = (i.mono, i.colour, i.blank_backs);
            let right = got_pattern(doc) == *pattern && got == *expected;
            (!right).then(|| {
                format!(
                    "pages {} impressions {got:?}, want {pattern} {expected:?}",
                    got_pattern(doc)
                )
            })
        }
        (_, result) => Some(format!(
            "got {:?}",
            result
                .as_ref()
                .map(got_pattern)
                .map_err(|e| tallyd::error_chain(e))
        )),
    }
}

#[test]
fn corpus_pages_and_colour_are_right() {
    let _serial = support::serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = corpus(dir.path());
    assert!(
        cases.len() >= 20,
        "the corpus has {} documents",
        cases.len()
    );
    println!(
        "{:<36} {:<24} {:>5} {:>9} {:>12} {:>7}  result",
        "document", "format", "pages", "colour", "mono/col/bb", "ms"
    );
    let mut wrong = Vec::new();
    for case in &cases {
        let started = Instant::now();
        let result = analyse(&case.path, case.mime, &Limits::default());
        let ms = started.elapsed().as_millis();
        let verdict = check(case, &result);
        let (pages, colour, counts) = match &result {
            Ok(doc) => {
                let i = impressions(doc, &case.layout);
                (
                    doc.pages.len().to_string(),
                    colour_pages(&got_pattern(doc)),
                    format!("{}/{}/{}", i.mono, i.colour, i.blank_backs),
                )
            }
            Err(e) => ("-".into(), "-".into(), e.kind().to_string()),
        };
        let format = result
            .as_ref()
            .map(|d| d.format.mime())
            .unwrap_or(case.mime);
        println!(
            "{:<36} {:<24} {:>5} {:>9} {:>12} {:>7}  {}",
            case.name,
            format,
            pages,
            colour,
            counts,
            ms,
            verdict.as_deref().unwrap_or("right")
        );
        if let Some(v) = verdict {
            wrong.push(format!("{}: {v}", case.name));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} documents wrong:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
}

fn refused(path: &Path, mime: &str, limits: &Limits) -> AnalysisError {
    match analyse(path, mime, limits) {
        Ok(doc) => panic!("{} was analysed: {} pages", path.display(), doc.pages.len()),
        Err(e) => e,
    }
}

#[test]
fn a_slow_document_is_killed_at_the_time_limit() {
    let _serial = support::serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("forever.ps");
    fs::write(&path, "%!PS\n{ 1 pop } loop\n").expect("write");
    let limits = Limits {
        max_time: Duration::from_secs(1),
        ..Limits::default()
    };
    let started = Instant::now();
    let e = refused(&path, "application/postscript", &limits);
    assert_eq!(e.kind(), "too-slow", "{}", tallyd::error_chain(&e));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn too_many_pages_are_refused_not_truncated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pages = text_pages(12, Text, &[]);
    let pdf = write_pdf_of(dir.path(), "twelve.pdf", &refs(&pages));
    let ps = write_ps(dir.path(), "twelve.ps", &refs(&pages));
    let limits = Limits {
        max_pages: 11,
        ..Limits::default()
    };
    assert_eq!(
        refused(&pdf, "application/pdf", &limits).kind(),
        "too-many-pages"
    );
    assert_eq!(
        refused(&ps, "application/postscript", &limits).kind(),
        "too-many-pages"
    );
    let exact = Limits {
        max_pages: 12,
        ..Limits::default()
    };
    assert_eq!(
        analyse(&pdf, "application/pdf", &exact)
            .expect("12 pages")
            .pages
            .len(),
        12
    );
    // A PostScript document that never stops making pages.
    let endless = dir.path().join("endless.ps");
    fs::write(&endless, "%!PS\n{ showpage } loop\n").expect("write");
    assert_eq!(
        refused(&endless, "application/postscript", &limits).kind(),
        "too-many-pages"
    );
}

#[test]
fn too_big_unknown_and_malformed_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pdf = write_pdf_of(dir.path(), "one.pdf", &[&[Text]]);
    let tiny = Limits {
        max_bytes: 100,
        ..Limits::default()
    };
    assert_eq!(refused(&pdf, "application/pdf", &tiny).kind(), "too-big");
    let binary = dir.path().join("binary");
    fs::write(&binary, [0u8, 1, 2, 3, 0xff, 0xfe, 7]).expect("write");
    assert_eq!(
        refused(&binary, "application/octet-stream", &Limits::default()).kind(),
        "unknown-format"
    );
    let broken = dir.path().join("broken.pdf");
    fs::write(&broken, "%PDF-1.4\nthis is not a PDF at all\n").expect("write");
    let e = refused(&broken, "application/pdf", &Limits::default());
    assert_eq!(e.kind(), "malformed", "{}", tallyd::error_chain(&e));
    let mut cut = fs::read(dir.path().join("one.pdf")).expect("read");
    cut.truncate(cut.len() / 3);
    fs::write(&broken, cut).expect("write");
    let _ = analyse(&broken, "application/pdf", &Limits::default()); // repaired or refused, never a panic
}

#[test]
fn a_document_cannot_read_files_or_write_into_the_page_stream() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = dir.path().join("secret");
    fs::write(&secret, "P6 1 1 255 xyz").expect("write");
    let reads = dir.path().join("reads.ps");
    fs::write(
        &reads,
        format!(
            "%!PS\n({}) (r) file 100 string readstring pop print\nshowpage\n",
            secret.display()
        ),
    )
    .expect("write");
    let e = refused(&reads, "application/postscript", &Limits::default());
    assert_eq!(e.kind(), "malformed", "{}", tallyd::error_chain(&e));
    // Nor write one (Ghostscript's SAFER allows its temporary directory,
    // which is a private one, not this test's /tmp).
    let planted = dir.path().join("planted");
    let writes = dir.path().join("writes.ps");
    fs::write(
        &writes,
        format!(
            "%!PS\n({}) (w) file (x) writestring\nshowpage\n",
            planted.display()
        ),
    )
    .expect("write");
    let e = refused(&writes, "application/postscript", &Limits::default());
    assert_eq!(e.kind(), "malformed", "{}", tallyd::error_chain(&e));
    assert!(
        !planted.exists(),
        "the document wrote {}",
        planted.display()
    );
    // What PostScript prints goes to stderr, not into the PPM stream.
    let prints = dir.path().join("prints.ps");
    fs::write(
        &prints,
        "%!PS\n(P6\\n1 1\\n255\\nxyz) print flush\nshowpage\nshowpage\n",
    )
    .expect("write");
    let doc = analyse(&prints, "application/postscript", &Limits::default()).expect("analysed");
    assert_eq!(got_pattern(&doc), "MM");
}
