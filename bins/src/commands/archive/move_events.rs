//! `rillflow archive move --before RFC3339 [--batch-size N] [--stream UUID]
//! [--dry-run] [--max-events-per-sec R]`

use rillflow_core::tenant::TenantOperation;
use std::time::{Duration, Instant};

use anyhow::Result;
use rillflow_adapters::archive::{ArchiveMover, Candidate, MoveFilter, MoveLimits, MoveProgress};
use rillflow_adapters::PoolConfig;
use rillflow_core::tenant::TenantName;
use serde_json::json;
use sqlx::PgPool;

use crate::cli::{MoveArgs, OutputFormat};
use crate::commands::database;
use crate::commands::tenants::targets::{every_target, heading, Failures};

/// Progress lines on stderr at most this often.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

pub async fn run(args: MoveArgs) -> Result<()> {
    if !args.all_tenants {
        let scoped = database::open(&args.db, TenantOperation::ArchiveStreams).await?;
        let tenant = scoped.conjoined().cloned();
        let report = move_in(&args, scoped.pool, tenant).await?;
        if args.output == OutputFormat::Json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        return Ok(());
    }
    // The base schema's run covers every conjoined tenant's streams; each
    // schema or database tenant's store has archived streams of its own. A
    // tenant that fails (its server down) is reported and skipped; the
    // others still move.
    let base = database::open_base(&args.db).await?;
    let mut reports = Vec::new();
    let mut failures = Failures::default();
    let targets = every_target(&base, false, &PoolConfig::default()).await?;
    for target in &targets {
        if args.output == OutputFormat::Table {
            println!("== {}", heading(target));
        }
        let tenant = json!(target.tenant.as_ref().map(|t| &t.name));
        let Some(pool) = failures.pool(target) else {
            let error = target.pool.as_ref().err().map(ToString::to_string);
            reports.push(json!({ "tenant": tenant, "error": error }));
            continue;
        };
        match move_in(&args, pool, None).await {
            Ok(mut report) => {
                report["tenant"] = tenant;
                reports.push(report);
            }
            Err(e) => {
                let error = failures.record(target, &e);
                reports.push(json!({ "tenant": tenant, "error": error }));
            }
        }
    }
    if args.output == OutputFormat::Json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    }
    failures.finish(targets.len())
}

/// One scope's dry run or move; prints the table form as it goes and
/// returns the JSON form.
async fn move_in(
    args: &MoveArgs,
    pool: PgPool,
    tenant: Option<TenantName>,
) -> Result<serde_json::Value> {
    let mover = ArchiveMover::new(pool);
    let filter = MoveFilter {
        before: args.before,
        stream: args.stream,
        tenant,
    };
    if args.dry_run {
        let candidates = mover.candidates(filter).await?;
        return Ok(print_candidates(&candidates, args.output));
    }
    let started = Instant::now();
    let mut last_print = started;
    let limits = MoveLimits {
        batch_size: args.batch_size,
        max_events_per_sec: args.max_events_per_sec,
    };
    let done = mover
        .run(filter, limits, |p: &MoveProgress| {
            if last_print.elapsed() >= PROGRESS_EVERY {
                last_print = Instant::now();
                let secs = started.elapsed().as_secs_f64().max(1e-9);
                eprintln!(
                    "moved {} events in {} batches ({:.0} events/s)",
                    p.moved,
                    p.batches,
                    p.moved as f64 / secs
                );
            }
        })
        .await?;
    let secs = started.elapsed().as_secs_f64();
    if args.output == OutputFormat::Table {
        println!(
            "moved {} events in {} batches in {:.2} s{}",
            done.moved,
            done.batches,
            secs,
            if done.throttled.is_zero() {
                String::new()
            } else {
                format!(
                    " ({:.2} s waiting for the rate limit)",
                    done.throttled.as_secs_f64()
                )
            }
        );
    }
    Ok(json!({
        "moved": done.moved,
        "batches": done.batches,
        "seconds": secs,
        "throttled_seconds": done.throttled.as_secs_f64(),
    }))
}

/// Prints the table form of a dry run; returns its JSON form.
fn print_candidates(candidates: &[Candidate], output: OutputFormat) -> serde_json::Value {
    let total: i64 = candidates.iter().map(|c| c.events).sum();
    let list: Vec<_> = candidates
        .iter()
        .map(|c| {
            json!({
                "stream": c.stream,
                "events": c.events,
                "oldest": c.oldest.to_rfc3339(),
            })
        })
        .collect();
    match output {
        OutputFormat::Json => {}
        OutputFormat::Table => {
            println!("{:<36}  {:>10}  OLDEST", "STREAM", "EVENTS");
            for c in candidates {
                println!(
                    "{:<36}  {:>10}  {}",
                    c.stream,
                    c.events,
                    c.oldest.to_rfc3339()
                );
            }
            println!(
                "dry run: {} events in {} streams would move; nothing changed",
                total,
                candidates.len()
            );
        }
    }
    json!({
        "dry_run": true,
        "streams": list,
        "events": total,
    })
}
