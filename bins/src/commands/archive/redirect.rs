//! `rillflow archive redirect --enable true|false`

use anyhow::Result;
use rillflow_adapters::archive::ArchiveSettings;
use rillflow_core::tenant::TenantOperation;

use crate::cli::RedirectArgs;
use crate::commands::database;

pub async fn run(args: RedirectArgs) -> Result<()> {
    let pool = database::open(&args.db, TenantOperation::ArchiveTables)
        .await?
        .pool;
    let before = ArchiveSettings::set_redirect(&pool, args.enable).await?;
    let state = |on: bool| if on { "enabled" } else { "disabled" };
    if before.redirect == args.enable {
        println!("redirect already {}; nothing changed", state(args.enable));
    } else {
        tracing::info!(enable = args.enable, "archive redirect switched");
        println!("redirect {}", state(args.enable));
    }
    Ok(())
}
