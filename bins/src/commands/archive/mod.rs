//! `rillflow archive ...`, one file per subcommand.

pub mod backend;
pub mod mark;
pub mod move_events;
pub mod partition;
pub mod reactivate;
pub mod redirect;
pub mod status;
