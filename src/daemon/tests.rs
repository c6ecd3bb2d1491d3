//! The daemon driven in-process through [`serve`]: its own shutdown future,
//! its own controls, its own clock.

use super::*;
use std::time::Instant;

/// A card reader whose device is not there: its thread keeps trying to open
/// it, and must still stop with everything else.
const CONFIG: &str = r#"
[site]
name = "In-process"
timezone = "UTC"
ledger = "ledger.db"

[[readers]]
id = "door"
device = "/nonexistent/tallyd-test-reader"
framing = "rdm6300"
resource = "room-a"
"#;

/// The names of this process's threads (`/proc/self/task/*/comm`).
fn thread_names() -> Vec<String> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|n| n.trim().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_returns_once_every_task_and_the_reader_thread_stopped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = Config::parse(CONFIG, "tallyd.toml", dir.path()).expect("config");
    let ledger = Ledger::open(&config.ledger, config.site()).expect("ledger");
    let (controls, control_rx) = mpsc::unbounded_channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async {
        let _ = stopped.await;
    };
    let daemon = tokio::spawn(serve(config, ledger, shutdown, control_rx, Clock::system()));

    let started = Instant::now();
    while !thread_names().iter().any(|n| n == "reader-door") {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no reader thread"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    controls.send(Control::Status).expect("daemon listens");
    drop(controls);
    let asked = Instant::now();
    stop.send(()).expect("daemon waits");
    let result = tokio::time::timeout(STOP_GRACE, daemon)
        .await
        .expect("serve returns within the grace period")
        .expect("serve does not panic");
    assert!(result.is_ok(), "{result:?}");
    // Nothing was stuck: well under the grace period.
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "{:?}",
        asked.elapsed()
    );
    assert!(!thread_names().iter().any(|n| n == "reader-door"));
}
