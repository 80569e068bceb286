//! `rillflow projections rebuild NAME --projections FILE`

use anyhow::Result;
use rillflow_adapters::projection::{ProjectionCatalog, Rebuild};
use rillflow_adapters::PoolConfig;
use rillflow_core::tenant::TenantOperation;

use super::{declared, handler_session, names};
use crate::cli::RebuildArgs;
use crate::commands::database;

pub async fn run(args: RebuildArgs) -> Result<()> {
    let name = names::check(&args.name)?;
    // The file is read before the database is touched: a bad file changes nothing.
    let projection = declared::select(&args.projections, Some(name))?
        .pop()
        .expect("select returns the named projection or fails");
    let pool = database::open(&args.db, TenantOperation::WholeLog)
        .await?
        .pool;
    let catalog = ProjectionCatalog::new(pool.clone());
    let before = catalog.status(name).await?;
    let runs_as = handler_session::batch_pool(
        &pool,
        args.handler_database_url.as_deref(),
        &PoolConfig::default(),
        std::slice::from_ref(&projection),
    )
    .await?;
    match ProjectionCatalog::new(runs_as)
        .rebuild(projection.as_ref())
        .await?
    {
        Rebuild::InPlace => {
            let after = catalog.status(name).await?;
            println!(
                "rebuilding {name} in place: read model emptied, checkpoints back at the start ({} events to apply, {} were applied before); running workers catch up",
                after.lag(),
                before.processed_total()
            );
        }
        Rebuild::Beside { version } => println!(
            "building {name} version {version} beside version {}: readers keep the current version until the new one has caught up, then switch",
            before.active_version
        ),
    }
    Ok(())
}
