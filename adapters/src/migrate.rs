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
    /// The migrations built into this binary, up scripts only: version and
    /// checksum. What a binary applies is what it was built with, whatever
    /// `sql/` holds now (test harnesses name their template databases
    /// after this).
    pub fn embedded() -> Vec<(i64, Vec<u8>)> {
        MIGRATOR
            .iter()
            .filter(|m| m.migration_type.is_up_migration())
            .map(|m| (m.version, m.checksum.to_vec()))
            .collect()
    }

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
        let applied = Self::applied_with_room(pool, steps).await?;
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

    /// What reverting the last `steps` applied migrations would throw
    /// away: the tables they drop that hold rows, and the columns they drop
    /// (from tables that stay) that hold values. Found by running their
    /// down scripts in a transaction that is rolled back, so it follows the
    /// scripts as they are; nothing changes. Counts stop at
    /// [`LOSS_COUNT_LIMIT`] + 1.
    pub async fn loss(pool: &PgPool, steps: usize) -> Result<Vec<Loss>, MigrateError> {
        let applied = Self::applied_with_room(pool, steps).await?;
        let exec = |e| MigrateError::Database(SqlxMigrateError::Execute(e));
        let mut tx = pool.begin().await.map_err(exec)?;
        let before = columns(&mut tx).await.map_err(exec)?;
        for version in applied.iter().rev().take(steps) {
            let down = MIGRATOR
                .iter()
                .find(|m| m.version == *version && m.migration_type.is_down_migration())
                .ok_or_else(|| MigrateError::Mismatch(format!("no down script for {version}")))?;
            sqlx::raw_sql(&down.sql)
                .execute(&mut *tx)
                .await
                .map_err(exec)?;
        }
        let after = columns(&mut tx).await.map_err(exec)?;
        tx.rollback().await.map_err(exec)?;

        let kept_tables: std::collections::BTreeSet<&str> =
            after.iter().map(|c| c.table.as_str()).collect();
        let mut lost = Vec::new();
        let mut seen_tables = std::collections::BTreeSet::new();
        for col in before.iter().filter(|c| !after.contains(c)) {
            let whole = !kept_tables.contains(col.table.as_str());
            if whole && !seen_tables.insert(col.table.clone()) {
                continue;
            }
            let seeded = SEEDED.iter().find(|(t, _)| whole && *t == col.table);
            let filter = match seeded {
                Some((_, beyond_seed)) => format!(" WHERE {beyond_seed}"),
                None if whole => String::new(),
                None => format!(" WHERE {} IS NOT NULL", col.quoted_column),
            };
            let rows: i64 = sqlx::query_scalar(&format!(
                "SELECT count(*) FROM (SELECT 1 FROM {}{filter} LIMIT {}) s",
                col.quoted_table,
                LOSS_COUNT_LIMIT + 1
            ))
            .fetch_one(pool)
            .await
            .map_err(exec)?;
            if rows > 0 {
                lost.push(Loss {
                    table: col.table.clone(),
                    column: (!whole).then(|| col.column.clone()),
                    rows,
                });
            }
        }
        Ok(lost)
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

    /// The applied versions, ascending, when at least `steps` are applied.
    async fn applied_with_room(pool: &PgPool, steps: usize) -> Result<Vec<i64>, MigrateError> {
        let applied = Self::applied_versions(pool).await?;
        if steps > applied.len() {
            return Err(MigrateError::TooManySteps {
                requested: steps,
                applied: applied.len(),
            });
        }
        Ok(applied)
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

/// Tables a migration fills with one row of defaults, and when that row
/// holds more than its seed: dropping the seed alone loses nothing, since
/// applying the migration again makes it anew.
const SEEDED: &[(&str, &str)] = &[
    ("rf_archive_settings", "backend <> 'dual-table'"),
    (
        "rf_archive_stats",
        "streams_marked + streams_reactivated + events_moved + move_batches > 0",
    ),
];

/// Counts of lost rows stop here ("more than" beyond).
pub const LOSS_COUNT_LIMIT: i64 = 1_000_000;

/// Data a revert would drop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loss {
    /// The table.
    pub table: String,
    /// The column, when only it goes and the table stays.
    pub column: Option<String>,
    /// Rows (or, for a column, values that are not NULL), counted up to
    /// [`LOSS_COUNT_LIMIT`] + 1.
    pub rows: i64,
}

impl std::fmt::Display for Loss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = if self.rows > LOSS_COUNT_LIMIT {
            format!("more than {LOSS_COUNT_LIMIT}")
        } else {
            self.rows.to_string()
        };
        let plural = if self.rows == 1 { "" } else { "s" };
        match &self.column {
            None => write!(f, "table {} ({count} row{plural})", self.table),
            Some(c) => write!(f, "column {}.{c} ({count} value{plural})", self.table),
        }
    }
}

/// A column of a table in the session's schema, named and quoted by the
/// server (names come from the catalog, never from input).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
struct CatalogColumn {
    table: String,
    column: String,
    quoted_table: String,
    quoted_column: String,
}

/// The columns of the schema's tables (partitions left out: their rows are
/// their parent's).
async fn columns(conn: &mut sqlx::PgConnection) -> Result<Vec<CatalogColumn>, sqlx::Error> {
    sqlx::query_as(
        "SELECT c.relname::text AS table, a.attname::text AS column,
                format('%I.%I', n.nspname, c.relname) AS quoted_table,
                format('%I', a.attname) AS quoted_column
           FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
           JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
          WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition
            AND c.relname <> '_sqlx_migrations'
          ORDER BY 1, 2",
    )
    .fetch_all(conn)
    .await
}
