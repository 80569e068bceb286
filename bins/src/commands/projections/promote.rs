//! `rillflow projections promote --cluster C --node N [--force]`

use rillflow_core::tenant::TenantOperation;
use std::time::Duration;

use anyhow::{bail, Result};
use rillflow_adapters::daemon::{operator, PgLeaseStore};

use crate::cli::PromoteArgs;
use crate::commands::database;

pub async fn run(args: PromoteArgs) -> Result<()> {
    let store = PgLeaseStore::new(
        database::open(&args.db, TenantOperation::WholeLog)
            .await?
            .pool,
    );
    operator::promote(&store, &args.cluster, &args.node, args.force).await?;
    eprintln!(
        "promotion of {} requested; waiting for it to take the lease",
        args.node
    );

    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.wait_secs);
    loop {
        if let Some(v) = store.cluster_view(&args.cluster).await? {
            if v.holds_valid_lease(&args.node) {
                println!(
                    "{} is hot in cluster {} at epoch {}",
                    args.node, args.cluster, v.epoch
                );
                return Ok(());
            }
        }
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "{} did not become hot within {} s; the request stays pending",
                args.node,
                args.wait_secs
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
