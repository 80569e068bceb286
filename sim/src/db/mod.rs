//! The `db` host: serves the model over turmoil's TCP, one JSON line per
//! request and reply, and does what spans time or connections (lock waits,
//! lease sessions, notices, transactions bound to a connection). `host.rs`
//! routes each request to its domain's handler.

pub mod host;
mod lease;
mod listeners;
mod locks;
mod ownership;
pub mod sessions;

pub use host::{serve, SessionTimeouts, DB_PORT};
