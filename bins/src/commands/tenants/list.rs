//! `rillflow tenants list [--output table|json]`

use anyhow::Result;
use rillflow_adapters::secrets::redact_secrets;
use rillflow_adapters::{Migrations, PoolConfig};
use serde_json::{json, Value};
use sqlx::PgPool;

use super::targets::{every_target, Failures, Target};
use crate::cli::{OutputFormat, TenantListArgs};
use crate::commands::database;

pub async fn run(args: TenantListArgs) -> Result<()> {
    if args.db.tenant.is_some() {
        anyhow::bail!("tenants list covers every tenant; drop --tenant");
    }
    let base = database::open_base(&args.db).await?;
    let mut rows = Vec::new();
    let mut failures = Failures::default();
    let targets = every_target(&base, true, &PoolConfig::default()).await?;
    let tenants = targets.len() - 1;
    for target in &targets {
        let Some(info) = &target.tenant else {
            continue;
        };
        // A database tenant's URL never holds a password (sql/0021 checks);
        // redacted anyway, as everything printed is.
        let mut row = json!({
            "name": info.name,
            "mode": info.mode,
            "url": info.url.as_deref().map(redact_secrets),
            "created_at": info.created_at.to_rfc3339(),
            "streams": null,
            "pending_migrations": null,
        });
        // A tenant whose database is down is still listed, without figures.
        if let Some(pool) = failures.pool(target) {
            match figures(target, &pool).await {
                Ok((streams, pending)) => {
                    row["streams"] = json!(streams);
                    row["pending_migrations"] = json!(pending);
                }
                Err(e) => row["error"] = json!(failures.record(target, &e)),
            }
        } else if let Err(e) = &target.pool {
            row["error"] = json!(e.to_string());
        }
        rows.push(row);
    }
    match args.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
        OutputFormat::Table => print_table(&rows),
    }
    failures.finish(tenants)
}

/// The tenant's stream count and pending migrations.
async fn figures(target: &Target, pool: &PgPool) -> Result<(i64, usize)> {
    // A conjoined tenant's streams through its index; a schema or
    // database tenant's are its whole table. Two statements, not
    // `$1 IS NULL OR tenant_id = $1`, which a generic plan cannot use as an
    // index condition.
    let streams: i64 = match &target.conjoined {
        Some(t) => {
            sqlx::query_scalar("SELECT count(*) FROM rf_streams WHERE tenant_id = $1")
                .bind(t.as_str())
                .fetch_one(pool)
                .await?
        }
        None => {
            sqlx::query_scalar("SELECT count(*) FROM rf_streams")
                .fetch_one(pool)
                .await?
        }
    };
    let pending = Migrations::status(pool)
        .await?
        .iter()
        .filter(|m| !m.applied)
        .count();
    Ok((streams, pending))
}

fn print_table(rows: &[Value]) {
    if rows.is_empty() {
        println!("(no tenants)");
        return;
    }
    println!(
        "{:<24} {:<10} {:>10} {:>8}  {:<25}  DATABASE",
        "TENANT", "MODE", "STREAMS", "PENDING", "CREATED"
    );
    let figure = |v: &Value| v.as_i64().map_or_else(|| "-".to_owned(), |n| n.to_string());
    for r in rows {
        println!(
            "{:<24} {:<10} {:>10} {:>8}  {:<25}  {}",
            r["name"].as_str().unwrap_or_default(),
            r["mode"].as_str().unwrap_or_default(),
            figure(&r["streams"]),
            figure(&r["pending_migrations"]),
            r["created_at"].as_str().unwrap_or_default(),
            r["url"].as_str().unwrap_or("-"),
        );
    }
}
