//! `rillflow archive reactivate STREAM`

use anyhow::Result;
use rillflow_adapters::archive::{ReactivateOutcome, StreamLifecycle};
use rillflow_core::tenant::TenantOperation;

use crate::cli::StreamArgs;
use crate::commands::database;

pub async fn run(args: StreamArgs) -> Result<()> {
    let scoped = database::open(&args.db, TenantOperation::ArchiveStreams).await?;
    let lifecycle =
        StreamLifecycle::new(scoped.pool.clone()).for_tenant(scoped.conjoined().cloned());
    match lifecycle.reactivate(args.stream).await? {
        ReactivateOutcome::Reactivated => println!(
            "stream {} reactivated: new events go to hot storage; cold events stay cold",
            args.stream
        ),
        ReactivateOutcome::NotArchived => {
            println!("stream {} is not archived; nothing changed", args.stream)
        }
    }
    Ok(())
}
