//! Marking streams archived and reactivating them.

use chrono::{DateTime, Utc};
use rillflow_core::tenant::TenantName;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::mover::owned_by;
use super::ArchiveError;

/// What `mark` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarkOutcome {
    /// The stream is archived from now on.
    Marked {
        /// When, by the database's clock.
        at: DateTime<Utc>,
    },
    /// It already was; nothing changed (the first reason and author stay).
    AlreadyArchived {
        /// Since when.
        since: DateTime<Utc>,
    },
}

/// What `reactivate` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReactivateOutcome {
    /// New appends go to hot storage again; cold events stay cold.
    Reactivated,
    /// The stream was not archived; nothing changed.
    NotArchived,
}

/// Archive lifecycle of individual streams.
///
/// Both operations lock the stream's head row, the row every append to the
/// stream locks first, so an append sees the stream either before or after
/// the change, never halfway. The counters behind `archive_streams_*_total`
/// move in the same transaction.
#[derive(Debug, Clone)]
pub struct StreamLifecycle {
    pool: PgPool,
    tenant: Option<TenantName>,
}

impl StreamLifecycle {
    /// Lifecycle operations on `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool, tenant: None }
    }

    /// The same operations limited to a conjoined tenant's streams: a
    /// stream of anyone else is refused and left as it was.
    pub fn for_tenant(self, tenant: Option<TenantName>) -> Self {
        Self { tenant, ..self }
    }

    /// Locks the stream's head and checks it is in scope; `None` when no
    /// such stream exists.
    async fn lock_head(
        &self,
        conn: &mut PgConnection,
        stream: Uuid,
    ) -> Result<Option<Head>, ArchiveError> {
        let row: Option<(Option<DateTime<Utc>>, String, Option<String>)> = sqlx::query_as(
            "SELECT archived_at, retention_class, tenant_id
               FROM rf_streams WHERE stream_id = $1 FOR UPDATE",
        )
        .bind(stream)
        .fetch_optional(&mut *conn)
        .await?;
        match row {
            None => Ok(None),
            Some((_, _, owner)) if !owned_by(owner.as_deref(), self.tenant.as_ref()) => {
                Err(ArchiveError::OtherTenant {
                    stream,
                    tenant: self
                        .tenant
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                })
            }
            Some((archived_at, class, owner)) => Ok(Some(Head {
                archived_at,
                class,
                owner,
            })),
        }
    }

    /// Marks `stream` archived with a reason and an author.
    pub async fn mark(
        &self,
        stream: Uuid,
        reason: &str,
        by: &str,
    ) -> Result<MarkOutcome, ArchiveError> {
        let mut tx = self.pool.begin().await?;
        let head = self.lock_head(&mut tx, stream).await?;
        match head {
            None => Err(ArchiveError::UnknownStream(stream)),
            Some(Head {
                archived_at: Some(since),
                ..
            }) => Ok(MarkOutcome::AlreadyArchived { since }),
            Some(Head { owner, .. }) => {
                let at: DateTime<Utc> = sqlx::query_scalar(
                    "UPDATE rf_streams
                        SET archived_at = now(), archived_by = $2, archive_reason = $3
                      WHERE stream_id = $1
                  RETURNING archived_at",
                )
                .bind(stream)
                .bind(by)
                .bind(reason)
                .fetch_one(&mut *tx)
                .await?;
                sqlx::query("UPDATE rf_archive_stats SET streams_marked = streams_marked + 1")
                    .execute(&mut *tx)
                    .await?;
                count_for_tenant(&mut tx, owner.as_deref(), TenantCounter::Marked).await?;
                tx.commit().await?;
                tracing::info!(%stream, reason, by, tenant = self.tenant.as_ref().map(TenantName::as_str), "stream marked archived");
                Ok(MarkOutcome::Marked { at })
            }
        }
    }

    /// Reactivates `stream`: it is no longer archived and its retention
    /// class is hot, so appends land in hot storage on both backends.
    /// Events already moved stay cold and are still read with archived
    /// data; nothing is copied back, so nothing can be duplicated.
    pub async fn reactivate(&self, stream: Uuid) -> Result<ReactivateOutcome, ArchiveError> {
        let mut tx = self.pool.begin().await?;
        let head = self.lock_head(&mut tx, stream).await?;
        match head {
            None => Err(ArchiveError::UnknownStream(stream)),
            Some(Head {
                archived_at: None,
                class,
                ..
            }) if class == "hot" => Ok(ReactivateOutcome::NotArchived),
            Some(Head { owner, .. }) => {
                sqlx::query(
                    "UPDATE rf_streams
                        SET archived_at = NULL, archived_by = NULL, archive_reason = NULL,
                            retention_class = 'hot', reactivated_at = now()
                      WHERE stream_id = $1",
                )
                .bind(stream)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "UPDATE rf_archive_stats SET streams_reactivated = streams_reactivated + 1",
                )
                .execute(&mut *tx)
                .await?;
                count_for_tenant(&mut tx, owner.as_deref(), TenantCounter::Reactivated).await?;
                tx.commit().await?;
                tracing::info!(%stream, tenant = self.tenant.as_ref().map(TenantName::as_str), "stream reactivated");
                Ok(ReactivateOutcome::Reactivated)
            }
        }
    }
}

/// A stream's head as the lifecycle operations read it under its lock.
struct Head {
    archived_at: Option<DateTime<Utc>>,
    class: String,
    owner: Option<String>,
}

/// Which per-tenant counter an operation moves.
#[derive(Clone, Copy)]
enum TenantCounter {
    Marked,
    Reactivated,
}

/// Counts the operation against the stream's conjoined tenant, if it has
/// one, in the transaction that does it.
async fn count_for_tenant(
    conn: &mut PgConnection,
    owner: Option<&str>,
    counter: TenantCounter,
) -> Result<(), ArchiveError> {
    let Some(owner) = owner else {
        return Ok(());
    };
    let (marked, reactivated) = match counter {
        TenantCounter::Marked => (1i64, 0i64),
        TenantCounter::Reactivated => (0, 1),
    };
    sqlx::query(
        "INSERT INTO rf_archive_tenant_stats AS t (tenant_id, streams_marked, streams_reactivated)
         VALUES ($1, $2, $3)
         ON CONFLICT (tenant_id) DO UPDATE
            SET streams_marked = t.streams_marked + EXCLUDED.streams_marked,
                streams_reactivated = t.streams_reactivated + EXCLUDED.streams_reactivated",
    )
    .bind(owner)
    .bind(marked)
    .bind(reactivated)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
