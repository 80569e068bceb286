//! Which database a command talks to.

use std::path::Path;

use anyhow::{Context, Result};
use rillflow_adapters::tenant::TenantScope;
use rillflow_adapters::{connect, ClusterSettings, LocalCluster, Migrations, PoolConfig};
use rillflow_core::tenant::{TenancyMode, TenantName, TenantOperation};
use sqlx::PgPool;

use crate::cli::DatabaseArgs;

/// Directory of the local cluster used when no URL is given.
pub const LOCAL_DIR: &str = ".rillflow";
/// Database created in the local cluster.
pub const LOCAL_DATABASE: &str = "rillflow";

/// A pool for a command, scoped to the tenant it was given.
pub struct Scoped {
    /// The tenant's schema for a schema tenant, its database for a
    /// database tenant, else the base schema.
    pub pool: PgPool,
    /// The tenant, when `--tenant` was given.
    pub tenant: Option<TenantScope>,
}

impl Scoped {
    /// The conjoined tenant whose streams the command must keep to.
    pub fn conjoined(&self) -> Option<&TenantName> {
        self.tenant.as_ref().and_then(TenantScope::conjoined)
    }

    /// The tenant's name, for labels and messages.
    pub fn tenant_name(&self) -> Option<&TenantName> {
        self.tenant.as_ref().map(|t| &t.name)
    }
}

/// The database tenant this process acts for, once resolved.
static DATABASE_TENANT: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// `line` (a command's error) naming the database tenant the command acts
/// for, unless it already does: a failure on a tenant's own server must
/// say which tenant's server failed.
pub fn naming_database_tenant(line: String) -> String {
    match DATABASE_TENANT.get() {
        Some(name) if !line.contains(&format!("tenant {name}")) => format!("tenant {name}: {line}"),
        _ => line,
    }
}

/// Connects to the given URL as is, or to the local database, which is
/// started and brought to the latest schema first: it is rillflow's own, so
/// nobody else's migration policy applies to it. With `--tenant`, the
/// tenant is looked up and `operation` checked against its mode before the
/// command touches anything.
pub async fn open(args: &DatabaseArgs, operation: TenantOperation) -> Result<Scoped> {
    open_configured(args, &PoolConfig::default(), operation).await
}

/// Like [`open`], with the session timeouts of `config` (the daemon's are
/// derived from its lease timing).
pub async fn open_configured(
    args: &DatabaseArgs,
    config: &PoolConfig,
    operation: TenantOperation,
) -> Result<Scoped> {
    let base = open_with(args, true, config).await?;
    let Some(name) = &args.tenant else {
        return Ok(Scoped {
            pool: base,
            tenant: None,
        });
    };
    let scope = TenantScope::resolve(&base, name, operation, config).await?;
    if scope.mode == TenancyMode::Database {
        // Whatever fails from here on may be the tenant's server: the
        // command's error line will say whose.
        let _ = DATABASE_TENANT.set(name.to_string());
    }
    if args.database_url.is_none() && scope.mode == TenancyMode::Schema {
        // The local database follows this binary's schema, tenants too.
        Migrations::apply(&scope.pool).await?;
    }
    Ok(Scoped {
        pool: scope.pool.clone(),
        tenant: Some(scope),
    })
}

/// The base schema, never migrated and never scoped: for `rillflow
/// migrate` and `rillflow tenants`, which handle tenants themselves.
pub async fn open_unmigrated(args: &DatabaseArgs) -> Result<PgPool> {
    open_with(args, false, &PoolConfig::default()).await
}

/// The base schema, migrated when local, whatever `--tenant` says.
pub async fn open_base(args: &DatabaseArgs) -> Result<PgPool> {
    open_with(args, true, &PoolConfig::default()).await
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
