//! The archive scenario's clients: writers with expected versions and
//! keys, the archivist, the mover, and the ledger of what they were told,
//! which the archive checks compare the store with.

pub mod append_attempt;
pub mod archivist;
pub mod ledger;
pub mod mover;
pub mod writer;
