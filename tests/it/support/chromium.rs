//! Headless Chromium for the console's browser tests: Debian's `chromium`
//! driven by its `chromedriver` (package `chromium-driver`) over WebDriver,
//! through `fantoccini`. The driver listens on a free loopback port and is
//! killed on drop; the browser runs headless with its own profile.

use super::process::{free_port, require};
use fantoccini::{Client, ClientBuilder};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A chromedriver and a browser session on it.
pub struct Chromium {
    driver: Child,
    pub client: Client,
    /// Where [`Chromium::screenshots`] writes.
    shots: PathBuf,
}

/// Desktop and phone widths, as (name, width, height).
pub const WIDTHS: [(&str, u32, u32); 2] = [("desktop", 1280, 900), ("phone", 390, 844)];

impl Chromium {
    /// Starts chromedriver and a headless session. Screenshots go to
    /// `target/console-screenshots/`.
    pub async fn start(profile: &Path) -> Chromium {
        let chromium = require("chromium");
        let driver_bin = require("chromedriver");
        let port = free_port();
        let driver = Command::new(driver_bin)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let url = format!("http://127.0.0.1:{port}");
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                    "--disable-dev-shm-usage", "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.display())],
            }),
        );
        let start = Instant::now();
        let client = loop {
            match ClientBuilder::rustls()
                .expect("rustls")
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(c) => break c,
                Err(e) if start.elapsed() < Duration::from_secs(20) => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("cannot start a chromium session on chromedriver: {e}"),
            }
        };
        let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");
        std::fs::create_dir_all(&shots).expect("screenshots folder");
        Chromium {
            driver,
            client,
            shots,
        }
    }

    /// Screenshots of the current page at desktop and phone widths,
    /// `NAME-desktop.png` and `NAME-phone.png`; returns to desktop width.
    pub async fn screenshots(&self, name: &str) -> Vec<PathBuf> {
        let mut written = Vec::new();
        for (width_name, w, h) in WIDTHS.iter().rev() {
            self.client
                .set_window_size(*w, *h)
                .await
                .expect("window size");
            let png = self.client.screenshot().await.expect("screenshot");
            let path = self.shots.join(format!("{name}-{width_name}.png"));
            std::fs::write(&path, png).expect("write screenshot");
            written.push(path);
        }
        written
    }

    /// Ends the browser session; the driver goes on drop.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
