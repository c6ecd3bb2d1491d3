//! Printers: IPP transport, what a job costs, recording it in the ledger,
//! and the per-printer polling task.

pub mod analyse;
pub mod charge;
pub mod client;
pub mod document;
pub mod jobs;
pub mod listing;
pub mod paging;
pub mod plausible;
pub mod poller;
pub mod release;
pub mod requests;
pub mod split;
pub mod state;
