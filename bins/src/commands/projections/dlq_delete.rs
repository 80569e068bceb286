//! `rillflow projections dlq-delete NAME --id ID`

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
    .delete_dead_letter(name, args.id)
    .await?;
    println!("deleted dead letter {} of {name}", args.id);
    Ok(())
}
