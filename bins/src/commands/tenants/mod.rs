//! `rillflow tenants ...`, one file per subcommand, and the walk over every
//! tenant that `--all-tenants` commands share.

pub mod add;
pub mod list;
pub mod remove;
pub mod targets;
