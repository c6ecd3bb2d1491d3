//! The one owner of the ledger's writer connection, with group commit.
//!
//! Callers send closures over a channel. The writer thread takes every job
//! that is queued (up to [`MAX_BATCH`]), runs each inside its own savepoint in
//! one transaction, so a job that fails is rolled back alone, commits once,
//! and only then answers each caller. A job is acknowledged only after its
//! commit returned: under `kill -9` an acknowledged job is always on disk.

use super::{Ledger, LedgerError, Result, SqliteCause};
use rusqlite::Connection;
use std::path::Path;
use std::sync::{mpsc, Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Most jobs committed in one transaction.
pub const MAX_BATCH: usize = 4096;

/// How a batch ended: committed, or the SQLite error that stopped it.
type Outcome = std::result::Result<(), Arc<rusqlite::Error>>;
type Reply = Box<dyn FnOnce(Outcome) + Send>;
/// A queued job. Called with `None` it does not run and only yields its reply
/// (for a batch that could not start).
type Job = Box<dyn FnOnce(Option<&Connection>) -> (bool, Reply) + Send>;
/// Told how long each batch took, from `BEGIN` to its `COMMIT` returning.
pub type OnCommit = Box<dyn Fn(Duration) + Send>;

/// A cloneable handle for sending work to the writer. Its answers name the
/// ledger file when the file failed ([`LedgerError::at`]).
#[derive(Clone)]
pub struct WriterHandle {
    jobs: mpsc::Sender<Job>,
    ledger: Arc<Path>,
    /// Set once the file was found damaged ([`WriterHandle::refuse`]):
    /// SQLite's report, shared by every clone.
    damaged: Arc<OnceLock<String>>,
}

/// The writer thread; dropping every handle and calling [`Writer::join`] stops it.
pub struct Writer {
    handle: WriterHandle,
    thread: JoinHandle<()>,
}

impl Writer {
    /// Starts the writer thread on an opened ledger.
    pub fn spawn(ledger: Ledger) -> std::io::Result<Writer> {
        Writer::spawn_timed(ledger, Box::new(|_| {}))
    }

    /// [`Writer::spawn`], telling `on_commit` how long each batch took
    /// (committed or not), on the writer thread: it must be quick.
    pub fn spawn_timed(ledger: Ledger, on_commit: OnCommit) -> std::io::Result<Writer> {
        // The writer decides nothing by site settings: callers read the live
        // site when they build a job and move what they need into it.
        let (conn, _, path) = ledger.into_parts();
        let (jobs, queue) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("ledger-writer".into())
            .spawn(move || run(conn, queue, on_commit))?;
        Ok(Writer {
            handle: WriterHandle {
                jobs,
                ledger: path.into(),
                damaged: Arc::default(),
            },
            thread,
        })
    }

    pub fn handle(&self) -> WriterHandle {
        self.handle.clone()
    }

    /// Stops accepting work from this handle and waits until every queued job
    /// (from any handle) is committed and the last handle is gone.
    pub fn join(self) {
        drop(self.handle);
        // A panic in the writer thread has already been reported by the
        // panic hook; the ledger is still consistent (the transaction did not
        // commit), so there is nothing more to do here.
        let _ = self.thread.join();
    }
}

/// Refuses every later job of one writer ([`WriterHandle::refusal`]).
#[derive(Clone)]
pub struct Refusal(Arc<OnceLock<String>>);

impl Refusal {
    /// As [`WriterHandle::refuse`].
    pub fn refuse(&self, report: String) -> bool {
        self.0.set(report).is_ok()
    }
}

impl WriterHandle {
    /// From now on, every job (from every handle) is refused with
    /// [`LedgerError::Malformed`]`(report)` without running: a ledger found
    /// damaged after it was opened must not keep charging. Whether this
    /// call set it (the first report stays).
    pub fn refuse(&self, report: String) -> bool {
        self.refusal().refuse(report)
    }

    /// The switch [`WriterHandle::refuse`] throws, without holding the
    /// writer open (the writer stops once every handle is gone).
    pub fn refusal(&self) -> Refusal {
        Refusal(self.damaged.clone())
    }

    /// Queues `f`; the receiver answers after the batch holding it committed.
    pub fn submit<R, F>(&self, f: F) -> oneshot::Receiver<Result<R>>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let file = self.ledger.clone();
        if let Some(report) = self.damaged.get() {
            let _ = tx.send(Err(LedgerError::Malformed(report.clone()).at(&file)));
            return rx;
        }
        let job: Job = Box::new(move |ledger| {
            let out = match ledger {
                Some(conn) => f(conn),
                None => Err(LedgerError::WriterGone),
            };
            let ok = out.is_ok();
            let reply: Reply = Box::new(move |commit| {
                let answer = match commit {
                    Ok(()) => out,
                    Err(e) => Err(LedgerError::CommitFailed(SqliteCause::shared(e))),
                };
                let answer = answer.map_err(|e| e.at(&file));
                // The caller may have stopped waiting; that is not an error.
                let _ = tx.send(answer);
            });
            (ok, reply)
        });
        // If the writer is gone the job (and `tx`) is dropped and the
        // receiver reports it as `WriterGone`.
        let _ = self.jobs.send(job);
        rx
    }

    /// Runs `f` in the writer and waits for its commit (from a plain thread).
    pub fn call<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R> + Send + 'static,
    {
        self.submit(f)
            .blocking_recv()
            .map_err(|_| LedgerError::WriterGone)?
    }

    /// Runs `f` in the writer and waits for its commit (from async code).
    pub async fn call_async<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R> + Send + 'static,
    {
        self.submit(f).await.map_err(|_| LedgerError::WriterGone)?
    }
}

