//! `rillflow projections handler-role create ROLE --projection NAME... [--read-models SCHEMA]`

use std::collections::BTreeSet;

use anyhow::{anyhow, Result};
use rillflow_adapters::projection::HandlerRoles;
use rillflow_core::tenant::TenantOperation;
use rillflow_core::Identifier;

use super::names;
use crate::cli::HandlerRoleCreateArgs;
use crate::commands::database;

pub async fn run(args: HandlerRoleCreateArgs) -> Result<()> {
    let role = Identifier::parse(&args.role).map_err(|e| anyhow!("invalid role name: {e}"))?;
    let read_models = match &args.read_models {
        Some(schema) => {
            Identifier::parse(schema).map_err(|e| anyhow!("invalid --read-models: {e}"))?
        }
        None => role.clone(),
    };
    let mut projections = BTreeSet::new();
    for name in &args.projections {
        projections.insert(names::check(name)?.to_owned());
    }
    let projections: Vec<String> = projections.into_iter().collect();
    let pool = database::open(&args.db, TenantOperation::WholeLog)
        .await?
        .pool;
    let assigned = HandlerRoles::new(pool)
        .assign(&role, &read_models, &projections)
        .await?;
    println!(
        "role {} runs {}; its read models live in schema {}",
        assigned.role,
        assigned.projections.join(", "),
        assigned.read_models
    );
    println!(
        "start the daemon with --handler-database-url postgres://{}@HOST/DB (a role created here has no password: set one, or let pg_hba.conf decide)",
        assigned.role
    );
    Ok(())
}
