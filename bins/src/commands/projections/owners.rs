//! `rillflow projections owners NAME [--output table|json]`

use rillflow_core::tenant::TenantOperation;
use std::time::Duration;

use anyhow::Result;
use rillflow_adapters::ownership::PgOwnershipStore;
use rillflow_adapters::projection::ProjectionCatalog;
use serde_json::json;

use super::names;
use crate::cli::{NameOutputArgs, OutputFormat};
use crate::commands::database;

pub async fn run(args: NameOutputArgs) -> Result<()> {
    let name = names::check(&args.name)?;
    let pool = database::open(&args.db, TenantOperation::WholeLog)
        .await?
        .pool;
    // Fails clearly for an unknown projection.
    let status = ProjectionCatalog::new(pool.clone()).status(name).await?;
    // Live workers are judged by their own ttl (in the status); the view's
    // ttl bound only matters for its worker list, which is not used here.
    let view = PgOwnershipStore::new(pool)
        .view(name, Duration::from_secs(86_400))
        .await?;
    let o = &status.ownership;
    match args.output {
        OutputFormat::Json => {
            let partitions: Vec<_> = (0..status.total_partitions.max(0) as u32)
                .map(|p| {
                    let h = view.holders.get(&p);
                    json!({
                        "partition": p,
                        "owner": h.map(|h| h.worker.clone()),
                        "epoch": h.map(|h| h.epoch),
                    })
                })
                .collect();
            let out = json!({
                "projection": name,
                "partitions": status.total_partitions,
                "dynamic": o.dynamic,
                "workers": o.workers,
                "owners": partitions,
                "unowned_partitions": o.unowned_partitions,
                "rebalances_total": o.rebalances_total,
                "unowned_seconds_total": o.unowned_seconds_total,
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        OutputFormat::Table => {
            if !o.dynamic {
                println!("{name}: {} static partition(s); no worker owns partitions through leases (run-loop --partitions auto)", status.total_partitions);
                return Ok(());
            }
            println!(
                "{name}: {} partition(s), {} live worker(s), {} unowned, {} grant(s) so far",
                status.total_partitions,
                o.workers.len(),
                o.unowned_partitions,
                o.rebalances_total
            );
            println!("{:<10} {:<32} {:>8}", "PARTITION", "OWNER", "EPOCH");
            for p in 0..status.total_partitions.max(0) as u32 {
                let (owner, epoch) = view
                    .holders
                    .get(&p)
                    .map(|h| (h.worker.as_str(), h.epoch.to_string()))
                    .unwrap_or(("-", "-".to_owned()));
                println!("{p:<10} {owner:<32} {epoch:>8}");
            }
        }
    }
    Ok(())
}
