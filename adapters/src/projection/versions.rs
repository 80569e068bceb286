//! Versioned read models: a rebuild fills `<table>_v<N+1>` beside the live
//! `<table>_v<N>` while readers keep using the view `<table>`; once the new
//! version has caught up, one transaction points the views at it and drops
//! the old tables. Names reach SQL only as validated, quoted identifiers.

use rillflow_core::Identifier;
use sqlx::{PgConnection, Row};

use super::handler::{HandlerError, Projection};

/// A projection's live version and the one being built, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Versions {
    /// What readers see.
    pub active: u32,
    /// What a rebuild is filling.
    pub building: Option<u32>,
}

/// The versions of `name`; version 1 alone when it was never registered.
pub async fn versions(conn: &mut PgConnection, name: &str) -> Result<Versions, sqlx::Error> {
    let row =
        sqlx::query("SELECT active_version, building_version FROM rf_projections WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(match row {
        None => Versions {
            active: 1,
            building: None,
        },
        Some(r) => Versions {
            active: r.try_get::<i32, _>("active_version")?.max(1) as u32,
            building: r
                .try_get::<Option<i32>, _>("building_version")?
                .map(|v| v.max(1) as u32),
        },
    })
}

/// `"<table>"` and `"<table>_v<version>"`, quoted, after validating the name.
fn names(table: &str, version: u32) -> Result<(String, String), HandlerError> {
    let t =
        Identifier::parse(table).map_err(|e| HandlerError::new(format!("versioned table: {e}")))?;
    let physical = Identifier::parse(&format!("{}_v{version}", t.as_str()))
        .map_err(|e| HandlerError::new(format!("versioned table: {e}")))?;
    Ok((
        format!("\"{}\"", t.as_str()),
        format!("\"{}\"", physical.as_str()),
    ))
}

/// Points each view `<table>` at `<table>_v<version>` (creating it if need
/// be), inside the caller's transaction.
pub async fn point_views(
    conn: &mut PgConnection,
    projection: &dyn Projection,
    version: u32,
) -> Result<(), HandlerError> {
    for table in projection.versioned_tables() {
        let (view, physical) = names(&table, version)?;
        // Dropped and created rather than replaced: a rebuild may change
        // the columns, which CREATE OR REPLACE VIEW refuses.
        sqlx::query(&format!("DROP VIEW IF EXISTS {view}"))
            .execute(&mut *conn)
            .await?;
        sqlx::query(&format!("CREATE VIEW {view} AS SELECT * FROM {physical}"))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Finishes a rebuild of `projection` to `version` if every partition of
/// that version has caught up: in the caller's transaction (fenced in
/// hot/cold mode) it locks the projection's row and every checkpoint row,
/// so no batch of either version runs meanwhile, checks that no event is
/// left after any checkpoint of `version`, points the views at it, drops
/// the old version's tables, checkpoints and dead letters, and makes it the
/// active version. Returns whether it switched.
pub async fn switch_if_caught_up(
    conn: &mut PgConnection,
    projection: &dyn Projection,
    version: u32,
) -> Result<bool, HandlerError> {
    let name = projection.name();
    let row = sqlx::query(
        "SELECT active_version, building_version FROM rf_projections WHERE name = $1 FOR UPDATE",
    )
    .bind(name)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(false);
    };
    let active: i32 = row.try_get("active_version")?;
    let building: Option<i32> = row.try_get("building_version")?;
    if building != Some(version as i32) {
        return Ok(false);
    }
    sqlx::query("SELECT 1 FROM rf_checkpoints WHERE projection = $1 ORDER BY model_version, partition_key FOR UPDATE")
        .bind(name)
        .execute(&mut *conn)
        .await?;
    let behind: bool = sqlx::query_scalar(BEHIND)
        .bind(name)
        .bind(version as i32)
        .fetch_one(&mut *conn)
        .await?;
    if behind {
        return Ok(false);
    }
    point_views(conn, projection, version).await?;
    for table in projection.versioned_tables() {
        let (_, old) = names(&table, active.max(1) as u32)?;
        sqlx::query(&format!("DROP TABLE IF EXISTS {old}"))
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query("DELETE FROM rf_checkpoints WHERE projection = $1 AND model_version <> $2")
        .bind(name)
        .bind(version as i32)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM rf_projection_dlq WHERE projection = $1 AND model_version <> $2")
        .bind(name)
        .bind(version as i32)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "UPDATE rf_projections SET active_version = $2, building_version = NULL, updated_at = clock_timestamp()
         WHERE name = $1",
    )
    .bind(name)
    .bind(version as i32)
    .execute(&mut *conn)
    .await?;
    tracing::info!(
        projection = name,
        version,
        "rebuilt version caught up; readers switched to it"
    );
    Ok(true)
}

/// Whether any partition of version $2 has an event after its checkpoint.
/// Each checkpoint looks at no more than 1,000 index entries per tier
/// (sql/0019); a partition whose sample ran out before its own events were
/// found counts as behind, so the answer errs towards waiting.
const BEHIND: &str = "
SELECT EXISTS (
    SELECT 1 FROM rf_checkpoints c JOIN rf_projections p ON p.name = c.projection
    CROSS JOIN LATERAL rf_projection_lag(c.tx_id, c.position, p.total_partitions, c.partition_key, 1000) l
    WHERE c.projection = $1 AND c.model_version = $2
      AND (l.lag > 0 OR NOT l.exact))";
