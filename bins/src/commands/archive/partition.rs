//! `rillflow archive partition --retention hot|cold --month YYYY-MM-01`

use anyhow::Result;
use rillflow_adapters::archive::{PartitionOutcome, Partitions};
use rillflow_core::tenant::TenantOperation;

use crate::cli::PartitionArgs;
use crate::commands::database;

pub async fn run(args: PartitionArgs) -> Result<()> {
    let pool = database::open(&args.db, TenantOperation::ArchiveTables)
        .await?
        .pool;
    let name = args.month.table_name(args.retention);
    match Partitions::new(pool)
        .create_month(args.retention, args.month)
        .await?
    {
        PartitionOutcome::Created { moved_rows } => println!(
            "created {name} for {} to {} ({moved_rows} rows moved from {})",
            args.month,
            args.month.next(),
            args.retention.default_table()
        ),
        PartitionOutcome::AlreadyExists => println!("{name} already exists; nothing changed"),
    }
    Ok(())
}
