//! One thread per serial reader: open the port, feed what it reads to the
//! decoder, send taps to the daemon, and reopen with backoff when the device
//! goes away (logged once when it goes, once when it is back).

use super::decode::{Decoder, Event};
use crate::config::ReaderConfig;
use crate::ids::CardId;
use crate::observe::Observer;
use std::io::Read;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How long a read waits before checking whether to stop: a cancelled
/// reader's thread ends within about this long.
const READ_TIMEOUT: Duration = Duration::from_millis(200);
/// A partial frame older than this is dropped.
const STALE_AFTER: Duration = Duration::from_millis(500);
/// The longest wait between tries at a reader that is gone.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A card read at a reader.
#[derive(Debug, Clone)]
pub struct Tap {
    pub reader: String,
    pub card: CardId,
}

/// What a reader's thread tells its task.
#[derive(Debug, Clone)]
pub enum Seen {
    /// A card's frame began and has not ended yet: a tap is on its way (an
    /// RDM6300 frame takes about 15 ms at 9600 baud).
    Arriving,
    /// A card was read.
    Tap(Tap),
}

/// Starts the reader's thread; it runs until `stop` is cancelled, and
/// tells `observer` when the device goes and comes back.
pub fn spawn(
    cfg: ReaderConfig,
    taps: mpsc::UnboundedSender<Seen>,
    stop: CancellationToken,
    observer: Observer,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("reader-{}", cfg.id))
        .spawn(move || run(cfg, taps, stop, observer))
}

fn run(
    cfg: ReaderConfig,
    taps: mpsc::UnboundedSender<Seen>,
    stop: CancellationToken,
    observer: Observer,
) {
    let framing = cfg.framing;
    let origin = Instant::now();
    let mut decoder = Decoder::new(framing, cfg.debounce, STALE_AFTER);
    let mut gone: Option<String> = None;
    let mut first = true;
    let mut backoff = Duration::from_millis(250);
    while !stop.is_cancelled() {
        let mut port = match serialport::new(cfg.device.to_string_lossy(), cfg.baud)
            .timeout(READ_TIMEOUT)
            .open()
        {
            Ok(p) => p,
            Err(e) => {
                if gone.is_none() {
                    tracing::warn!(reader = %cfg.id, device = %cfg.device.display(), error = %e,
                        "card reader is gone; reopening with backoff");
                    gone = Some(e.to_string());
                    observer.reader_down(&cfg.id, &e.to_string());
                }
                first = false;
                sleep_unless_stopped(backoff, &stop);
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        backoff = Duration::from_millis(250);
        if gone.is_some() || first {
            observer.reader_up(&cfg.id);
        }
        match gone.take() {
            Some(was) => {
                tracing::info!(reader = %cfg.id, device = %cfg.device.display(), was = %was, "card reader is back")
            }
            None if first => {
                tracing::info!(reader = %cfg.id, device = %cfg.device.display(), framing = framing.as_str(), "card reader is up")
            }
            None => {}
        }
        first = false;
        decoder.reset();
        let mut buf = [0u8; 256];
        let why = loop {
            if stop.is_cancelled() {
                return;
            }
            match port.read(&mut buf) {
                // A vanished pty or USB adapter: BrokenPipe, or a read of 0.
                Ok(0) => break "end of file".to_string(),
                Ok(n) => {
                    let now = origin.elapsed();
                    let coming = decoder.tap_coming(now);
                    for event in decoder.push(&buf[..n], now) {
                        report(&cfg, event, &taps);
                    }
                    if !coming && decoder.tap_coming(now) {
                        let _ = taps.send(Seen::Arriving);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => continue,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => break e.to_string(),
            }
        };
        tracing::warn!(reader = %cfg.id, device = %cfg.device.display(), error = %why,
            "card reader is gone; reopening with backoff");
        observer.reader_down(&cfg.id, &why);
        gone = Some(why);
        drop(port);
        sleep_unless_stopped(backoff, &stop);
    }
}

fn report(cfg: &ReaderConfig, event: Event, taps: &mpsc::UnboundedSender<Seen>) {
    match event {
        Event::Card(card) => {
            let _ = taps.send(Seen::Tap(Tap {
                reader: cfg.id.clone(),
                card,
            }));
        }
        Event::BadChecksum { frame } => {
            tracing::warn!(reader = %cfg.id, frame = %frame, "card frame with a bad checksum ignored")
        }
        Event::Garbage { bytes } => {
            tracing::debug!(reader = %cfg.id, bytes, "skipped bytes that are not a frame")
        }
        Event::Stale { bytes } => {
            tracing::debug!(reader = %cfg.id, bytes, "dropped a partial frame that never finished")
        }
    }
}

fn sleep_unless_stopped(total: Duration, stop: &CancellationToken) {
    let start = Instant::now();
    while start.elapsed() < total && !stop.is_cancelled() {
        std::thread::sleep(Duration::from_millis(50));
    }
}
