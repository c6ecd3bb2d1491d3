//! The alert command: run without a shell, the alert's JSON on its stdin,
//! within a time limit. It runs in a process group of its own, so that at
//! the limit (or when the daemon stops) it is killed with whatever it
//! started (a shell script's `sleep`, `curl`).

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

/// What the command's stderr may add to the log line.
const STDERR_KEPT: usize = 512;

/// Why the command did not take an alert.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("cannot start {}", .path)]
    Start {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} exited with {status}{}", said(.stderr))]
    Failed {
        path: String,
        status: ExitStatus,
        stderr: String,
    },
    #[error("{path} did not finish within {}s: killed", .limit.as_secs_f64())]
    TimedOut { path: String, limit: Duration },
    #[error("{path}: cannot wait for it")]
    Wait {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

fn said(stderr: &str) -> String {
    match stderr.trim() {
        "" => String::new(),
        s => format!(": {s}"),
    }
}

/// Kills the command's process group unless disarmed: at the time limit,
/// and when the run is dropped (the daemon stops).
struct GroupGuard(Option<Pid>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.0.take() {
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    }
}

/// Runs `path` with `input` on its stdin; Ok once it exits 0 within `limit`.
pub async fn run(path: &Path, input: &[u8], limit: Duration) -> Result<(), CommandError> {
    let shown = || path.display().to_string();
    let mut child = Command::new(path)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| CommandError::Start {
            path: shown(),
            source,
        })?;
    let mut guard = GroupGuard(child.id().map(|id| Pid::from_raw(id as i32)));
    match tokio::time::timeout(limit, finish(&mut child, input)).await {
        Ok(Ok((status, stderr))) => {
            // Reaped: the group's id may be reused; do not signal it.
            guard.0 = None;
            match status.success() {
                true => Ok(()),
                false => Err(CommandError::Failed {
                    path: shown(),
                    status,
                    stderr,
                }),
            }
        }
        Ok(Err(source)) => Err(CommandError::Wait {
            path: shown(),
            source,
        }),
        Err(_) => {
            drop(guard);
            let _ = child.kill().await;
            Err(CommandError::TimedOut {
                path: shown(),
                limit,
            })
        }
    }
}

/// Writes `input`, reads stderr (the first [`STDERR_KEPT`] bytes kept) and
/// waits for the exit.
async fn finish(child: &mut Child, input: &[u8]) -> std::io::Result<(ExitStatus, String)> {
    let stdin = child.stdin.take();
    let stderr = child.stderr.take();
    let write = async {
        if let Some(mut stdin) = stdin {
            // A command that does not read its stdin is not an error.
            let _ = stdin.write_all(input).await;
        }
    };
    let read = async {
        let mut kept = Vec::new();
        if let Some(mut stderr) = stderr {
            let mut buf = [0u8; 1024];
            while let Ok(n @ 1..) = stderr.read(&mut buf).await {
                let room = STDERR_KEPT.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
        kept
    };
    let ((), kept) = tokio::join!(write, read);
    let status = child.wait().await?;
    let text = String::from_utf8_lossy(&kept);
    Ok((
        status,
        crate::error::escape_controls(text.trim()).into_owned(),
    ))
}
