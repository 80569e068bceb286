//! `rillflow projections dlq-list NAME [--limit N] [--output table|json]`

use anyhow::Result;
use rillflow_adapters::projection::ProjectionCatalog;
use rillflow_core::tenant::TenantOperation;

use super::names;
use crate::cli::{DlqListArgs, OutputFormat};
use crate::commands::database;

pub async fn run(args: DlqListArgs) -> Result<()> {
    let name = names::check(&args.name)?;
    let letters = ProjectionCatalog::new(
        database::open(&args.db, TenantOperation::WholeLog)
            .await?
            .pool,
    )
    .dead_letters(name, args.limit)
    .await?;
    match args.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&letters)?),
        OutputFormat::Table if letters.is_empty() => println!("(no dead letters)"),
        OutputFormat::Table => {
            println!(
                "{:>8} {:>4} {:>12} {:<36} {:>7} {:<24} {:>8} {:<8} ERROR",
                "ID", "PART", "POSITION", "STREAM", "VERSION", "TYPE", "ATTEMPTS", "STATUS"
            );
            for d in letters {
                println!(
                    "{:>8} {:>4} {:>12} {:<36} {:>7} {:<24} {:>8} {:<8} {}",
                    d.id,
                    d.partition_key,
                    d.position,
                    d.stream_id,
                    d.version,
                    d.event_type,
                    d.attempts,
                    d.status,
                    d.error
                );
            }
        }
    }
    Ok(())
}
