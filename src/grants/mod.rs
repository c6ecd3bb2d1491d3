//! The central grants file: plans, products and account grants, synced into
//! the ledger by the rules of `design.md`.
//!
//! - [`model`]: the file's format (TOML or JSON) and its validation.
//! - [`periods`]: renewal periods anchored on the subscription start.
//! - [`reconcile`]: the pure plan of what a sync issues, adjusts, voids, closes.
//! - [`sync`]: reading the ledger's snapshot and writing a plan.
//! - [`source`]: reading a path or fetching a URL (conditional GET).
//! - [`teams_check`]: whether the ledger's teams are the catalog's
//!   (`tallyd check-ledger`).
//!
//! A sync parses and validates the whole file first; a file with any problem
//! changes nothing. A good file is applied in one transaction.

pub mod model;
pub mod periods;
pub mod reconcile;
pub mod source;
pub mod sync;
pub mod teams_check;

use crate::config::ConfigError;
use crate::error_chain;
use crate::ledger::sync_state::{self, LastGood};
use crate::ledger::{Result, Ts};
use chrono_tz::Tz;
use model::Catalog;
use reconcile::{Counts, SyncPlan};
use rusqlite::Connection;
use sha2::{Digest, Sha256};
use source::{FetchError, Validators};

/// The hex SHA-256 of a grants file, logged with every sync.
pub fn digest(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Parses and validates a grants file (nothing is written).
pub fn parse(name: &str, text: &str) -> std::result::Result<Catalog, ConfigError> {
    model::parse(text, name)
}

/// What a sync did (or, dry, would do).
#[derive(Debug, Clone)]
pub struct SyncReport {
    pub source: String,
    pub digest: String,
    pub counts: Counts,
    pub plan: SyncPlan,
    pub dry_run: bool,
    /// Cards enrolled in the console that this file now gives to a member
    /// (the file wins), each reported once.
    pub overridden: Vec<crate::ledger::enrolments::Overridden>,
}

/// Reconciles a validated catalog into the ledger, in the caller's
/// transaction, and remembers it as the last good grants file. With
/// `dry_run`, computes the plan and writes nothing.
#[allow(clippy::too_many_arguments)]
pub fn apply(
    conn: &Connection,
    tz: Tz,
    catalog: &Catalog,
    source: &str,
    text: &str,
    validators: &Validators,
    now: Ts,
    dry_run: bool,
) -> Result<SyncReport> {
    let plan = sync::plan(conn, catalog, tz, now)?;
    let digest = digest(text);
    let mut overridden = Vec::new();
    let counts = if dry_run {
        plan.counts()
    } else {
        let counts = sync::apply(conn, catalog, &plan, now)?;
        let last = LastGood {
            source: source.to_string(),
            digest: digest.clone(),
            text: text.to_string(),
            etag: validators.etag.clone(),
            last_modified: validators.last_modified.clone(),
            synced_at: now,
        };
        sync_state::save(conn, &last)?;
        overridden = crate::ledger::enrolments::note_overridden(conn, now)?;
        counts
    };
    Ok(SyncReport {
        source: source.to_string(),
        digest,
        counts,
        plan,
        dry_run,
        overridden,
    })
}

/// Logs, once each, the console enrolments a grants file overrode.
pub fn log_overridden(report: &SyncReport) {
    for o in &report.overridden {
        let e = &o.enrolment;
        tracing::warn!(card = %crate::ids::mask(&e.card), enrolled_to = %e.member,
            enrolled_by = %e.manager, file_member = %o.file_member,
            "card enrolled in the console is given to another member by the grants file; the grants file wins");
    }
}

/// The last good grants file applied from `source`: its text and the
/// validators for a conditional GET.
pub fn last_good(conn: &Connection, source: &str) -> Result<Option<(String, Validators)>> {
    Ok(sync_state::load(conn, source)?.map(|last| {
        let validators = Validators {
            etag: last.etag,
            last_modified: last.last_modified,
        };
        (last.text, validators)
    }))
}

/// A grants file fetched and validated, ready for [`apply`].
pub struct Fetched {
    pub name: String,
    pub text: String,
    pub validators: Validators,
    pub catalog: Catalog,
}

/// Why a grants file was not applied. None of them changes anything, and
/// each one's text ends by saying that the last good grants stay in force.
///
/// Each keeps its cause as its source, and its text holds that cause's whole
/// chain before the ending, so the line reads in order whether it is printed
/// alone or through [`error_chain`] (which does not repeat it).
#[derive(Debug, thiserror::Error)]
pub enum GrantsError {
    /// Reading or downloading failed, every try.
    #[error("{}; the last good grants stay in force", error_chain(.0))]
    Fetch(#[source] FetchError),
    /// The file has a problem (its file, line and field are in the error).
    #[error("{0}; nothing changed, the last good grants stay in force")]
    Invalid(#[source] ConfigError),
    /// A 304 answer, but no earlier file from this source is stored.
    #[error("the server said not modified, but no earlier grants file is stored")]
    NotModifiedWithoutCopy,
}

/// Fetches `src` (a conditional GET against `last`, the last good file from
/// this source) with 3 tries, reaching a URL as `access` says, and
/// validates it.
pub async fn fetch(
    src: &source::Source,
    access: source::Access<'_>,
    last: Option<(String, Validators)>,
    timeout: std::time::Duration,
) -> std::result::Result<Fetched, GrantsError> {
    let validators = last.as_ref().map(|(_, v)| v.clone()).unwrap_or_default();
    let fetched = source::fetch_with_retry(
        src,
        access,
        &validators,
        timeout,
        3,
        std::time::Duration::from_secs(1),
    )
    .await
    .map_err(GrantsError::Fetch)?;
    let (text, validators) = match fetched {
        source::Fetched::Body { text, validators } => (text, validators),
        source::Fetched::NotModified => last.ok_or(GrantsError::NotModifiedWithoutCopy)?,
    };
    let name = src.name();
    let catalog = parse(&name, &text).map_err(GrantsError::Invalid)?;
    Ok(Fetched {
        name,
        text,
        validators,
        catalog,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use source::Source;
    use std::error::Error as _;
    use std::time::Duration;

    #[tokio::test]
    async fn a_missing_file_keeps_its_io_error_and_says_the_last_grants_stay() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("grants.toml");
        let e = fetch(
            &Source::Path(path.clone()),
            source::Access::default(),
            None,
            Duration::from_secs(1),
        )
        .await
        .err()
        .expect("no such file");
        let GrantsError::Fetch(FetchError::Read { source, .. }) = &e else {
            panic!("not a read error: {e:?}");
        };
        assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        assert!(e.source().is_some());
        let line = error_chain(&e);
        assert_eq!(line, e.to_string(), "each cause said once");
        assert!(
            line.starts_with(&format!("cannot read {}: ", path.display())),
            "{line}"
        );
        assert!(
            line.ends_with("; the last good grants stay in force"),
            "{line}"
        );
    }
}
