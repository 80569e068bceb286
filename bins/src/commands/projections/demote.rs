//! `rillflow projections demote --cluster C [--node N]`

use rillflow_core::tenant::TenantOperation;
use std::time::Duration;

use anyhow::{bail, Result};
use rillflow_adapters::daemon::PgLeaseStore;

use crate::cli::DemoteArgs;
use crate::commands::database;

pub async fn run(args: DemoteArgs) -> Result<()> {
    let store = PgLeaseStore::new(
        database::open(&args.db, TenantOperation::WholeLog)
            .await?
            .pool,
    );
    let Some(view) = store.cluster_view(&args.cluster).await? else {
        bail!("no cluster named {:?}", args.cluster);
    };
    let target = match (&args.node, &view.leader) {
        (Some(n), _) if view.node(n).is_none() => {
            bail!("cluster {} has no node {n:?}", args.cluster)
        }
        (Some(n), _) => n.clone(),
        (None, Some(leader)) if view.holds_valid_lease(leader) => leader.clone(),
        (None, _) => bail!("cluster {} has no hot node to demote", args.cluster),
    };
    if !view.holds_valid_lease(&target) {
        bail!("{target} is not hot in cluster {}", args.cluster);
    }
    store.request_demote(&args.cluster, Some(&target)).await?;
    eprintln!("demotion of {target} requested; waiting for it to give the lease up");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.wait_secs);
    loop {
        if let Some(v) = store.cluster_view(&args.cluster).await? {
            if !v.holds_valid_lease(&target) {
                let now = match v.leader.as_deref().filter(|l| v.holds_valid_lease(l)) {
                    Some(l) => format!("{l} is hot at epoch {}", v.epoch),
                    None => "no node is hot yet".to_owned(),
                };
                println!("{target} gave the lease up; {now}");
                return Ok(());
            }
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("{target} still holds the lease after {} s", args.wait_secs);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
