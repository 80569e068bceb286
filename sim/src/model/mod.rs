//! The model of what the daemons and clients need from Postgres, by domain:
//! the hot/cold lease and its sessions, the event log with its tiers and
//! the projection over it, partition ownership, and a hot standby of it all. [`ModelDb`] holds one of
//! each; it lives outside the database host, so a host restart keeps what
//! was committed, as a real database does. Nothing here does I/O: the
//! database host applies requests to it at its own clock's time.

pub mod db;
pub mod lease;
pub mod log;
pub mod ownership;
pub mod standby;

pub use db::ModelDb;
