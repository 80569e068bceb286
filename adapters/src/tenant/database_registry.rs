//! Registering and removing database tenants: the registry row stays in
//! the base schema, the store lives in the tenant's own database.

use rillflow_core::tenant::{TenancyMode, TenantName};
use sqlx::PgPool;

use super::{database_pool, AddOutcome, RemoveOutcome, TenantError, TenantInfo, TenantRegistry};
use super::{TenantUrl, TenantUrlError};
use crate::{Migrations, PoolConfig};

impl TenantRegistry {
    /// Registers `name` as a database tenant whose store is at `url`.
    ///
    /// The database is reached, checked and migrated before the row is
    /// written, so a registered database tenant always has a usable store
    /// and an unreachable or unsuitable database leaves no row. Running it
    /// again with the same URL brings the store to the latest migration;
    /// another URL is refused.
    pub async fn add_database(
        &self,
        name: &TenantName,
        url: &str,
        config: &PoolConfig,
    ) -> Result<AddOutcome, TenantError> {
        let bad_url = |source: TenantUrlError| TenantError::BadUrl {
            tenant: name.to_string(),
            source,
        };
        let url = TenantUrl::parse(name, url).map_err(bad_url)?;
        let existing = self.get(name).await?;
        if let Some(info) = &existing {
            check_same_place(name, info, &url)?;
        }
        let pool = database_pool(name, &url, config).await?;
        let prepared = self.prepare_database(name, &url, &pool).await;
        pool.close().await;
        prepared?;
        if existing.is_some() {
            return Ok(AddOutcome::AlreadyRegistered);
        }
        let inserted = sqlx::query(
            "INSERT INTO rf_tenants (name, mode, url) VALUES ($1, 'database', $2)
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name.as_str())
        .bind(url.as_str())
        .execute(&self.pool)
        .await?
        .rows_affected();
        if inserted == 0 {
            // Someone registered the name meanwhile: same place or refused.
            if let Some(info) = self.get(name).await? {
                check_same_place(name, &info, &url)?;
            }
            return Ok(AddOutcome::AlreadyRegistered);
        }
        tracing::info!(tenant = %name, url = %url, "database tenant registered");
        Ok(AddOutcome::Added)
    }

    /// Refuses the base store and a schema that holds someone else's
    /// tables, then applies every migration there.
    async fn prepare_database(
        &self,
        name: &TenantName,
        url: &TenantUrl,
        pool: &PgPool,
    ) -> Result<(), TenantError> {
        if self
            .is_base_store(pool)
            .await?
            .map_err(|e| remote_error(name, url, e))?
        {
            return Err(TenantError::IsBaseStore(name.to_string()));
        }
        let taken = |problem| TenantError::DatabaseTaken {
            tenant: name.to_string(),
            url: url.to_string(),
            problem,
        };
        let (schema, tables, migrated): (Option<String>, i64, bool) = sqlx::query_as(
            "SELECT current_schema()::text,
                    (SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()),
                    EXISTS (SELECT 1 FROM pg_tables
                             WHERE schemaname = current_schema()
                               AND tablename = '_sqlx_migrations')",
        )
        .fetch_one(pool)
        .await
        .map_err(|e| remote_error(name, url, e))?;
        if schema.is_none() {
            return Err(taken("the schema its search_path names does not exist"));
        }
        if tables > 0 && !migrated {
            return Err(taken("tables that are not a rillflow store are in the way"));
        }
        Migrations::apply(pool)
            .await
            .map_err(|source| TenantError::Migrate {
                tenant: name.to_string(),
                source,
            })?;
        Ok(())
    }

