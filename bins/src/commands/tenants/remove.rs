//! `rillflow tenants remove NAME [--drop-schema]`

use anyhow::Result;
use rillflow_adapters::tenant::{RemoveOutcome, TenantRegistry};

use crate::cli::TenantRemoveArgs;
use crate::commands::database;

pub async fn run(args: TenantRemoveArgs) -> Result<()> {
    if args.db.tenant.is_some() {
        anyhow::bail!("tenants remove takes the tenant as NAME, not --tenant");
    }
    let pool = database::open_base(&args.db).await?;
    let outcome = TenantRegistry::new(pool)
        .remove(&args.name, args.drop_schema)
        .await?;
    let what = match outcome {
        RemoveOutcome::Removed => "removed",
        RemoveOutcome::RemovedWithSchema => "removed; its schema is dropped",
    };
    println!("tenant {} {what}", args.name);
    Ok(())
}
