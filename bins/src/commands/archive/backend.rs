//! `rillflow archive backend [--set dual-table|partitioned]`

use anyhow::Result;
use rillflow_adapters::archive::ArchiveSettings;
use rillflow_core::tenant::TenantOperation;

use serde_json::json;

use crate::cli::{BackendArgs, OutputFormat};
use crate::commands::database;

pub async fn run(args: BackendArgs) -> Result<()> {
    let pool = database::open(&args.db, TenantOperation::ArchiveTables)
        .await?
        .pool;
    let Some(backend) = args.set else {
        let settings = ArchiveSettings::load(&pool).await?;
        match args.output {
            OutputFormat::Table => println!("{}", settings.backend),
            OutputFormat::Json => println!(
                "{}",
                json!({ "backend": settings.backend.to_string(), "redirect": settings.redirect })
            ),
        }
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
