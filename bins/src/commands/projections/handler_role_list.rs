//! `rillflow projections handler-role list [--output table|json]`

use anyhow::Result;
use rillflow_adapters::projection::HandlerRoles;
use rillflow_core::tenant::TenantOperation;
use serde_json::json;

use crate::cli::{HandlerRoleListArgs, OutputFormat};
use crate::commands::database;

pub async fn run(args: HandlerRoleListArgs) -> Result<()> {
    let pool = database::open(&args.db, TenantOperation::WholeLog)
        .await?
        .pool;
    let roles = HandlerRoles::new(pool).list().await?;
    match args.output {
        OutputFormat::Json => {
            let rows: Vec<_> = roles
                .iter()
                .map(|r| {
                    json!({
                        "role": r.role,
                        "read_models": r.read_models,
                        "projections": r.projections,
                    })
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&rows)?);
        }
        OutputFormat::Table if roles.is_empty() => {
            println!("(no handler roles: every declared handler runs with the daemon's own rights)")
        }
        OutputFormat::Table => {
            println!("{:<24} {:<24} PROJECTIONS", "ROLE", "READ MODELS");
            for r in &roles {
                println!(
                    "{:<24} {:<24} {}",
                    r.role,
                    r.read_models,
                    r.projections.join(", ")
                );
            }
        }
    }
    Ok(())
}
