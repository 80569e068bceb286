//! `rillflow projections metrics NAME`: the projection's Prometheus series,
//! as the daemon's /metrics would serve them.

use anyhow::Result;
use rillflow_adapters::health::metrics;
use rillflow_adapters::projection::ProjectionCatalog;
use rillflow_core::tenant::TenantOperation;

use super::names;
use crate::cli::NameArgs;
use crate::commands::database;

pub async fn run(args: NameArgs) -> Result<()> {
    let name = names::check(&args.name)?;
    let status = ProjectionCatalog::new(
        database::open(&args.db, TenantOperation::WholeLog)
            .await?
            .pool,
    )
    .status(name)
    .await?;
    print!(
        "{}",
        metrics::render(&[], &[status], None, Vec::new(), None)
    );
    Ok(())
}
