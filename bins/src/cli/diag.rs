//! `rillflow diag ...`: what support needs, in one file.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::DatabaseArgs;

#[derive(Debug, Subcommand)]
pub enum DiagCommand {
    /// Write one JSON document with versions, configuration (secrets
    /// redacted), cluster topology and epochs, projection checkpoints, lag
    /// and ownership, dead letters, archive status and recent errors.
    Bundle(DiagBundleArgs),
}

#[derive(Debug, Args)]
pub struct DiagBundleArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// Write the bundle here instead of to stdout.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}
