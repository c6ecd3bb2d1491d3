//! Serial card readers.
//!
//! - [`decode`]: pure frame decoders (RDM6300, ID-12, hex and decimal lines).
//! - [`port`]: one thread per reader: open, read, reopen with backoff.

pub mod decode;
pub mod port;
