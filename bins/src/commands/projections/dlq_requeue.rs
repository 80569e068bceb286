//! `rillflow projections dlq-requeue NAME --id ID`

use anyhow::Result;
use rillflow_adapters::projection::ProjectionCatalog;
use rillflow_core::tenant::TenantOperation;

use super::names;
use crate::cli::DlqIdArgs;
use crate::commands::database;

pub async fn run(args: DlqIdArgs) -> Result<()> {
    let name = names::check(&args.name)?;
    ProjectionCatalog::new(
        database::open(&args.db, TenantOperation::WholeLog)
            .await?
            .pool,
    )
    .requeue(name, args.id)
    .await?;
    println!(
        "requeued dead letter {} of {name}; the next batch of its partition applies it",
        args.id
    );
    Ok(())
}
