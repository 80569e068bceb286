//! `rillflow health score [--cluster C] [--fail-below N] [--output table|json]`

use anyhow::{bail, Result};
use rillflow_adapters::daemon::PgLeaseStore;
use rillflow_core::lease::health::{evaluate, ClusterHealth, HealthRules};
use rillflow_core::lease::{deductions, Deduction};
use rillflow_core::tenant::TenantOperation;
use serde_json::json;

use crate::cli::{HealthScoreArgs, OutputFormat};
use crate::commands::database;

/// Exit status when a score is below `--fail-below`: distinct from 1 (an
/// error) so a probe can tell "unhealthy" from "could not ask".
pub const BELOW_THRESHOLD: u8 = 3;

/// The scores, and whether any is below the threshold.
pub async fn run(args: HealthScoreArgs) -> Result<bool> {
    let store = PgLeaseStore::new(
        database::open(&args.db, TenantOperation::WholeLog)
            .await?
            .pool,
    );
    let views = match &args.cluster {
        Some(c) => match store.cluster_view(c).await? {
            Some(v) => vec![v],
            None => bail!("no cluster named {c:?}"),
        },
        None => store.cluster_views().await?,
    };
    let scored: Vec<(ClusterHealth, Vec<Deduction>)> = views
        .iter()
        .map(|v| {
            let h = evaluate(v, &HealthRules::for_timing(&v.timing));
            let d = deductions(&h);
            (h, d)
        })
        .collect();
    match args.output {
        OutputFormat::Json => {
            let clusters: Vec<_> = scored
                .iter()
                .map(|(h, d)| {
                    json!({
                        "cluster": h.cluster,
                        "score": h.score,
                        "healthy": h.healthy,
                        "deductions": d,
                    })
                })
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({ "clusters": clusters }))?
            );
        }
        OutputFormat::Table if scored.is_empty() => println!("(no clusters)"),
        OutputFormat::Table => {
            for (h, d) in &scored {
                let state = if h.healthy { "healthy" } else { "unhealthy" };
                println!("{}: {}/100, {state}", h.cluster, h.score);
                for deduction in d {
                    println!("  -{:.1}  {}", deduction.points, deduction.reason);
                }
            }
        }
    }
    Ok(match args.fail_below {
        Some(limit) => scored.iter().any(|(h, _)| h.score < limit),
        None => false,
    })
}
