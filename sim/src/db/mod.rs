//! The `db` host: serves the model over turmoil's TCP, one JSON line per
//! request and reply, and does what spans time or connections (lock waits,
//! lease sessions, notices, transactions bound to a connection).

pub mod host;
pub mod sessions;

pub use host::{serve, SessionTimeouts, DB_PORT};
