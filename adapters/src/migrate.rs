//! The embedded schema migrations in `sql/`.

use sqlx::migrate::{MigrateError as SqlxMigrateError, Migrator};
use sqlx::PgPool;

static MIGRATOR: Migrator = sqlx::migrate!("../sql");

/// Migration failures.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// More steps to revert than are applied.
    #[error("cannot revert {requested} migrations: only {applied} applied")]
    TooManySteps {
        /// Steps asked for.
        requested: usize,
        /// Steps applied.
        applied: usize,
    },
    /// The database has a migration this binary does not know, or one whose
    /// text changed since it was applied.
    #[error("migration state does not match this binary: {0}")]
    Mismatch(String),
    /// The database failed.
    #[error("migration failed: {0}")]
    Database(#[source] SqlxMigrateError),
}

impl From<SqlxMigrateError> for MigrateError {
    fn from(err: SqlxMigrateError) -> Self {
        match err {
            e @ (SqlxMigrateError::VersionMissing(_)
            | SqlxMigrateError::VersionMismatch(_)
            | SqlxMigrateError::Dirty(_)) => MigrateError::Mismatch(e.to_string()),
            e => MigrateError::Database(e),
        }
    }
}

/// One known migration and whether it is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationState {
    /// Its number.
    pub version: i64,
    /// Its name.
    pub description: String,
    /// Whether the database has it.
    pub applied: bool,
}

/// Applies and reverts the schema.
pub struct Migrations;

impl Migrations {
    /// Applies every pending migration; returns how many ran.
    pub async fn apply(pool: &PgPool) -> Result<usize, MigrateError> {
        let before = Self::applied_versions(pool).await?.len();
        MIGRATOR.run(pool).await?;
        let after = Self::applied_versions(pool).await?.len();
        Ok(after - before)
    }

    /// Reverts the last `steps` applied migrations, newest first. Asking for
    /// more than are applied is an error and reverts nothing.
    pub async fn revert(pool: &PgPool, steps: usize) -> Result<Vec<i64>, MigrateError> {
        let applied = Self::applied_versions(pool).await?;
        if steps > applied.len() {
            return Err(MigrateError::TooManySteps {
                requested: steps,
                applied: applied.len(),
            });
        }
        if steps == 0 {
            return Ok(Vec::new());
        }
        let reverted: Vec<i64> = applied.iter().rev().take(steps).copied().collect();
        let target = applied
            .len()
            .checked_sub(steps + 1)
            .map(|i| applied[i])
            .unwrap_or(0);
        MIGRATOR.undo(pool, target).await?;
        Ok(reverted)
    }

    /// Every migration this binary carries, with its applied state.
    pub async fn status(pool: &PgPool) -> Result<Vec<MigrationState>, MigrateError> {
        let applied = Self::applied_versions(pool).await?;
        Ok(MIGRATOR
            .iter()
            .filter(|m| !m.migration_type.is_down_migration())
            .map(|m| MigrationState {
                version: m.version,
                description: m.description.to_string(),
                applied: applied.contains(&m.version),
            })
            .collect())
    }

    /// Versions applied successfully, ascending.
    async fn applied_versions(pool: &PgPool) -> Result<Vec<i64>, MigrateError> {
        let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
            .fetch_one(pool)
            .await
            .map_err(|e| MigrateError::Database(SqlxMigrateError::Execute(e)))?;
        if !exists {
            return Ok(Vec::new());
        }
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(pool)
            .await
            .map_err(|e| MigrateError::Database(SqlxMigrateError::Execute(e)))
    }
}
