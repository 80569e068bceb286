//! `rillflow tenants add NAME --mode conjoined|schema|database [--url URL]`

use anyhow::Result;
use rillflow_adapters::tenant::{AddOutcome, TenantRegistry};
use rillflow_adapters::PoolConfig;
use rillflow_core::tenant::TenancyMode;

use crate::cli::TenantAddArgs;
use crate::commands::database;

pub async fn run(args: TenantAddArgs) -> Result<()> {
    if args.db.tenant.is_some() {
        anyhow::bail!("tenants add takes the tenant as NAME, not --tenant");
    }
    // The registry lives in the base schema, which tenancy needs migrated.
    let mode = TenancyMode::from(args.mode);
    if args.url.is_some() && mode != TenancyMode::Database {
        anyhow::bail!("--url is for --mode database; a {mode} tenant lives in this database");
    }
    let pool = database::open_base(&args.db).await?;
    let registry = TenantRegistry::new(pool);
    let outcome = match &args.url {
        Some(url) => {
            registry
                .add_database(&args.name, url, &PoolConfig::default())
                .await?
        }
        None => registry.add(&args.name, mode).await?,
    };
    let what = match (outcome, mode) {
        (AddOutcome::Added, TenancyMode::Database) => "registered; its database is migrated",
        (AddOutcome::AlreadyRegistered, TenancyMode::Database) => {
            "already registered; its database is up to date"
        }
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
