//! `rillflow tenants add NAME --mode conjoined|schema`

use anyhow::Result;
use rillflow_adapters::tenant::{AddOutcome, TenantRegistry};
use rillflow_core::tenant::TenancyMode;

use crate::cli::TenantAddArgs;
use crate::commands::database;

pub async fn run(args: TenantAddArgs) -> Result<()> {
    if args.db.tenant.is_some() {
        anyhow::bail!("tenants add takes the tenant as NAME, not --tenant");
    }
    // The registry lives in the base schema, which tenancy needs migrated.
    let pool = database::open_base(&args.db).await?;
    let mode = TenancyMode::from(args.mode);
    let outcome = TenantRegistry::new(pool).add(&args.name, mode).await?;
    let what = match (outcome, mode) {
        (AddOutcome::Added, TenancyMode::Schema) => {
            "registered; its schema is created and migrated"
        }
        (AddOutcome::Added, TenancyMode::Conjoined) => "registered",
        (AddOutcome::AlreadyRegistered, TenancyMode::Schema) => {
            "already registered; its schema is up to date"
        }
        (AddOutcome::AlreadyRegistered, TenancyMode::Conjoined) => "already registered",
    };
    println!("tenant {} ({mode}) {what}", args.name);
    Ok(())
}
