//! `rillflow archive move --before RFC3339 [--batch-size N] [--stream UUID]
//! [--dry-run] [--max-events-per-sec R]`

use std::time::{Duration, Instant};

use anyhow::Result;
use rillflow_adapters::archive::{ArchiveMover, Candidate, MoveFilter, MoveLimits, MoveProgress};
use serde_json::json;

use crate::cli::{MoveArgs, OutputFormat};
use crate::commands::database;

/// Progress lines on stderr at most this often.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

pub async fn run(args: MoveArgs) -> Result<()> {
    let pool = database::open(&args.db).await?;
    let mover = ArchiveMover::new(pool);
    let filter = MoveFilter {
        before: args.before,
        stream: args.stream,
    };
    if args.dry_run {
        let candidates = mover.candidates(filter).await?;
        print_candidates(&candidates, args.output)?;
        return Ok(());
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
    match args.output {
        OutputFormat::Json => println!(
            "{}",
            json!({
                "moved": done.moved,
                "batches": done.batches,
                "seconds": secs,
                "throttled_seconds": done.throttled.as_secs_f64(),
            })
        ),
        OutputFormat::Table => println!(
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
        ),
    }
    Ok(())
}

fn print_candidates(candidates: &[Candidate], output: OutputFormat) -> Result<()> {
    let total: i64 = candidates.iter().map(|c| c.events).sum();
    match output {
        OutputFormat::Json => {
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
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({
                    "dry_run": true,
                    "streams": list,
                    "events": total,
                }))?
            );
        }
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
    Ok(())
}
