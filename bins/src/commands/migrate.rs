//! `rillflow migrate [--down N [--force]] [--status] [--tenant T | --all-tenants] [--output table|json]`

use anyhow::{bail, Result};
use rillflow_adapters::tenant::TenantScope;
use rillflow_adapters::Migrations;
use rillflow_core::tenant::TenantOperation;
use serde_json::json;
use sqlx::PgPool;

use super::database;
use super::tenants::targets::{every_target, heading};
use crate::cli::{MigrateArgs, OutputFormat};

pub async fn run(args: MigrateArgs) -> Result<()> {
    let base = database::open_unmigrated(&args.db).await?;
    // Where to work, with a heading each: the base schema, one schema
    // tenant, or (after migrating the base, which holds the registry)
    // every schema tenant too.
    let mut places: Vec<(String, PgPool)> = Vec::new();
    if let Some(name) = &args.db.tenant {
        let scope = TenantScope::resolve(&base, name, TenantOperation::Migrate).await?;
        places.push((format!("tenant {name} (schema)"), scope.pool));
    } else {
        places.push(("base schema".to_owned(), base.clone()));
    }
    if args.all_tenants && !args.status {
        Migrations::apply(&base).await?;
    }
    if args.all_tenants {
        for target in every_target(&base, false).await?.into_iter().skip(1) {
            places.push((heading(&target), target.pool));
        }
    }
    let mut report = Vec::new();
    for (label, pool) in &places {
        report.push(migrate_one(&args, label, pool).await?);
    }
    match args.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        OutputFormat::Table => {
            for (i, entry) in report.iter().enumerate() {
                if places.len() > 1 {
                    if i > 0 {
                        println!();
                    }
                    println!("== {}", places[i].0);
                }
                print_entry(entry);
            }
        }
    }
    Ok(())
}

async fn migrate_one(args: &MigrateArgs, label: &str, pool: &PgPool) -> Result<serde_json::Value> {
    if args.status {
        let list: Vec<_> = Migrations::status(pool)
            .await?
            .into_iter()
            .map(|m| {
                json!({
                    "version": m.version,
                    "name": m.description.replace(' ', "_"),
                    "applied": m.applied,
                })
            })
            .collect();
        return Ok(json!({ "scope": label, "migrations": list }));
    }
    match args.down {
        Some(steps) => {
            if !args.force {
                refuse_loss(pool, steps).await?;
            }
            let reverted = Migrations::revert(pool, steps).await?;
            Ok(json!({ "scope": label, "reverted": reverted }))
        }
        None => {
            let applied = Migrations::apply(pool).await?;
            Ok(json!({ "scope": label, "applied": applied }))
        }
    }
}

/// Fails, naming every table and column that would go with its data, when
/// reverting `steps` migrations would drop data.
async fn refuse_loss(pool: &PgPool, steps: usize) -> Result<()> {
    let lost = Migrations::loss(pool, steps).await?;
    if lost.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = lost.iter().map(ToString::to_string).collect();
    bail!(
        "reverting {steps} migration(s) would drop {}; nothing was reverted (add --force to drop it)",
        list.join(", ")
    )
}

fn print_entry(entry: &serde_json::Value) {
    if let Some(list) = entry["migrations"].as_array() {
        for m in list {
            let state = if m["applied"] == true {
                "applied"
            } else {
                "pending"
            };
            println!(
                "{:04}_{}\t{state}",
                m["version"].as_i64().unwrap_or_default(),
                m["name"].as_str().unwrap_or_default()
            );
        }
    } else if let Some(reverted) = entry["reverted"].as_array() {
        if reverted.is_empty() {
            println!("nothing to revert");
        } else {
            let list: Vec<String> = reverted
                .iter()
                .map(|v| format!("{:04}", v.as_i64().unwrap_or_default()))
                .collect();
            println!(
                "reverted {} migration(s): {}",
                reverted.len(),
                list.join(", ")
            );
        }
    } else {
        println!(
            "applied {} migration(s); schema is up to date",
            entry["applied"]
        );
    }
}
