//! `rillflow projections cluster-status [--cluster C] [--output table|json]`

use anyhow::{bail, Result};
use rillflow_adapters::daemon::PgLeaseStore;
use rillflow_adapters::health::report;
use rillflow_core::lease::health::{evaluate, ClusterHealth, HealthRules};
use rillflow_core::tenant::TenantOperation;

use crate::cli::{ClusterStatusArgs, OutputFormat};
use crate::commands::{database, read_source};

pub async fn run(args: ClusterStatusArgs) -> Result<()> {
    let scoped = database::open(&args.db, TenantOperation::WholeLog).await?;
    let store = PgLeaseStore::new(scoped.pool.clone());
    let views = match &args.cluster {
        Some(c) => match store.cluster_view(c).await? {
            Some(v) => vec![v],
            None => bail!("no cluster named {c:?}"),
        },
        None => store.cluster_views().await?,
    };
    // Each cluster is judged by the timing its daemons recorded.
    let healths: Vec<ClusterHealth> = views
        .iter()
        .map(|v| evaluate(v, &HealthRules::for_timing(&v.timing)))
        .collect();
    let replica = read_source::lag(&args.read, &scoped).await;
    match args.output {
        OutputFormat::Json => {
            let mut doc = report::hotcold(&healths);
            if let Some(lag) = &replica {
                doc["read_replica"] = read_source::lag_json(lag);
            }
            println!("{}", serde_json::to_string_pretty(&doc)?)
        }
        OutputFormat::Table => {
            print_table(&healths);
            if let Some(lag) = &replica {
                println!("{}", read_source::lag_line(lag));
            }
        }
    }
    Ok(())
}

fn print_table(healths: &[ClusterHealth]) {
    if healths.is_empty() {
        println!("(no clusters)");
        return;
    }
    for c in healths {
        println!(
            "cluster {}: {} (score {}), hot {}, standbys {}/{}, epoch {}, lease binding {}",
            c.cluster,
            if c.healthy { "healthy" } else { "UNHEALTHY" },
            c.score,
            c.leader
                .as_deref()
                .filter(|_| c.hot_nodes == 1)
                .unwrap_or("none"),
            c.standby_nodes,
            c.min_cold_standbys,
            c.epoch,
            c.lease_binding,
        );
        println!(
            "  {:<24} {:<9} {:>6} {:>10} {:>10}",
            "NODE", "ROLE", "EPOCH", "HEARTBEAT", "LEASE"
        );
        for n in &c.nodes {
            let lease = match n.lease_remaining_ms {
                Some(ms) if n.hot => format!("{:.1}s", ms as f64 / 1000.0),
                _ => "-".to_owned(),
            };
            let role = if n.live {
                n.role.as_str().to_owned()
            } else {
                format!("{} (dead)", n.role.as_str())
            };
            println!(
                "  {:<24} {:<9} {:>6} {:>9.1}s {:>10}",
                n.name,
                role,
                n.epoch,
                n.heartbeat_age_ms as f64 / 1000.0,
                lease
            );
        }
    }
}