    /// Whether sessions of `tenant` land where the registry's own do: same
    /// server (one of the registry's sessions is visible there under its
    /// process id and start time), same database and same schema.
    /// The outer error is the base's, the inner one the tenant's.
    async fn is_base_store(
        &self,
        tenant: &PgPool,
    ) -> Result<Result<bool, sqlx::Error>, TenantError> {
        let mut base = self.pool.acquire().await?;
        let (pid, started, database, schema): (
            i32,
            Option<chrono::DateTime<chrono::Utc>>,
            String,
            Option<String>,
        ) = sqlx::query_as(
            "SELECT pg_backend_pid(),
                        (SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()),
                        current_database()::text, current_schema()::text",
        )
        .fetch_one(&mut *base)
        .await?;
        // Held until the tenant side looked, so the pid cannot be reused.
        let same = sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity
                             WHERE pid = $1 AND backend_start IS NOT DISTINCT FROM $2)
                    AND current_database() = $3
                    AND current_schema() IS NOT DISTINCT FROM $4",
        )
        .bind(pid)
        .bind(started)
        .bind(&database)
        .bind(&schema)
        .fetch_one(tenant)
        .await;
        drop(base);
        Ok(same)
    }

    /// Unregisters the database tenant `info`, which must own no stream.
    ///
    /// Its database is never dropped, nor anything in it. The check holds a
    /// share lock on the store's `rf_streams` (on the tenant's server)
    /// while the row goes from the registry, so no append can create a
    /// stream in between; an append that resolved the tenant just before
    /// and commits after still creates its stream there, where adding the
    /// tenant again makes it reachable. An unreachable database cannot be
    /// checked, so nothing is removed.
    pub(super) async fn remove_database(
        &self,
        info: &TenantInfo,
        name: &TenantName,
    ) -> Result<RemoveOutcome, TenantError> {
        let text = info.url.as_deref().unwrap_or_default();
        let url = TenantUrl::parse(name, text).map_err(|source| TenantError::BadUrl {
            tenant: name.to_string(),
            source,
        })?;
        let pool = database_pool(name, &url, &PoolConfig::default()).await?;
        let result = self.remove_checked(name, &url, &pool).await;
        pool.close().await;
        result
    }

    async fn remove_checked(
        &self,
        name: &TenantName,
        url: &TenantUrl,
        pool: &PgPool,
    ) -> Result<RemoveOutcome, TenantError> {
        let remote_failed = |e| remote_error(name, url, e);
        let mut remote = pool.begin().await.map_err(remote_failed)?;
        sqlx::query("SET LOCAL lock_timeout = '5s'")
            .execute(&mut *remote)
            .await
            .map_err(remote_failed)?;
        let migrated: bool = sqlx::query_scalar("SELECT to_regclass('rf_streams') IS NOT NULL")
            .fetch_one(&mut *remote)
            .await
            .map_err(remote_failed)?;
        let streams: i64 = if migrated {
            sqlx::query("LOCK TABLE rf_streams IN SHARE MODE")
                .execute(&mut *remote)
                .await
                .map_err(remote_failed)?;
            sqlx::query_scalar("SELECT count(*) FROM rf_streams")
                .fetch_one(&mut *remote)
                .await
                .map_err(remote_failed)?
        } else {
            0
        };
        if streams > 0 {
            return Err(TenantError::HasStreams {
                name: name.to_string(),
                streams,
            });
        }
        sqlx::query("DELETE FROM rf_tenants WHERE name = $1 AND mode = 'database'")
            .bind(name.as_str())
            .execute(&self.pool)
            .await?;
        // Only read: ending it releases the lock.
        remote.rollback().await.map_err(remote_failed)?;
        tracing::info!(tenant = %name, url = %url, "database tenant removed; its database is kept");
        Ok(RemoveOutcome::RemovedDatabaseKept)
    }
}

/// Refuses to register `name` at `url` when it is registered otherwise.
fn check_same_place(
    name: &TenantName,
    info: &TenantInfo,
    url: &TenantUrl,
) -> Result<(), TenantError> {
    if info.mode != TenancyMode::Database {
        return Err(TenantError::ModeConflict {
            name: name.to_string(),
            existing: info.mode,
        });
    }
    match info.url.as_deref() {
        Some(registered) if registered == url.as_str() => Ok(()),
        registered => Err(TenantError::UrlConflict {
            name: name.to_string(),
            registered: crate::secrets::redact_secrets(registered.unwrap_or_default()),
        }),
    }
}

/// A failure talking to the tenant's database after connecting: the server
/// went away, or refused a statement.
fn remote_error(name: &TenantName, url: &TenantUrl, source: sqlx::Error) -> TenantError {
    TenantError::Remote {
        tenant: name.to_string(),
        url: url.to_string(),
        reason: crate::secrets::redact_secrets(&source.to_string()),
    }
}
