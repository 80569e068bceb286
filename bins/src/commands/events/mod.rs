//! `rillflow events ...`

pub mod append;
pub mod read;
pub mod tail;
