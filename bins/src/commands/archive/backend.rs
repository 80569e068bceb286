//! `rillflow archive backend [--set dual-table|partitioned]`

use anyhow::Result;
use rillflow_adapters::archive::ArchiveSettings;

use crate::cli::BackendArgs;
use crate::commands::database;

pub async fn run(args: BackendArgs) -> Result<()> {
    let pool = database::open(&args.db).await?;
    let Some(backend) = args.set else {
        println!("{}", ArchiveSettings::load(&pool).await?.backend);
        return Ok(());
    };
    let before = ArchiveSettings::set_backend(&pool, backend).await?;
    if before.backend == backend {
        println!("backend already {backend}; nothing changed");
    } else {
        tracing::info!(from = %before.backend, to = %backend, "archive backend switched");
        println!(
            "backend {backend} (was {}); events already cold stay where they are",
            before.backend
        );
    }
    Ok(())
}
