//! Which database a command talks to.

use std::path::Path;

use anyhow::{Context, Result};
use rillflow_adapters::{connect, ClusterSettings, LocalCluster, Migrations, PoolConfig};
use sqlx::PgPool;

use crate::cli::DatabaseArgs;

/// Directory of the local cluster used when no URL is given.
pub const LOCAL_DIR: &str = ".rillflow";
/// Database created in the local cluster.
pub const LOCAL_DATABASE: &str = "rillflow";

/// Connects to the given URL as is, or to the local database, which is
/// started and brought to the latest schema first: it is rillflow's own, so
/// nobody else's migration policy applies to it.
pub async fn open(args: &DatabaseArgs) -> Result<PgPool> {
    open_with(args, true, &PoolConfig::default()).await
}

/// Like [`open`], with the session timeouts of `config` (the daemon's are
/// derived from its lease timing).
pub async fn open_configured(args: &DatabaseArgs, config: &PoolConfig) -> Result<PgPool> {
    open_with(args, true, config).await
}

/// Like [`open`], but never migrates: for `rillflow migrate` itself.
pub async fn open_unmigrated(args: &DatabaseArgs) -> Result<PgPool> {
    open_with(args, false, &PoolConfig::default()).await
}

async fn open_with(
    args: &DatabaseArgs,
    migrate_local: bool,
    config: &PoolConfig,
) -> Result<PgPool> {
    match &args.database_url {
        Some(url) => connect(url, config)
            .await
            .context("cannot connect to the database"),
        None => open_local(Path::new(LOCAL_DIR), migrate_local, config).await,
    }
}

/// Starts the local cluster in `dir` and returns its URL.
pub async fn start_local(dir: &Path) -> Result<LocalCluster> {
    let dir_owned = dir.to_owned();
    let cluster = tokio::task::spawn_blocking(move || {
        LocalCluster::start(&dir_owned, &ClusterSettings::for_users())
    })
    .await
    .context("starting the local database")??;
    cluster.ensure_database(LOCAL_DATABASE).await?;
    Ok(cluster)
}

async fn open_local(dir: &Path, migrate: bool, config: &PoolConfig) -> Result<PgPool> {
    let cluster = start_local(dir).await?;
    let pool = connect(&cluster.url(LOCAL_DATABASE), config)
        .await
        .context("cannot connect to the local database")?;
    if migrate {
        Migrations::apply(&pool).await?;
    }
    Ok(pool)
}
