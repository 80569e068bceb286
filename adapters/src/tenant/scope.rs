//! Scoping a command to a tenant.

use rillflow_core::tenant::{TenancyMode, TenantName, TenantOperation};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

use super::{database_pool, TenantError, TenantRegistry, TenantUrl};
use crate::PoolConfig;

/// The tenant a command acts for, resolved against the registry.
#[derive(Debug, Clone)]
pub struct TenantScope {
    /// The tenant.
    pub name: TenantName,
    /// Its mode.
    pub mode: TenancyMode,
    /// Where its data is: a pool on its own schema (schema tenants), on its
    /// own database (database tenants), or the base pool (conjoined
    /// tenants, whose rows the command then filters).
    pub pool: PgPool,
}

impl TenantScope {
    /// Resolves `name` in `base`'s registry for `operation`: unknown
    /// tenants and operations the mode cannot scope are refused before
    /// anything is touched. A database tenant's pool is opened on its own
    /// server with `config` (the settings `base` was opened with: size and
    /// session timeouts, a daemon's lease-derived ones included).
    pub async fn resolve(
        base: &PgPool,
        name: &TenantName,
        operation: TenantOperation,
        config: &PoolConfig,
    ) -> Result<Self, TenantError> {
        let info = TenantRegistry::new(base.clone())
            .get(name)
            .await?
            .ok_or_else(|| TenantError::Unknown(name.to_string()))?;
        operation.check(name.as_str(), info.mode)?;
        let pool = match info.mode {
            TenancyMode::Conjoined => base.clone(),
            TenancyMode::Schema => schema_pool(base, name).await?,
            TenancyMode::Database => {
                let url = TenantUrl::parse(name, info.url.as_deref().unwrap_or_default()).map_err(
                    |source| TenantError::BadUrl {
                        tenant: name.to_string(),
                        source,
                    },
                )?;
                database_pool(name, &url, config).await?
            }
        };
        Ok(Self {
            name: name.clone(),
            mode: info.mode,
            pool,
        })
    }

    /// The tenant to filter rows by: set for conjoined tenants only, since
    /// a schema tenant's pool already sees nothing else.
    pub fn conjoined(&self) -> Option<&TenantName> {
        (self.mode == TenancyMode::Conjoined).then_some(&self.name)
    }
}

/// A pool like `base` (same server, credentials, session timeouts, size)
/// whose sessions see only the schema `name`: its `search_path` is that
/// schema alone, so every unqualified name in rillflow's SQL, triggers and
/// functions included, resolves inside it.
pub async fn schema_pool(base: &PgPool, name: &TenantName) -> Result<PgPool, sqlx::Error> {
    let options = (*base.connect_options())
        .clone()
        .options([("search_path", name.schema().quoted())]);
    let settings = base.options();
    PgPoolOptions::new()
        .max_connections(settings.get_max_connections())
        .acquire_timeout(settings.get_acquire_timeout())
        .connect_with(options)
        .await
}
