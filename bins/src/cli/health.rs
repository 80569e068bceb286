//! `rillflow health ...`: how healthy the clusters are, from the database.

use clap::{Args, Subcommand};

use super::{DatabaseArgs, OutputFormat};

#[derive(Debug, Subcommand)]
pub enum HealthCommand {
    /// Each hot/cold cluster's 0–100 health score and what lowers it.
    Score(HealthScoreArgs),
}

#[derive(Debug, Args)]
pub struct HealthScoreArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// Only this cluster.
    #[arg(long, value_name = "C")]
    pub cluster: Option<String>,
    /// Exit with status 3 when a score is below this (for scripts and probes).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(0..=100))]
    pub fail_below: Option<u8>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}
