//! `rillflow projections status NAME [--output table|json]`

use anyhow::Result;
use rillflow_adapters::projection::{ProjectionCatalog, ProjectionStatus};
use rillflow_core::tenant::TenantOperation;

use super::{list, names};
use crate::cli::{OutputFormat, StatusArgs};
use crate::commands::{database, read_source};

pub async fn run(args: StatusArgs) -> Result<()> {
    let name = names::check(&args.name)?;
    let scoped = database::open(&args.db, TenantOperation::WholeLog).await?;
    let catalog = ProjectionCatalog::new(scoped.pool.clone());
    let status = catalog.status(name).await?;
    let replica = read_source::lag(&args.read, &scoped).await;
    match args.output {
        OutputFormat::Json => {
            let mut doc = serde_json::to_value(&status)?;
            if let Some(lag) = &replica {
                doc["read_replica"] = read_source::lag_json(lag);
            }
            println!("{}", serde_json::to_string_pretty(&doc)?)
        }
        OutputFormat::Table => {
            print_table(&status);
            if let Some(lag) = &replica {
                println!("  {}", read_source::lag_line(lag));
            }
        }
    }
    Ok(())
}

fn print_table(p: &ProjectionStatus) {
    println!(
        "projection {}: {}, {} partition(s), lag {}, {} dead letter(s)",
        p.name,
        list::state(p),
        p.total_partitions,
        list::lag_text(p.lag(), p.lag_exact()),
        p.dead_letters
    );
    if let Some(reason) = &p.stopped_reason {
        println!("  stopped: {reason}");
    }
    if let Some(v) = p.building_version {
        let lag: i64 = p.building.iter().map(|b| b.lag).sum();
        println!(
            "  readers see version {}; rebuilding version {v} beside it ({lag} events to go)",
            p.active_version
        );
    }
    println!(
        "  {:>4} {:>12} {:>8} {:>12} {:>7} {:>5} {:<16} {:>6} {:<20}",
        "PART", "POSITION", "LAG", "PROCESSED", "ERRORS", "DLQ", "OWNER", "EPOCH", "LAST APPLIED"
    );
    for part in &p.partitions {
        println!(
            "  {:>4} {:>12} {:>8} {:>12} {:>7} {:>5} {:<16} {:>6} {:<20}",
            part.partition,
            part.position,
            list::lag_text(part.lag, part.lag_exact),
            part.processed_total,
            part.errors_total,
            part.dead_lettered_total,
            part.owner_node.as_deref().unwrap_or("-"),
            part.owner_epoch
                .map(|e| e.to_string())
                .unwrap_or_else(|| "-".into()),
            part.last_processed_at
                .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                .unwrap_or_else(|| "-".into()),
        );
        if let Some(pos) = part.retry_position {
            println!(
                "       retrying the event at position {pos} (failed {} time(s))",
                part.retry_attempts
            );
        }
        if let Some(err) = &part.last_error {
            println!("       last error: {err}");
        }
    }
}
