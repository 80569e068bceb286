//! `rillflow projections demote --cluster C [--node N]`

use rillflow_core::tenant::TenantOperation;
use std::time::Duration;

use anyhow::{bail, Result};
use rillflow_adapters::daemon::{operator, PgLeaseStore};

use crate::cli::DemoteArgs;
use crate::commands::database;

pub async fn run(args: DemoteArgs) -> Result<()> {
    let store = PgLeaseStore::new(
        database::open(&args.db, TenantOperation::WholeLog)
            .await?
            .pool,
    );
    let target = operator::demote(&store, &args.cluster, args.node.as_deref()).await?;
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
