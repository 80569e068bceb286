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
    /// Whether every count above was counted. Without `--exact`, a figure
    /// past [`COUNT_CAP`] rows is the planner's estimate instead.
    pub exact: bool,
}

/// How many rows a figure is counted to before the planner's estimate
/// stands in for it (sql/0019 `rf_archive_count`): the command then costs
/// the same on any log.
pub const COUNT_CAP: i32 = 10_000;

/// The figures `rf_archive_count` knows, in the order they are read.
const FIGURES: [&str; 7] = [
    "streams",
    "streams_archived",
    "streams_cold",
    "streams_reactivated",
    "events_hot",
    "events_cold",
    "events_archive",
];

/// How the counts of a status are taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counting {
    /// Up to [`COUNT_CAP`] each, estimated beyond: constant cost.
    Bounded,
    /// Every row (`--exact`): cost grows with the tables.
    Exact,
}

/// The size of a partitioned table with everything under it.
const TREE_BYTES: &str = "coalesce((SELECT sum(pg_total_relation_size(relid))::bigint
                                       FROM pg_partition_tree($1::regclass)), 0)";

impl ArchiveStatus {
    /// The whole store's figures, bounded (see [`Counting::Bounded`]).
    pub async fn load(pool: &PgPool) -> Result<Self, ArchiveError> {
        Self::load_for(pool, None, Counting::Bounded).await
    }

    /// Like [`ArchiveStatus::load`], limited to a conjoined tenant's streams
    /// and their events when `tenant` is set. A tenant's figures are always
    /// counted, through its own streams (their index), so they cost that
    /// tenant's share of the store, and the planner has no estimate per
    /// tenant to offer instead.
    pub async fn load_for(
        pool: &PgPool,
        tenant: Option<&TenantName>,
        counting: Counting,
    ) -> Result<Self, ArchiveError> {
        let settings = ArchiveSettings::load(pool).await?;
        let tenant = tenant.map(|t| t.as_str());
        let (counts, exact) = match (tenant, counting) {
            (None, Counting::Bounded) => bounded_counts(pool).await?,
            (None, Counting::Exact) => (whole_counts(pool).await?, true),
            (Some(t), _) => (tenant_counts(pool, t).await?, true),
        };
        let [streams_total, streams_archived, streams_cold, streams_reactivated, events_hot, events_cold_partition, events_archive_table] =
            counts;
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
            exact,
        })
    }
}

/// Every figure up to the cap, estimated beyond, and whether all were
/// counted.
async fn bounded_counts(pool: &PgPool) -> Result<([i64; 7], bool), ArchiveError> {
    let rows: Vec<(i64, bool)> = sqlx::query_as(
        "SELECT a.n, a.exact FROM unnest($1::text[]) WITH ORDINALITY f(name, i)
         CROSS JOIN LATERAL rf_archive_count(f.name, $2) a ORDER BY f.i",
    )
    .bind(FIGURES)
    .bind(COUNT_CAP)
    .fetch_all(pool)
    .await?;
    let mut counts = [0; 7];
    for (slot, (n, _)) in counts.iter_mut().zip(&rows) {
        *slot = *n;
    }
    Ok((counts, rows.iter().all(|(_, exact)| *exact)))
}

/// Every figure counted in full.
async fn whole_counts(pool: &PgPool) -> Result<[i64; 7], ArchiveError> {
    let (a, b, c, d, e, f, g) = sqlx::query_as(
        "SELECT count(*),
                count(*) FILTER (WHERE archived_at IS NOT NULL),
                count(*) FILTER (WHERE retention_class = 'cold'),
                count(*) FILTER (WHERE reactivated_at IS NOT NULL AND archived_at IS NULL),
                (SELECT count(*) FROM events_hot),
                (SELECT count(*) FROM events_cold),
                (SELECT count(*) FROM events_archive)
           FROM rf_streams",
    )
    .fetch_one(pool)
    .await?;
    Ok([a, b, c, d, e, f, g])
}

/// A conjoined tenant's figures, counted through its streams (its index),
/// so the count costs the tenant's share, not the whole table.
async fn tenant_counts(pool: &PgPool, tenant: &str) -> Result<[i64; 7], ArchiveError> {
    let (a, b, c, d, e, f, g) = sqlx::query_as(
        "WITH mine AS (SELECT stream_id, archived_at, retention_class, reactivated_at
                         FROM rf_streams WHERE tenant_id = $1)
         SELECT (SELECT count(*) FROM mine),
                (SELECT count(*) FROM mine WHERE archived_at IS NOT NULL),
                (SELECT count(*) FROM mine WHERE retention_class = 'cold'),
                (SELECT count(*) FROM mine WHERE reactivated_at IS NOT NULL AND archived_at IS NULL),
                (SELECT count(*) FROM events_hot e JOIN mine USING (stream_id)),
                (SELECT count(*) FROM events_cold e JOIN mine USING (stream_id)),
                (SELECT count(*) FROM events_archive e JOIN mine USING (stream_id))",
    )
    .bind(tenant)
    .fetch_one(pool)
    .await?;
    Ok([a, b, c, d, e, f, g])
}

/// Bytes of `table` and all its partitions.
pub(crate) async fn tree_bytes(pool: &PgPool, table: &str) -> Result<i64, ArchiveError> {
    Ok(sqlx::query_scalar(&format!("SELECT {TREE_BYTES}"))
        .bind(table)
        .fetch_one(pool)
        .await?)
}
