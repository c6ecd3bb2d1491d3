//! Serial card readers.
//!
//! - [`decode`]: pure frame decoders (RDM6300, ID-12, hex and decimal lines).
//! - [`port`]: one thread per reader: open, read, reopen with backoff.
//! - [`taps`]: what a tap does: held release at a printer, a session at a room.

pub mod decode;
pub mod port;
pub mod taps;
