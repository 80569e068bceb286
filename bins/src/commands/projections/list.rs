//! `rillflow projections list [--output table|json]`

use anyhow::Result;
use rillflow_adapters::projection::{ProjectionCatalog, ProjectionStatus};
use rillflow_core::tenant::TenantOperation;

use crate::cli::{ListArgs, OutputFormat};
use crate::commands::database;

pub async fn run(args: ListArgs) -> Result<()> {
    let catalog = ProjectionCatalog::new(
        database::open(&args.db, TenantOperation::WholeLog)
            .await?
            .pool,
    );
    let list = catalog.list().await?;
    match args.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&list)?),
        OutputFormat::Table => print_table(&list),
    }
    Ok(())
}

fn print_table(list: &[ProjectionStatus]) {
    if list.is_empty() {
        println!("(no projections)");
        return;
    }
    println!(
        "{:<32} {:<8} {:>5} {:>12} {:>10} {:>12} {:>7} {:>5}",
        "NAME", "STATE", "PARTS", "POSITION", "LAG", "PROCESSED", "ERRORS", "DLQ"
    );
    for p in list {
        println!(
            "{:<32} {:<8} {:>5} {:>12} {:>10} {:>12} {:>7} {:>5}",
            p.name,
            state(p),
            p.total_partitions,
            p.min_position(),
            lag_text(p.lag(), p.lag_exact()),
            p.processed_total(),
            p.errors_total(),
            p.dead_letters
        );
    }
}

/// A lag as tables show it: `~` marks one estimated past the exact cap.
pub fn lag_text(lag: i64, exact: bool) -> String {
    if exact {
        lag.to_string()
    } else {
        format!("~{lag}")
    }
}

/// `running`, `paused` (by an operator) or `stopped` (by the error policy).
pub fn state(p: &ProjectionStatus) -> &'static str {
    match (p.paused, &p.stopped_reason) {
        (false, _) => "running",
        (true, None) => "paused",
        (true, Some(_)) => "stopped",
    }
}
