//! `archive status`: the hot and cold tiers as the database holds them.

use rillflow_core::tenant::TenantName;
use sqlx::PgPool;

use super::{ArchiveError, ArchiveSettings, PartitionInfo, Partitions};

/// Streams and events per tier, sizes, settings and partitions.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ArchiveStatus {
    /// The conjoined tenant the figures are limited to, if any.
    pub tenant: Option<String>,
    /// `dual-table` or `partitioned`.
    pub backend: String,
    /// Whether appends to archived streams go to `events_archive`.
    pub redirect: bool,
    /// Every stream.
    pub streams_total: i64,
    /// Streams archived now (marked, moved or not).
    pub streams_archived: i64,
    /// Streams whose events were all moved cold.
    pub streams_cold: i64,
    /// Streams archived once and reactivated since.
    pub streams_reactivated: i64,
    /// Events in hot storage (`events_hot`).
    pub events_hot: i64,
    /// Events in the cold partition (`events_cold`).
    pub events_cold_partition: i64,
    /// Events in `events_archive`.
    pub events_archive_table: i64,
    /// Bytes of hot storage, indexes included (whole-table figures; not
    /// given for a conjoined tenant, whose rows share the tables).
    pub hot_bytes: Option<i64>,
    /// Bytes of the cold partition.
    pub cold_partition_bytes: Option<i64>,
    /// Bytes of `events_archive`.
    pub archive_table_bytes: Option<i64>,
    /// Partitions of both tiers.
    pub partitions: Vec<PartitionInfo>,
}

/// The size of a partitioned table with everything under it.
const TREE_BYTES: &str = "coalesce((SELECT sum(pg_total_relation_size(relid))::bigint
                                       FROM pg_partition_tree($1::regclass)), 0)";

impl ArchiveStatus {
    /// Reads everything in one snapshot-consistent pass per figure group.
    /// Counts are exact: this is an operator's command, not a scrape.
    pub async fn load(pool: &PgPool) -> Result<Self, ArchiveError> {
        Self::load_for(pool, None).await
    }

    /// Like [`ArchiveStatus::load`], limited to a conjoined tenant's streams
    /// and their events when `tenant` is set.
    pub async fn load_for(
        pool: &PgPool,
        tenant: Option<&TenantName>,
    ) -> Result<Self, ArchiveError> {
        let settings = ArchiveSettings::load(pool).await?;
        let tenant = tenant.map(|t| t.as_str());
        let (streams_total, streams_archived, streams_cold, streams_reactivated): (
            i64,
            i64,
            i64,
            i64,
        ) = sqlx::query_as(
            "SELECT count(*),
                    count(*) FILTER (WHERE archived_at IS NOT NULL),
                    count(*) FILTER (WHERE retention_class = 'cold'),
                    count(*) FILTER (WHERE reactivated_at IS NOT NULL AND archived_at IS NULL)
               FROM rf_streams
              WHERE $1::text IS NULL OR tenant_id = $1",
        )
        .bind(tenant)
        .fetch_one(pool)
        .await?;
        let (events_hot, events_cold_partition, events_archive_table): (i64, i64, i64) =
            match tenant {
                None => {
                    sqlx::query_as(
                        "SELECT (SELECT count(*) FROM events_hot),
                                (SELECT count(*) FROM events_cold),
                                (SELECT count(*) FROM events_archive)",
                    )
                    .fetch_one(pool)
                    .await?
                }
                // Through the tenant's streams (its index), so the count
                // costs the tenant's share, not the whole table.
                Some(t) => {
                    sqlx::query_as(
                        "WITH mine AS (SELECT stream_id FROM rf_streams WHERE tenant_id = $1)
                         SELECT (SELECT count(*) FROM events_hot e JOIN mine USING (stream_id)),
                                (SELECT count(*) FROM events_cold e JOIN mine USING (stream_id)),
                                (SELECT count(*) FROM events_archive e JOIN mine USING (stream_id))",
                    )
                    .bind(t)
                    .fetch_one(pool)
                    .await?
                }
            };
        let (hot_bytes, cold_partition_bytes, archive_table_bytes) = match tenant {
            Some(_) => (None, None, None),
            None => (
                Some(tree_bytes(pool, "events_hot").await?),
                Some(tree_bytes(pool, "events_cold").await?),
                Some(
                    sqlx::query_scalar("SELECT pg_total_relation_size('events_archive'::regclass)")
                        .fetch_one(pool)
                        .await?,
                ),
            ),
        };
        Ok(Self {
            tenant: tenant.map(str::to_owned),
            backend: settings.backend.to_string(),
            redirect: settings.redirect,
            streams_total,
            streams_archived,
            streams_cold,
            streams_reactivated,
            events_hot,
            events_cold_partition,
            events_archive_table,
            hot_bytes,
            cold_partition_bytes,
            archive_table_bytes,
            partitions: Partitions::new(pool.clone()).list().await?,
        })
    }
}

/// Bytes of `table` and all its partitions.
pub(crate) async fn tree_bytes(pool: &PgPool, table: &str) -> Result<i64, ArchiveError> {
    Ok(sqlx::query_scalar(&format!("SELECT {TREE_BYTES}"))
        .bind(table)
        .fetch_one(pool)
        .await?)
}
