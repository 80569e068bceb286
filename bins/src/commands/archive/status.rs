//! `rillflow archive status [--output table|json]`

use anyhow::Result;
use rillflow_adapters::archive::{ArchiveStatus, Counting};
use rillflow_adapters::PoolConfig;
use rillflow_core::tenant::TenantOperation;
use serde_json::json;

use crate::cli::{ArchiveStatusArgs, OutputFormat};
use crate::commands::database;
use crate::commands::tenants::targets::{every_target, heading, Failures};

pub async fn run(args: ArchiveStatusArgs) -> Result<()> {
    if args.all_tenants {
        return run_all(args).await;
    }
    let scoped = database::open(&args.db, TenantOperation::ArchiveStreams).await?;
    let status = ArchiveStatus::load_for(&scoped.pool, scoped.conjoined(), counting(&args)).await?;
    match args.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&status)?),
        OutputFormat::Table => print_table(&status),
    }
    Ok(())
}

/// The base schema as a whole, then each tenant's share: a JSON array, or
/// one table per scope under a heading. A tenant that cannot answer gets
/// an `error` entry in JSON and a line on stderr, and the others are still
/// shown.
async fn run_all(args: ArchiveStatusArgs) -> Result<()> {
    let base = database::open_base(&args.db).await?;
    let mut all = Vec::new();
    let mut failures = Failures::default();
    let targets = every_target(&base, true, &PoolConfig::default()).await?;
    for target in &targets {
        let Some(pool) = failures.pool(target) else {
            let error = target.pool.as_ref().err().map(ToString::to_string);
            all.push((heading(target), Err(error)));
            continue;
        };
        match ArchiveStatus::load_for(&pool, target.conjoined.as_ref(), counting(&args)).await {
            Ok(mut status) => {
                if let Some(t) = &target.tenant {
                    status.tenant = Some(t.name.clone());
                }
                all.push((heading(target), Ok(status)));
            }
            Err(e) => {
                let line = failures.record(target, &e.into());
                all.push((heading(target), Err(Some(line))));
            }
        }
    }
    match args.output {
        OutputFormat::Json => {
            let list: Vec<_> = all
                .iter()
                .zip(&targets)
                .map(|((_, s), target)| match s {
                    Ok(status) => json!(status),
                    Err(error) => json!({
                        "tenant": target.tenant.as_ref().map(|t| &t.name),
                        "error": error,
                    }),
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&list)?);
        }
        OutputFormat::Table => {
            for (i, (title, status)) in all.iter().enumerate() {
                if i > 0 {
                    println!();
                }
                println!("== {title}");
                match status {
                    Ok(status) => print_table(status),
                    Err(_) => println!("(failed; see the error above)"),
                }
            }
        }
    }
    failures.finish(targets.len())
}

fn counting(args: &ArchiveStatusArgs) -> Counting {
    if args.exact {
        Counting::Exact
    } else {
        Counting::Bounded
    }
}

/// A byte figure, or "-" where a conjoined tenant shares the table.
fn bytes(b: Option<i64>) -> String {
    b.map_or_else(|| "-".to_owned(), |b| b.to_string())
}

fn print_table(s: &ArchiveStatus) {
    if let Some(t) = &s.tenant {
        println!("tenant    {t}");
    }
    println!("backend   {}", s.backend);
    println!(
        "redirect  {}",
        if s.redirect { "enabled" } else { "disabled" }
    );
    if !s.exact {
        println!("counts    past 10,000 rows, the planner's estimates (--exact counts)");
    }
    println!();
    println!("{:<22} {:>12} {:>14}", "", "EVENTS", "BYTES");
    println!(
        "{:<22} {:>12} {:>14}",
        "hot (events_hot)",
        s.events_hot,
        bytes(s.hot_bytes)
    );
    println!(
        "{:<22} {:>12} {:>14}",
        "cold (events_cold)",
        s.events_cold_partition,
        bytes(s.cold_partition_bytes)
    );
    println!(
        "{:<22} {:>12} {:>14}",
        "cold (events_archive)",
        s.events_archive_table,
        bytes(s.archive_table_bytes)
    );
    println!();
    println!(
        "streams   {} total, {} archived, {} cold, {} reactivated",
        s.streams_total, s.streams_archived, s.streams_cold, s.streams_reactivated
    );
    println!();
    println!("{:<24} {:<12} {:>12}  BOUND", "PARTITION", "TIER", "BYTES");
    for p in &s.partitions {
        println!(
            "{:<24} {:<12} {:>12}  {}",
            p.name, p.parent, p.bytes, p.bound
        );
    }
}
