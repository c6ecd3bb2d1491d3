//! A serial card reader for `tallyd run`: a `socat` pseudo-terminal pair
//! (tallyd opens one end, the test writes frames to the other) and the
//! RDM6300 frame of a card.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `socat` pseudo-terminal pair: tallyd opens `reader`, the test writes
/// frames to `feeder`.
pub struct Pty {
    child: Option<Child>,
    pub reader: PathBuf,
    pub feeder: PathBuf,
}

impl Pty {
    pub fn start(dir: &Path, name: &str) -> Pty {
        let mut pty = Pty {
            child: None,
            reader: dir.join(format!("{name}-reader")),
            feeder: dir.join(format!("{name}-feeder")),
        };
        pty.launch();
        pty
    }

    fn launch(&mut self) {
        let socat = ["/usr/bin/socat", "/bin/socat"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or_else(|| panic!("socat is missing: apt-get install socat"));
        let child = Command::new(socat)
            .arg(format!("pty,raw,echo=0,link={}", self.reader.display()))
            .arg(format!("pty,raw,echo=0,link={}", self.feeder.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start socat");
        self.child = Some(child);
        let start = Instant::now();
        while !(self.reader.exists() && self.feeder.exists()) {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "socat made no ptys"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Writes bytes to the reader's side, as a card reader would.
    pub fn write(&self, bytes: &[u8]) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&self.feeder)
            .expect("open feeder");
        f.write_all(bytes).expect("write to pty");
        f.flush().expect("flush");
    }

    /// Writes `bytes` one at a time, as fast as a reader sends them at
    /// `baud` (8N1: ten bits a byte), as a real reader's frame arrives.
    pub fn write_at_baud(&self, bytes: &[u8], baud: u32) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&self.feeder)
            .expect("open feeder");
        let per_byte = std::time::Duration::from_secs(10) / baud;
        let start = std::time::Instant::now();
        for (i, b) in bytes.iter().enumerate() {
            let due = per_byte * i as u32;
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
            f.write_all(std::slice::from_ref(b)).expect("write to pty");
            f.flush().expect("flush");
        }
    }

    /// The device goes away (socat exits and removes the links).
    pub fn unplug(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_file(&self.reader);
        let _ = std::fs::remove_file(&self.feeder);
    }

    pub fn replug(&mut self) {
        self.unplug();
        self.launch();
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        self.unplug();
    }
}

/// An RDM6300 frame for a 10-hex-digit card: STX, id, XOR checksum, ETX.
pub fn rdm6300(card: &str) -> Vec<u8> {
    let bytes: Vec<u8> = (0..5)
        .map(|i| u8::from_str_radix(&card[i * 2..i * 2 + 2], 16).expect("hex"))
        .collect();
    let sum = bytes.iter().fold(0u8, |a, b| a ^ b);
    let mut f = vec![0x02];
    f.extend_from_slice(card.as_bytes());
    f.extend_from_slice(format!("{sum:02X}").as_bytes());
    f.push(0x03);
    f
}

/// A `[[readers]]` table: RDM6300 reader `id` on `pty`, bound to the held
/// printer `printer`, with a 1 s debounce.
pub fn printer_reader(id: &str, pty: &Pty, printer: &str) -> String {
    format!(
        "\n[[readers]]\nid = \"{id}\"\ndevice = \"{}\"\nframing = \"rdm6300\"\nprinter = \"{printer}\"\ndebounce = \"1s\"\n",
        pty.reader.display()
    )
}
