//! PDFs for print jobs: a minimal valid PDF with a chosen page count, and
//! pdfinfo's count of a PDF's pages.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::process::{require, run, text_of, COMMAND_TIMEOUT};

/// Writes `dir/name`: a minimal, valid PDF 1.4 with `pages` US Letter pages
/// (Helvetica text "Page i of N" on each), with a correct xref table, so
/// pdfinfo and CUPS's pdftopdf count exactly `pages`. Panics if `pages` is 0.
pub fn write_pdf(dir: &Path, name: &str, pages: u32) -> PathBuf {
    assert!(pages > 0, "write_pdf: a PDF needs at least one page");
    let mut objects: Vec<String> = vec![
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        format!(
            "<< /Type /Pages /Kids [{}] /Count {pages} >>",
            (0..pages)
                .map(|i| format!("{} 0 R", 4 + 2 * i))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_string(),
    ];
    for i in 0..pages {
        objects.push(format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] \
             /Resources << /Font << /F1 3 0 R >> >> /Contents {} 0 R >>",
            5 + 2 * i
        ));
        let content = format!("BT /F1 36 Tf 72 700 Td (Page {} of {pages}) Tj ET", i + 1);
        objects.push(format!(
            "<< /Length {} >>\nstream\n{content}\nendstream",
            content.len()
        ));
    }
    let mut pdf = String::from("%PDF-1.4\n");
    let mut offsets = Vec::new();
    for (i, object) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.push_str(&format!("{} 0 obj\n{object}\nendobj\n", i + 1));
    }
    let xref = pdf.len();
    pdf.push_str(&format!(
        "xref\n0 {}\n0000000000 65535 f \n",
        objects.len() + 1
    ));
    for offset in offsets {
        pdf.push_str(&format!("{offset:010} 00000 n \n"));
    }
    pdf.push_str(&format!(
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        objects.len() + 1
    ));
    let path = dir.join(name);
    fs::write(&path, pdf).expect("write the PDF");
    path
}

/// Pages of a PDF according to `pdfinfo` (poppler-utils).
pub fn pdf_pages(path: &Path) -> u32 {
    let out = run(Command::new(require("pdfinfo")).arg(path), COMMAND_TIMEOUT);
    let text = text_of(&out);
    text.lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("pdfinfo {} gave no page count:\n{text}", path.display()))
}
