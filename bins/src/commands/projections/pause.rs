//! `rillflow projections pause NAME`

use anyhow::Result;
use rillflow_adapters::projection::ProjectionCatalog;
use rillflow_core::tenant::TenantOperation;

use super::names;
use crate::cli::NameArgs;
use crate::commands::database;

pub async fn run(args: NameArgs) -> Result<()> {
    let name = names::check(&args.name)?;
    ProjectionCatalog::new(
        database::open(&args.db, TenantOperation::WholeLog)
            .await?
            .pool,
    )
    .pause(name)
    .await?;
    println!("paused {name}; its workers finish their current batch and then leave it alone");
    Ok(())
}
