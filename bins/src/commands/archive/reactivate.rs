//! `rillflow archive reactivate STREAM`

use anyhow::Result;
use rillflow_adapters::archive::{ReactivateOutcome, StreamLifecycle};

use crate::cli::StreamArgs;
use crate::commands::database;

pub async fn run(args: StreamArgs) -> Result<()> {
    let pool = database::open(&args.db).await?;
    match StreamLifecycle::new(pool).reactivate(args.stream).await? {
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
