//! PDF and PostScript pages through Ghostscript: `gs` renders every page in
//! RGB at [`RENDER_DPI`] onto a fixed A4 canvas (each page fitted to it, so
//! a page's cost is bounded whatever its size) and writes the pages as one
//! PPM stream on its stdout, which is read and judged page by page as it
//! comes, never stored.
//!
//! Ghostscript runs with `-dSAFER` (the document cannot open other files)
//! in a cleared environment (no `GS_OPTIONS`) whose `TMPDIR` is a private
//! empty directory: under `-dSAFER` Ghostscript still lets a document read
//! and write its temporary directory, which would otherwise be `/tmp` with
//! everything in it (seen here with Ghostscript 10.0). PostScript's own
//! output goes to stderr (so a document cannot write into the page
//! stream), `-dLastPage` is one past the page limit, and a wall-clock limit
//! kills it. An encrypted PDF is told apart by the
//! password message Ghostscript prints (it exits 0 with no pages).

use std::fs::{self, DirBuilder};
use std::io::{self, BufReader, Read};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::chroma::{self, next_ppm_page, RENDER_DPI};
use super::{AnalysisError, Format, Limits, Page};

/// How much of Ghostscript's stderr is kept, for the password check and
/// the error's reason.
const STDERR_KEPT: u64 = 16 * 1024;

/// The pages of the PDF or PostScript document at `path`.
pub(super) fn pages(
    path: &Path,
    format: Format,
    limits: &Limits,
) -> Result<Vec<Page>, AnalysisError> {
    let scratch = Scratch::new()?;
    let mut child = command(path, limits.max_pages, &scratch.0)
        .spawn()
        .map_err(AnalysisError::Ghostscript)?;
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        // Both were asked for as pipes just above.
        let _ = child.kill();
        let _ = child.wait();
        return Err(AnalysisError::malformed(
            format,
            "ghostscript gave no pipes",
        ));
    };
    let deadline = Instant::now() + limits.max_time;
    let (done, finished) = mpsc::channel();
    let max_pages = limits.max_pages;
    let pages = thread::spawn(move || {
        let result = read_pages(stdout, max_pages);
        let _ = done.send(());
        result
    });
    let stderr = thread::spawn(move || keep_stderr(stderr));
    let too_slow = AnalysisError::TooSlow {
        limit: limits.max_time,
    };
    if let Err(mpsc::RecvTimeoutError::Timeout) = finished.recv_timeout(limits.max_time) {
        stop(&mut child);
        return Err(too_slow);
    }
    let pages = match pages.join() {
        Ok(Ok(pages)) => pages,
        stopped => {
            stop(&mut child);
            return Err(match stopped {
                Ok(Err(Stop::TooMany)) => AnalysisError::TooManyPages { limit: max_pages },
                Ok(Err(Stop::Broken(reason))) => AnalysisError::malformed(format, reason),
                _ => AnalysisError::malformed(format, "the page reader panicked"),
            });
        }
    };
    // The page stream ended: Ghostscript is exiting, give it the time left.
    let Some(status) = exit_by(&mut child, deadline)? else {
        return Err(too_slow);
    };
    let stderr = stderr.join().unwrap_or_default();
    judge_run(format, status.success(), &stderr, pages)
}

/// Kills Ghostscript and reaps it (its pipes' threads then see the end).
fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Ghostscript's exit status, or `None` once it was killed at `deadline`.
fn exit_by(child: &mut Child, deadline: Instant) -> Result<Option<ExitStatus>, AnalysisError> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            stop(child);
            return Ok(None);
        }
        thread::sleep(Duration::from_millis(2));
    }
}

fn command(path: &Path, max_pages: u32, scratch: &Path) -> Command {
    let mut gs = Command::new("gs");
    gs.env_clear();
    if let Some(search) = std::env::var_os("PATH") {
        gs.env("PATH", search);
    }
    for name in ["TMPDIR", "TEMP", "TMP"] {
        gs.env(name, scratch);
    }
    gs.args([
        "-q",
        "-dSAFER",
        "-dBATCH",
        "-dNOPAUSE",
        "-sstdout=%stderr",
        "-sDEVICE=ppmraw",
        &format!("-r{RENDER_DPI}"),
        "-dFIXEDMEDIA",
        "-dDEVICEWIDTHPOINTS=595",
        "-dDEVICEHEIGHTPOINTS=842",
        "-dPDFFitPage",
        "-dPSFitPage",
        &format!("-dLastPage={}", max_pages.saturating_add(1)),
        "-sOutputFile=-",
        "-f",
    ])
    .arg(path)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    gs
}

/// A private, empty temporary directory for one Ghostscript run, removed
/// with everything in it when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> io::Result<Scratch> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!(
            "tallyd-gs-{}-{nanos}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        // Fails if anything already has the name: never someone else's.
        DirBuilder::new().mode(0o700).create(&path)?;
        Ok(Scratch(path))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Why the page reader stopped early.
enum Stop {
    TooMany,
    Broken(String),
}

fn read_pages(stdout: ChildStdout, max_pages: u32) -> Result<Vec<Page>, Stop> {
    let mut input = BufReader::with_capacity(64 * 1024, stdout);
    let mut pages = Vec::new();
    while let Some(chroma_pixels) =
        next_ppm_page(&mut input).map_err(|e| Stop::Broken(crate::error::error_chain(&e)))?
    {
        if pages.len() >= max_pages as usize {
            return Err(Stop::TooMany);
        }
        pages.push(Page {
            colour: chroma::is_colour(chroma_pixels, RENDER_DPI, RENDER_DPI),
            chroma_pixels: Some(chroma_pixels),
        });
    }
    Ok(pages)
}

/// The first [`STDERR_KEPT`] bytes of stderr; the rest is read and dropped
/// so Ghostscript never blocks on a full pipe.
fn keep_stderr(mut stderr: ChildStderr) -> String {
    let mut kept = Vec::new();
    let _ = (&mut stderr).take(STDERR_KEPT).read_to_end(&mut kept);
    let _ = io::copy(&mut stderr, &mut io::sink());
    String::from_utf8_lossy(&kept).into_owned()
}

/// The outcome of a Ghostscript run that finished in time.
fn judge_run(
    format: Format,
    success: bool,
    stderr: &str,
    pages: Vec<Page>,
) -> Result<Vec<Page>, AnalysisError> {
    if stderr.contains("requires a password") {
        return Err(AnalysisError::Encrypted);
    }
    if !success || (pages.is_empty() && stderr.contains("Error")) {
        let reason = stderr
            .lines()
            .map(str::trim)
            .find(|l| l.contains("Error") || l.contains("error"))
            .unwrap_or("ghostscript failed")
            .to_string();
        return Err(AnalysisError::malformed(format, reason));
    }
    Ok(pages)
}