fn run(conn: Connection, queue: mpsc::Receiver<Job>, on_commit: OnCommit) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let started = Instant::now();
        commit_batch(&conn, batch);
        on_commit(started.elapsed());
    }
}

fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

fn commit_batch(conn: &Connection, batch: Vec<Job>) {
    if let Err(e) = exec(conn, "BEGIN IMMEDIATE") {
        let e = Arc::new(e);
        for job in batch {
            let (_, reply) = job(None);
            reply(Err(e.clone()));
        }
        return;
    }
    let mut replies = Vec::with_capacity(batch.len());
    // Set when a savepoint could not be closed: the transaction may then hold
    // a failed job's writes, so nothing in it may commit.
    let mut poisoned: Option<rusqlite::Error> = None;
    for job in batch {
        if poisoned.is_some() {
            replies.push(job(None).1);
            continue;
        }
        if let Err(e) = exec(conn, "SAVEPOINT job") {
            poisoned = Some(e);
            replies.push(job(None).1);
            continue;
        }
        let (ok, reply) = job(Some(conn));
        let closed = if ok {
            exec(conn, "RELEASE job")
        } else {
            exec(conn, "ROLLBACK TO job").and_then(|_| exec(conn, "RELEASE job"))
        };
        if let Err(e) = closed {
            poisoned = Some(e);
        }
        replies.push(reply);
    }
    let commit: Outcome = match poisoned {
        Some(e) => Err(Arc::new(e)),
        None => exec(conn, "COMMIT").map_err(Arc::new),
    };
    if commit.is_err() {
        let _ = exec(conn, "ROLLBACK");
    }
    for reply in replies {
        reply(commit.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::site::Site;
    use std::path::Path;

    #[test]
    fn a_commit_that_fails_keeps_the_sqlite_error_and_writes_nothing() {
        let ledger = Ledger::open(Path::new(":memory:"), Site::default()).expect("ledger");
        let writer = Writer::spawn(ledger).expect("writer");
        // A deferred foreign key is checked only at COMMIT: the job and its
        // savepoint succeed, then the commit fails.
        let result = writer.handle().call(|conn| {
            conn.execute_batch(
                "CREATE TABLE parent (id INTEGER PRIMARY KEY);
                 CREATE TABLE child (parent INTEGER
                     REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED);
                 INSERT INTO child VALUES (42);",
            )?;
            Ok(())
        });
        let e = result.expect_err("the commit fails");
        let LedgerError::At { ledger, source } = &e else {
            panic!("the file is not named: {e:?}");
        };
        assert_eq!(ledger, Path::new(":memory:"));
        let LedgerError::CommitFailed(sqlite) = &**source else {
            panic!("not a commit failure: {e:?}");
        };
        assert_eq!(
            sqlite.sqlite().sqlite_error_code(),
            Some(rusqlite::ErrorCode::ConstraintViolation)
        );
        // SQLite's message once, not its code's text again.
        assert_eq!(
            crate::error_chain(&e),
            "ledger :memory:: commit failed, nothing in this batch was written: FOREIGN KEY constraint failed"
        );
        let tables: i64 = writer
            .handle()
            .call(|conn| {
                Ok(conn.query_row(
                    "SELECT count(*) FROM sqlite_master WHERE name IN ('parent', 'child')",
                    [],
                    |r| r.get(0),
                )?)
            })
            .expect("the writer still works");
        assert_eq!(tables, 0, "the failed batch wrote nothing");
        writer.join();
    }

    #[test]
    fn a_refused_writer_runs_no_job_and_names_the_damage() {
        let ledger = Ledger::open(Path::new(":memory:"), Site::default()).expect("ledger");
        let writer = Writer::spawn(ledger).expect("writer");
        let other = writer.handle();
        assert!(writer.handle().refuse("page 3: bad header".into()));
        assert!(!other.refuse("a later report".into()), "the first stays");
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = ran.clone();
        let e = other
            .call(move |_| {
                seen.store(true, std::sync::atomic::Ordering::SeqCst);
                Ok(())
            })
            .expect_err("refused");
        assert!(
            !ran.load(std::sync::atomic::Ordering::SeqCst),
            "the job ran"
        );
        assert!(e.is_file_failure());
        assert_eq!(
            crate::error_chain(&e),
            "ledger :memory:: the file is damaged (SQLite quick_check: page 3: bad header); restore a backup"
        );
        drop(other);
        writer.join();
    }
}
