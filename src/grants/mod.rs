//! The central grants file: plans, products and account grants, synced into
//! the ledger by the rules of `design.md`.
//!
//! - [`model`]: the file's format (TOML or JSON) and its validation.
//! - [`periods`]: renewal periods anchored on the subscription start.

pub mod model;
pub mod periods;
