//! `rillflow projections repartition NAME --partitions N`

use rillflow_core::tenant::TenantOperation;
use std::time::Duration;

use anyhow::{Context, Result};
use rillflow_adapters::ownership::Repartitioner;
use rillflow_core::PartitionSpec;

use super::names;
use crate::cli::{OutputFormat, RepartitionArgs};
use crate::commands::database;

pub async fn run(args: RepartitionArgs) -> Result<()> {
    let name = names::check(&args.name)?;
    // Checked before the database is touched.
    let to = PartitionSpec::new(0, args.partitions)
        .context("invalid --partitions")?
        .total();
    let pool = database::open(&args.db, TenantOperation::WholeLog)
        .await?
        .pool;
    let report = Repartitioner::new(pool, Duration::from_secs(args.wait_secs))
        .run(name, to)
        .await?;
    match args.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        OutputFormat::Table if !report.changed => {
            println!("{name} already has {to} partition(s); nothing changed")
        }
        OutputFormat::Table => {
            println!(
                "{name}: {} -> {} partitions; {} lease(s) freed for workers to re-claim, {} dead letter(s) re-keyed",
                report.from, report.to, report.leases_freed, report.dead_letters_rekeyed
            );
            for v in &report.versions {
                println!(
                    "  version {}: new partitions start at {} carrying {} layer(s) of earlier checkpoints",
                    v.version, v.start, v.layers
                );
            }
        }
    }
    Ok(())
}
