//! `rillflow tenants list [--output table|json]`

use anyhow::Result;
use rillflow_adapters::Migrations;
use serde_json::json;

use super::targets::every_target;
use crate::cli::{OutputFormat, TenantListArgs};
use crate::commands::database;

pub async fn run(args: TenantListArgs) -> Result<()> {
    if args.db.tenant.is_some() {
        anyhow::bail!("tenants list covers every tenant; drop --tenant");
    }
    let base = database::open_base(&args.db).await?;
    let mut rows = Vec::new();
    for target in every_target(&base, true).await? {
        let Some(info) = &target.tenant else {
            continue;
        };
        // A conjoined tenant's streams through its index; a schema
        // tenant's are its whole table. Two statements, not
        // `$1 IS NULL OR tenant_id = $1`, which a generic plan cannot use
        // as an index condition.
        let streams: i64 = match &target.conjoined {
            Some(t) => {
                sqlx::query_scalar("SELECT count(*) FROM rf_streams WHERE tenant_id = $1")
                    .bind(t.as_str())
                    .fetch_one(&target.pool)
                    .await?
            }
            None => {
                sqlx::query_scalar("SELECT count(*) FROM rf_streams")
                    .fetch_one(&target.pool)
                    .await?
            }
        };
        let pending = Migrations::status(&target.pool)
            .await?
            .iter()
            .filter(|m| !m.applied)
            .count();
        rows.push(json!({
            "name": info.name,
            "mode": info.mode,
            "created_at": info.created_at.to_rfc3339(),
            "streams": streams,
            "pending_migrations": pending,
        }));
    }
    match args.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
        OutputFormat::Table => {
            if rows.is_empty() {
                println!("(no tenants)");
                return Ok(());
            }
            println!(
                "{:<24} {:<10} {:>10} {:>8}  CREATED",
                "TENANT", "MODE", "STREAMS", "PENDING"
            );
            for r in &rows {
                println!(
                    "{:<24} {:<10} {:>10} {:>8}  {}",
                    r["name"].as_str().unwrap_or_default(),
                    r["mode"].as_str().unwrap_or_default(),
                    r["streams"].as_i64().unwrap_or_default(),
                    r["pending_migrations"].as_u64().unwrap_or_default(),
                    r["created_at"].as_str().unwrap_or_default()
                );
            }
        }
    }
    Ok(())
}
