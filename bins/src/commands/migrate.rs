//! `rillflow migrate [--down N [--force]] [--status] [--tenant T | --all-tenants] [--output table|json]`

use anyhow::{bail, Result};
use rillflow_adapters::tenant::TenantScope;
use rillflow_adapters::{Migrations, PoolConfig};
use rillflow_core::tenant::TenantOperation;
use serde_json::json;
use sqlx::PgPool;

use super::database;
use super::tenants::targets::{every_target, heading, Failures};
use crate::cli::{MigrateArgs, OutputFormat};

pub async fn run(args: MigrateArgs) -> Result<()> {
    let base = database::open_unmigrated(&args.db).await?;
    // Where to work, with a heading each: the base schema, one schema or
    // database tenant, or (after migrating the base, which holds the
    // registry) every schema and database tenant too.
    let config = PoolConfig::default();
    let (label, pool) = match &args.db.tenant {
        Some(name) => {
            let scope =
                TenantScope::resolve(&base, name, TenantOperation::Migrate, &config).await?;
            (format!("tenant {name} ({})", scope.mode), scope.pool)
        }
        None => ("base schema".to_owned(), base.clone()),
    };
    if args.all_tenants && !args.status {
        Migrations::apply(&base).await?;
    }
    let mut report = vec![migrate_one(&args, &label, &pool).await?];
    let mut labels = vec![label];
    // Each tenant on its own: one whose database is down is reported in a
    // line naming it, and the rest are still migrated.
    let mut failures = Failures::default();
    let mut tenants = 0;
    if args.all_tenants {
        for target in every_target(&base, false, &config)
            .await?
            .into_iter()
            .skip(1)
        {
            tenants += 1;
            let label = heading(&target);
            let outcome = match failures.pool(&target) {
                Some(pool) => match migrate_one(&args, &label, &pool).await {
                    Ok(entry) => entry,
                    Err(e) => json!({ "scope": label, "error": failures.record(&target, &e) }),
                },
                None => json!({
                    "scope": label,
                    "error": target.pool.as_ref().err().map(ToString::to_string),
                }),
            };
            labels.push(label);
            report.push(outcome);
        }
    }
    match args.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        OutputFormat::Table => {
            for (i, entry) in report.iter().enumerate() {
                if labels.len() > 1 {
                    if i > 0 {
                        println!();
                    }
                    println!("== {}", labels[i]);
                }
                print_entry(entry);
            }
        }
    }
    failures.finish(tenants)
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
    if entry.get("error").is_some() {
        println!("(failed; see the error above)");
    } else if let Some(list) = entry["migrations"].as_array() {
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
