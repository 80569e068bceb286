//! `rillflow tenants remove NAME [--drop-schema]`
//!
//! A database tenant is only unregistered: its database, and whatever is
//! in it, stays for the operator.

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
        RemoveOutcome::RemovedDatabaseKept => "removed; its database is kept as it is",
    };
    println!("tenant {} {what}", args.name);
    Ok(())
}
