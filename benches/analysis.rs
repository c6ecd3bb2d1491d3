//! `cargo bench --bench analysis`: pages analysed per second
//! (`tallyd::analysis::analyse`, Ghostscript at 50 dpi plus the chroma
//! count) on a 50-page document of mono text and on a 50-page document of
//! colour photo pages, best and median of 5 runs each, beside Ghostscript
//! alone rendering the same pages into /dev/null (the floor). Then a
//! 300-page text document once.

// The integration tests' support folder; this bench uses its document
// generators only.
#[allow(dead_code)]
#[path = "../tests/it/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::documents::{write_pdf_of, Mark};
use tallyd::analysis::{analyse, Limits};

const RUNS: usize = 5;

fn pages(n: usize, marks: &[Mark]) -> Vec<Vec<Mark>> {
    vec![marks.to_vec(); n]
}

fn write(dir: &Path, name: &str, pages: &[Vec<Mark>]) -> std::path::PathBuf {
    let refs: Vec<&[Mark]> = pages.iter().map(Vec::as_slice).collect();
    write_pdf_of(dir, name, &refs)
}

/// Ghostscript alone, with the analysis's own rendering options, output
/// thrown away.
fn render_only(pdf: &Path) -> Duration {
    let started = Instant::now();
    let status = Command::new("gs")
        .args([
            "-q",
            "-dSAFER",
            "-dBATCH",
            "-dNOPAUSE",
            "-sDEVICE=ppmraw",
            "-r50",
            "-dFIXEDMEDIA",
            "-dDEVICEWIDTHPOINTS=595",
            "-dDEVICEHEIGHTPOINTS=842",
            "-dPDFFitPage",
            "-sOutputFile=/dev/null",
        ])
        .arg(pdf)
        .stdout(Stdio::null())
        .status()
        .expect("run gs");
    assert!(status.success());
    started.elapsed()
}

fn measure(label: &str, pdf: &Path, expected_colour: usize) {
    let mut times = Vec::new();
    let mut floors = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        let doc = analyse(pdf, "application/pdf", &Limits::default()).expect("analysed");
        times.push(started.elapsed());
        assert_eq!(doc.pages.len(), 50);
        assert_eq!(doc.colour_pages(), expected_colour, "{label}");
        floors.push(render_only(pdf));
    }
    times.sort();
    floors.sort();
    let rate = |d: Duration| 50.0 / d.as_secs_f64();
    println!(
        "{label:<22} best {:>6.1} pages/s  median {:>6.1} pages/s  ({:.1} ms/page; gs alone: best {:.1} pages/s, median {:.1})",
        rate(times[0]),
        rate(times[RUNS / 2]),
        times[RUNS / 2].as_secs_f64() * 1000.0 / 50.0,
        rate(floors[0]),
        rate(floors[RUNS / 2]),
    );
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = write(dir.path(), "text.pdf", &pages(50, &[Mark::Text]));
    let photos = write(
        dir.path(),
        "photos.pdf",
        &pages(50, &[Mark::Text, Mark::Photo]),
    );
    println!(
        "document analysis, 50-page documents, {RUNS} runs each ({} cores)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    measure("mono text pages", &text, 0);
    measure("colour photo pages", &photos, 50);
    let long = write(dir.path(), "long.pdf", &pages(300, &[Mark::Text]));
    let started = Instant::now();
    let doc = analyse(&long, "application/pdf", &Limits::default()).expect("analysed");
    let took = started.elapsed();
    assert_eq!(doc.pages.len(), 300);
    println!(
        "300 text pages         {:.2} s ({:.1} pages/s)",
        took.as_secs_f64(),
        300.0 / took.as_secs_f64()
    );
}
