//! `rf_tenants`: which tenants exist and how each is kept apart.

use chrono::{DateTime, Utc};
use rillflow_core::tenant::{TenancyMode, TenantName};
use sqlx::PgPool;

use super::{schema_pool, TenantError};
use crate::Migrations;

/// One registered tenant.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TenantInfo {
    /// Its name (and, for a schema tenant, its schema's name).
    pub name: String,
    /// How its data is kept apart.
    pub mode: TenancyMode,
    /// Where a database tenant's store is; never a password.
    pub url: Option<String>,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
}

/// What `add` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddOutcome {
    /// Registered now (and, for a schema tenant, its schema created and migrated).
    Added,
    /// Already registered with this mode; a schema tenant's schema was
    /// brought to the latest migration.
    AlreadyRegistered,
}

/// What `remove` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoveOutcome {
    /// Unregistered; a schema tenant's schema was left in place.
    Removed,
    /// Unregistered, and the schema tenant's (empty) schema dropped.
    RemovedWithSchema,
    /// A database tenant unregistered; its database is left as it is.
    RemovedDatabaseKept,
}

/// The tenant registry of a base schema.
#[derive(Debug, Clone)]
pub struct TenantRegistry {
    pub(super) pool: PgPool,
}

impl TenantRegistry {
    /// The registry reached through `pool` (connected to the base schema).
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Registers `name` with `mode`. A schema tenant's schema is created and
    /// migrated before the row is written, so a registered schema tenant
    /// always has a usable store; a failure half way leaves at most an
    /// unregistered schema that the next `add` finishes. Database tenants
    /// are added with [`TenantRegistry::add_database`].
    pub async fn add(
        &self,
        name: &TenantName,
        mode: TenancyMode,
    ) -> Result<AddOutcome, TenantError> {
        if mode == TenancyMode::Database {
            return Err(TenantError::NeedsUrl(name.to_string()));
        }
        let existing = self.get(name).await?;
        if let Some(info) = &existing {
            if info.mode != mode {
                return Err(TenantError::ModeConflict {
                    name: name.to_string(),
                    existing: info.mode,
                });
            }
        }
        if mode == TenancyMode::Schema {
            if existing.is_none() {
                self.check_schema_name(name).await?;
            }
            self.prepare_schema(name).await?;
        }
        if existing.is_some() {
            return Ok(AddOutcome::AlreadyRegistered);
        }
        let inserted = sqlx::query(
            "INSERT INTO rf_tenants (name, mode) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name.as_str())
        .bind(mode.as_str())
        .execute(&self.pool)
        .await?
        .rows_affected();
        tracing::info!(tenant = %name, %mode, "tenant registered");
        Ok(if inserted == 1 {
            AddOutcome::Added
        } else {
            AddOutcome::AlreadyRegistered
        })
    }

    /// Refuses a schema name that already means something to the server: a
    /// role's name (a session's default `search_path` starts with
    /// `"$user"`, so tools connecting as that role would see the tenant's
    /// store instead of their own) or the base store's schema. `public`,
    /// `information_schema` and `pg_*` are refused with the name itself.
    async fn check_schema_name(&self, name: &TenantName) -> Result<(), TenantError> {
        let (role, base): (bool, bool) = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1), current_schema() = $1",
        )
        .bind(name.as_str())
        .fetch_one(&self.pool)
        .await?;
        let taken_by = if role {
            "a database role"
        } else if base {
            "the base store's schema"
        } else {
            return Ok(());
        };
        Err(TenantError::NameCollides {
            name: name.to_string(),
            taken_by,
        })
    }

    /// Creates the tenant's schema if needed and applies every migration
    /// in it. A schema that already holds tables but no migration history
    /// belongs to someone else and is left alone.
    async fn prepare_schema(&self, name: &TenantName) -> Result<(), TenantError> {
        let (exists, tables, migrated): (bool, i64, bool) = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1),
                    (SELECT count(*) FROM pg_tables WHERE schemaname = $1),
                    EXISTS (SELECT 1 FROM pg_tables
                             WHERE schemaname = $1 AND tablename = '_sqlx_migrations')",
        )
        .bind(name.as_str())
        .fetch_one(&self.pool)
        .await?;
        if exists && tables > 0 && !migrated {
            return Err(TenantError::SchemaTaken(name.to_string()));
        }
        // The name is a validated identifier (SEC-1) and quoted; schema
        // names cannot be bound.
        sqlx::query(&format!(
            "CREATE SCHEMA IF NOT EXISTS {}",
            name.schema().quoted()
        ))
        .execute(&self.pool)
        .await?;
        let pool = schema_pool(&self.pool, name).await?;
        let result = Migrations::apply(&pool).await;
        pool.close().await;
        result.map_err(|source| TenantError::Migrate {
            tenant: name.to_string(),
            source,
        })?;
        Ok(())
    }

    /// Unregisters `name`, which must own no stream: a tenant's events are
    /// never deleted by rillflow. A schema tenant's schema is dropped too
    /// when `drop_schema` is set (with whatever else it holds, read models
    /// included), else left for the operator.
    ///
    /// The check and the removal are one transaction that first locks the
    /// tables streams are created in, so no append can commit a stream in
    /// between. An append that resolved the tenant before the removal and
    /// commits after it still creates its stream, under the tenant's name
    /// (or, for a schema tenant whose schema was kept, in its schema):
    /// registering the tenant again makes that stream reachable.
    pub async fn remove(
        &self,
        name: &TenantName,
        drop_schema: bool,
    ) -> Result<RemoveOutcome, TenantError> {
        let info = self
            .get(name)
            .await?
            .ok_or_else(|| TenantError::Unknown(name.to_string()))?;
        match info.mode {
            TenancyMode::Database if drop_schema => {
                return Err(TenantError::KeepsDatabase(name.to_string()))
            }
            TenancyMode::Database => return self.remove_database(&info, name).await,
            TenancyMode::Conjoined if drop_schema => {
                return Err(TenantError::NoSchema(name.to_string()))
            }
            _ => {}
        }
        let mut tx = self.pool.begin().await?;
        // Appends hold a conflicting lock only for their own short
        // transaction; waiting longer means something is stuck.
        sqlx::query("SET LOCAL lock_timeout = '5s'")
            .execute(&mut *tx)
            .await?;
        let streams: i64 = match info.mode {
            TenancyMode::Conjoined => {
                sqlx::query("LOCK TABLE rf_streams IN SHARE MODE")
                    .execute(&mut *tx)
                    .await?;
                sqlx::query_scalar("SELECT count(*) FROM rf_streams WHERE tenant_id = $1")
                    .bind(name.as_str())
                    .fetch_one(&mut *tx)
                    .await?
            }
            // Handled above, with a transaction on its own server.
            TenancyMode::Database => 0,
            TenancyMode::Schema => {
                let schema = name.schema().quoted();
                let migrated: bool = sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM pg_tables
                                     WHERE schemaname = $1 AND tablename = 'rf_streams')",
                )
                .bind(name.as_str())
                .fetch_one(&mut *tx)
                .await?;
                if migrated {
                    // The schema name is a validated identifier (SEC-1), quoted.
                    sqlx::query(&format!("LOCK TABLE {schema}.rf_streams IN SHARE MODE"))
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query_scalar(&format!("SELECT count(*) FROM {schema}.rf_streams"))
                        .fetch_one(&mut *tx)
                        .await?
                } else {
                    0
                }
            }
        };
        if streams > 0 {
            tx.rollback().await?;
            return Err(TenantError::HasStreams {
                name: name.to_string(),
                streams,
            });
        }
        sqlx::query("DELETE FROM rf_tenants WHERE name = $1")
            .bind(name.as_str())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM rf_archive_tenant_stats WHERE tenant_id = $1")
            .bind(name.as_str())
            .execute(&mut *tx)
            .await?;
        if drop_schema {
            sqlx::query(&format!(
                "DROP SCHEMA IF EXISTS {} CASCADE",
                name.schema().quoted()
            ))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        tracing::info!(tenant = %name, mode = %info.mode, drop_schema, "tenant removed");
        Ok(if drop_schema {
            RemoveOutcome::RemovedWithSchema
        } else {
            RemoveOutcome::Removed
        })
    }

    /// The tenant called `name`, if registered.
    pub async fn get(&self, name: &TenantName) -> Result<Option<TenantInfo>, TenantError> {
        let row: Option<Row> = sqlx::query_as(&format!("{SELECT_TENANTS} WHERE name = $1"))
            .bind(name.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(into_info).transpose()
    }

    /// Every tenant, by name.
    pub async fn list(&self) -> Result<Vec<TenantInfo>, TenantError> {
        let rows: Vec<Row> = sqlx::query_as(&format!("{SELECT_TENANTS} ORDER BY name"))
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(into_info).collect()
    }
}

/// The registry's rows. `url` is read through the row's JSON form so that a
/// registry from before sql/0021 (no such column) still lists its tenants.
const SELECT_TENANTS: &str =
    "SELECT name, mode, created_at, to_jsonb(t) ->> 'url' FROM rf_tenants t";

type Row = (String, String, DateTime<Utc>, Option<String>);

fn into_info((name, mode, created_at, url): Row) -> Result<TenantInfo, TenantError> {
    // The table's CHECK admits only the known modes.
    let mode = mode
        .parse()
        .map_err(|e: rillflow_core::tenant::UnknownTenancyMode| {
            TenantError::Database(sqlx::Error::Decode(e.into()))
        })?;
    Ok(TenantInfo {
        name,
        mode,
        url,
        created_at,
    })
}
