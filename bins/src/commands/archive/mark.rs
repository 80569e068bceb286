//! `rillflow archive mark STREAM --reason TEXT [--by WHO]`

use anyhow::Result;
use rillflow_adapters::archive::{MarkOutcome, StreamLifecycle};
use rillflow_core::tenant::TenantOperation;

use crate::cli::MarkArgs;
use crate::commands::database;

pub async fn run(args: MarkArgs) -> Result<()> {
    let scoped = database::open(&args.db, TenantOperation::ArchiveStreams).await?;
    let by = args.by.clone().unwrap_or_else(default_author);
    match StreamLifecycle::new(scoped.pool.clone())
        .for_tenant(scoped.conjoined().cloned())
        .mark(args.stream, &args.reason, &by)
        .await?
    {
        MarkOutcome::Marked { at } => println!(
            "stream {} archived at {} by {by}",
            args.stream,
            at.to_rfc3339()
        ),
        MarkOutcome::AlreadyArchived { since } => println!(
            "stream {} is already archived (since {}); nothing changed",
            args.stream,
            since.to_rfc3339()
        ),
    }
    Ok(())
}

/// The operator's login name when the environment has one.
fn default_author() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.trim().is_empty() && !u.chars().any(char::is_control))
        .unwrap_or_else(|| "rillflow".to_owned())
}
