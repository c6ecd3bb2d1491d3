//! `tallyd run` as a child process against real peers (ippeveprinter, a
//! private cupsd, misbehaving servers, `socat` ptys as card readers): what it
//! charges ([`print`]), broken printers ([`faults`]), signals ([`signals`]),
//! job lists read a page at a time and jobs whose record cannot be read
//! ([`paging`]), card readers and held release ([`readers`]), room sessions
//! across restarts ([`sessions`]), a panicking task restarted
//! ([`supervision`]), one daemon per ledger and its file modes ([`files`]),
//! jobs whose counts make no sense set aside for review ([`review`]), a wrong
//! wall clock ([`clock`]), a printer-sent print user that would forge a log
//! line or a table row ([`forged`]), `ipps://` printers with private
//! certificates ([`tls`]), backups and restore ([`backup`]), and SIGKILL
//! at random moments ([`crash`], [`release_crash`]); team members drawing
//! on their pool at the printer and the door ([`teams`]); alerts to a
//! command and an HTTPS webhook ([`alerts`]); the `[http]` listener's
//! `/metrics` and `/healthz` ([`metrics`]).

mod alerts;
mod analysis;
mod backup;
mod clock;
mod crash;
mod faults;
mod files;
mod follow_me;
mod forged;
mod metrics;
mod paging;
mod print;
mod readers;
mod release_blocked;
mod release_crash;
mod review;
mod sessions;
mod signals;
mod supervision;
mod teams;
mod tls;
