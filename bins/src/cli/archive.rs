//! `rillflow archive ...`: hot/cold archiving operations.

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use rillflow_core::archive::{Backend, PartitionMonth, Retention};
use uuid::Uuid;

use super::{DatabaseArgs, OutputFormat};

#[derive(Debug, Subcommand)]
pub enum ArchiveCommand {
    /// Hot and cold streams and events, table sizes, backend, redirect, partitions.
    Status(ArchiveStatusArgs),
    /// Mark a stream archived.
    Mark(MarkArgs),
    /// Make an archived stream hot again (its cold events stay cold).
    Reactivate(StreamArgs),
    /// Move events of archived streams to cold storage.
    Move(MoveArgs),
    /// Turn the redirect of appends to archived streams on or off (dual-table backend).
    Redirect(RedirectArgs),
    /// Show the archive backend, or choose it with --set.
    Backend(BackendArgs),
    /// Create a monthly partition of the hot or cold tier.
    Partition(PartitionArgs),
}

#[derive(Debug, Args)]
pub struct ArchiveStatusArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// The whole base schema, then every tenant on its own.
    #[arg(long, conflicts_with = "tenant")]
    pub all_tenants: bool,
    /// Count every row; without it, figures past 10,000 rows are the
    /// planner's estimates and the command costs the same on any log.
    #[arg(long)]
    pub exact: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct MarkArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// The stream's UUID.
    #[arg(value_name = "STREAM")]
    pub stream: Uuid,
    /// Why it is archived (kept on the stream and on moved events).
    #[arg(long, value_name = "TEXT", value_parser = parse_text)]
    pub reason: String,
    /// Who archived it [default: $USER, else "rillflow"].
    #[arg(long, value_name = "WHO", value_parser = parse_text)]
    pub by: Option<String>,
}

#[derive(Debug, Args)]
pub struct StreamArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// The stream's UUID.
    #[arg(value_name = "STREAM")]
    pub stream: Uuid,
}

#[derive(Debug, Args)]
pub struct MoveArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// Move events created before this instant (RFC 3339, e.g. 2024-01-01T00:00:00Z).
    #[arg(long, value_name = "RFC3339", value_parser = parse_instant)]
    pub before: DateTime<Utc>,
    /// Most events per batch; each batch is one short transaction.
    #[arg(long, value_name = "N", default_value_t = 500, allow_negative_numbers = true,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch_size: u32,
    /// Only this stream.
    #[arg(long, value_name = "UUID")]
    pub stream: Option<Uuid>,
    /// The base schema (every conjoined tenant), then every schema and
    /// database tenant.
    #[arg(long, conflicts_with_all = ["tenant", "stream"])]
    pub all_tenants: bool,
    /// List candidate streams and event counts; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Limit the pace to R events per second.
    #[arg(long, value_name = "R", allow_negative_numbers = true, value_parser = parse_rate)]
    pub max_events_per_sec: Option<f64>,
    /// Output format of the summary (and of the dry run's list).
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct RedirectArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// true: appends to archived streams go to events_archive; false: to events.
    #[arg(long, value_name = "true|false", action = clap::ArgAction::Set)]
    pub enable: bool,
}

#[derive(Debug, Args)]
pub struct BackendArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// dual-table or partitioned.
    #[arg(long, value_name = "BACKEND")]
    pub set: Option<Backend>,
    /// Output format of the current settings (without --set).
    #[arg(long, value_enum, default_value_t = OutputFormat::Table, conflicts_with = "set")]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct PartitionArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// Which tier: hot or cold.
    #[arg(long, value_name = "hot|cold")]
    pub retention: Retention,
    /// First day of the month, YYYY-MM-01.
    #[arg(long, value_name = "YYYY-MM-01")]
    pub month: PartitionMonth,
}

fn parse_instant(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("not an RFC 3339 timestamp such as 2024-01-01T00:00:00Z ({e})"))
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r.is_finite() && r >= 1.0 => Ok(r),
        _ => Err("expected a number of events per second, at least 1".to_owned()),
    }
}

/// Free text stored on the stream: not empty, no control characters that
/// would garble logs and tables.
fn parse_text(s: &str) -> Result<String, String> {
    let trimmed = s.trim();
    if trimmed.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if trimmed.chars().any(char::is_control) {
        return Err("must not contain control characters".to_owned());
    }
    if trimmed.len() > 1000 {
        return Err("must be at most 1000 bytes".to_owned());
    }
    Ok(trimmed.to_owned())
}
