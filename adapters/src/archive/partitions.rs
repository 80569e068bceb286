//! Monthly partitions of the partitioned backend.

use rillflow_core::archive::{PartitionMonth, Retention};
use rillflow_core::Identifier;
use sqlx::PgPool;

use super::ArchiveError;

/// A partition of `events_hot` or `events_cold`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PartitionInfo {
    /// Table name.
    pub name: String,
    /// `events_hot` or `events_cold`.
    pub parent: String,
    /// The bound as Postgres prints it (`DEFAULT` or `FOR VALUES FROM …`).
    pub bound: String,
    /// Heap, indexes and TOAST.
    pub bytes: i64,
}

/// What `create_month` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartitionOutcome {
    /// The partition was created; `moved_rows` came over from the default
    /// partition.
    Created {
        /// Rows of that month the default partition held.
        moved_rows: u64,
    },
    /// It already existed with those bounds; nothing changed.
    AlreadyExists,
}

/// Creates and lists monthly partitions.
#[derive(Debug, Clone)]
pub struct Partitions {
    pool: PgPool,
}

fn quoted(name: &str) -> String {
    Identifier::parse(name)
        .expect("partition table names are built from validated parts")
        .quoted()
}

impl Partitions {
    /// Partition maintenance on `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Every partition of both tiers, by tier then name.
    pub async fn list(&self) -> Result<Vec<PartitionInfo>, ArchiveError> {
        let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
            "SELECT c.relname::text, p.relname::text, pg_get_expr(c.relpartbound, c.oid),
                    pg_total_relation_size(c.oid)
               FROM pg_inherits i
               JOIN pg_class c ON c.oid = i.inhrelid
               JOIN pg_class p ON p.oid = i.inhparent
              WHERE p.relname IN ('events_hot', 'events_cold')
                AND p.relnamespace = current_schema()::regnamespace
              ORDER BY p.relname, c.relname",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(name, parent, bound, bytes)| PartitionInfo {
                name,
                parent,
                bound,
                bytes,
            })
            .collect())
    }

    /// Creates the `retention` partition for `month`, idempotently.
    ///
    /// Rows of that month already sitting in the tier's default partition
    /// move into the new one in the same transaction, which holds the
    /// default partition against inserts meanwhile (so an append of that
    /// month cannot slip in between and make the attach fail). Appends wait
    /// for it, bounded by the session's lock timeout on either side.
    pub async fn create_month(
        &self,
        retention: Retention,
        month: PartitionMonth,
    ) -> Result<PartitionOutcome, ArchiveError> {
        let name = month.table_name(retention);
        let parent = retention.parent_table();
        let from = month.to_string();
        let to = month.next().to_string();
        let mut tx = self.pool.begin().await?;
        let existing: Option<(Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT p.relname::text, pg_get_expr(c.relpartbound, c.oid)
               FROM pg_class c
               LEFT JOIN pg_inherits i ON i.inhrelid = c.oid
               LEFT JOIN pg_class p ON p.oid = i.inhparent
              WHERE c.relname = $1 AND c.relnamespace = current_schema()::regnamespace",
        )
        .bind(&name)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((existing_parent, bound)) = existing {
            let want = format!("FOR VALUES FROM ('{from}') TO ('{to}')");
            if existing_parent.as_deref() == Some(parent) && bound.as_deref() == Some(&want) {
                return Ok(PartitionOutcome::AlreadyExists);
            }
            return Err(ArchiveError::PartitionNameTaken {
                name,
                parent,
                month: from,
            });
        }
        let (table, parent_q, default_q) = (
            quoted(&name),
            quoted(parent),
            quoted(retention.default_table()),
        );
        sqlx::query(&format!("LOCK TABLE {default_q} IN EXCLUSIVE MODE"))
            .execute(&mut *tx)
            .await?;
        sqlx::query(&format!(
            "CREATE TABLE {table} (LIKE {parent_q} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
        ))
        .execute(&mut *tx)
        .await?;
        let moved = sqlx::query(&format!(
            "WITH moved AS (DELETE FROM {default_q}
                             WHERE bucket_month >= $1::date AND bucket_month < $2::date
                            RETURNING *)
             INSERT INTO {table} SELECT * FROM moved"
        ))
        .bind(&from)
        .bind(&to)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        // Bounds are DDL and cannot be bound; they are printed from a
        // validated month, digits and dashes only.
        sqlx::query(&format!(
            "ALTER TABLE {parent_q} ATTACH PARTITION {table} FOR VALUES FROM ('{from}') TO ('{to}')"
        ))
        .execute(&mut *tx)
        .await
        .map_err(|e| match e.as_database_error() {
            Some(db) if db.code().as_deref() == Some("42P17") => ArchiveError::PartitionRejected {
                name: name.clone(),
                message: db.message().to_owned(),
            },
            _ => ArchiveError::from(e),
        })?;
        tx.commit().await?;
        tracing::info!(partition = %name, moved_rows = moved, "archive partition created");
        Ok(PartitionOutcome::Created { moved_rows: moved })
    }
}
