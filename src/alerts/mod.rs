//! Alerts: telling a person when something needs one (a printer or reader
//! down for a while, grants syncs failing, a failed backup, a job set aside
//! for review, a task that keeps restarting).
//!
//! - [`rules`]: the pure core. From the observer's snapshots and notices and
//!   the time, which alerts to send: each condition once until it clears,
//!   at most once per `repeat`, a resolved alert only after a firing one.
//! - [`alert`]: one alert and its JSON.
//! - [`command`], [`webhook`]: the IO. The JSON on a command's stdin (killed
//!   at the time limit) and POSTed to a webhook; a failure is reported to
//!   the caller, never retried.

pub mod alert;
pub mod command;
pub mod rules;
pub mod webhook;

pub use alert::{Alert, Kind, Origin, State};
pub use rules::{Alerter, Rules};
