//! `rillflow projections reset-checkpoint NAME POS`

use anyhow::Result;
use rillflow_adapters::projection::ProjectionCatalog;
use rillflow_core::tenant::TenantOperation;

use super::names;
use crate::cli::ResetCheckpointArgs;
use crate::commands::database;

pub async fn run(args: ResetCheckpointArgs) -> Result<()> {
    let name = names::check(&args.name)?;
    let cursor = ProjectionCatalog::new(
        database::open(&args.db, TenantOperation::WholeLog)
            .await?
            .pool,
    )
    .reset_checkpoint(name, args.position)
    .await?;
    println!(
        "{name} continues after position {} (transaction {}); events after it will be applied again",
        cursor.position, cursor.tx_id
    );
    Ok(())
}
