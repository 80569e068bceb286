//! The diagnostics bundle: one JSON document with what support needs to
//! understand a deployment (versions, configuration without secrets,
//! cluster topology and epochs, projection checkpoints, lag and ownership,
//! dead letters, archive state, recent errors, long transactions).
//!
//! Every section is gathered on its own: a bundle is most needed when
//! something is broken, so a section that fails records its error and the
//! others are still filled.

use crate::tenant::TenantRegistry;
use rillflow_core::lease::deductions;
use rillflow_core::lease::health::{evaluate, HealthRules};
use serde_json::{json, Map, Value};
use sqlx::PgPool;

use super::report;
use crate::archive::{ArchiveStats, ArchiveStatus};
use crate::daemon::PgLeaseStore;
use crate::migrate::Migrations;
use crate::projection::ProjectionCatalog;
use crate::secrets::redact_secrets;

/// Builds the bundle from the database behind `pool`. `local` is what the
/// calling process knows of itself, `config` its settings (already
/// redacted with [`redact`]).
pub async fn bundle(pool: &PgPool, local: Value, config: Value) -> Value {
    let mut doc = Map::new();
    doc.insert("rillflow_version".into(), env!("CARGO_PKG_VERSION").into());
    doc.insert("process".into(), local);
    doc.insert("config".into(), config);
    doc.insert("database".into(), section(database(pool).await));
    doc.insert("migrations".into(), section(migrations(pool).await));
    doc.insert("clusters".into(), section(clusters(pool).await));
    doc.insert("projections".into(), section(projections(pool).await));
    doc.insert("dead_letters".into(), section(dead_letters(pool).await));
    doc.insert("archive".into(), section(archive(pool).await));
    doc.insert("tenancy".into(), section(tenancy(pool).await));
    doc.insert("recent_errors".into(), section(recent_errors(pool).await));
    Value::Object(doc)
}

/// Removes secrets from `value`: a URL's password, and every string under a
/// key that names a secret.
pub fn redact(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let lower = k.to_ascii_lowercase();
                    let secret = ["password", "secret", "token", "key"]
                        .iter()
                        .any(|s| lower.contains(s));
                    let v = match v {
                        Value::String(_) if secret => Value::String("[redacted]".into()),
                        other => redact(other),
                    };
                    (k, v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(redact).collect()),
        Value::String(s) => Value::String(redact_secrets(&s)),
        other => other,
    }
}

fn section(result: Result<Value, String>) -> Value {
    result.unwrap_or_else(|error| json!({ "error": error }))
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// pid, application name, state, seconds open, registered appender.
type OpenTransaction = (i32, Option<String>, Option<String>, Option<f64>, bool);

async fn database(pool: &PgPool) -> Result<Value, String> {
    let (version, now, recovery): (String, String, bool) = sqlx::query_as(
        "SELECT current_setting('server_version'), clock_timestamp()::text, pg_is_in_recovery()",
    )
    .fetch_one(pool)
    .await
    .map_err(err)?;
    // An open transaction registered as an appender (sql/0016) holds
    // every reader's horizon back; others, here or in other databases, do
    // not. Their statements are left out, they may carry data.
    let oldest: Vec<OpenTransaction> = sqlx::query_as(
        "SELECT pid, application_name, state,
                extract(epoch FROM clock_timestamp() - xact_start)::float8,
                EXISTS (SELECT 1 FROM pg_locks l
                         WHERE l.pid = a.pid AND l.granted AND l.locktype = 'advisory'
                           AND l.classid = 29286::oid AND l.objid = 1::oid AND l.objsubid = 2)
           FROM pg_stat_activity a
          WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid()
            AND datname = current_database()
          ORDER BY xact_start LIMIT 5",
    )
    .fetch_all(pool)
    .await
    .map_err(err)?;
    Ok(json!({
        "server_version": version,
        "time": now,
        "in_recovery": recovery,
        "oldest_transactions": oldest.into_iter().map(|(pid, app, state, age, appender)| json!({
            "pid": pid, "application_name": app, "state": state, "age_seconds": age,
            "appender": appender,
        })).collect::<Vec<_>>(),
    }))
}

async fn migrations(pool: &PgPool) -> Result<Value, String> {
    let states = Migrations::status(pool).await.map_err(err)?;
    let applied: Vec<i64> = states
        .iter()
        .filter(|m| m.applied)
        .map(|m| m.version)
        .collect();
    let pending: Vec<i64> = states
        .iter()
        .filter(|m| !m.applied)
        .map(|m| m.version)
        .collect();
    Ok(json!({ "applied": applied, "pending": pending }))
}

async fn clusters(pool: &PgPool) -> Result<Value, String> {
    let views = PgLeaseStore::new(pool.clone())
        .cluster_views()
        .await
        .map_err(err)?;
    let healths: Vec<_> = views
        .iter()
        .map(|v| evaluate(v, &HealthRules::for_timing(&v.timing)))
        .collect();
    let scores: Vec<Value> = healths
        .iter()
        .map(|h| json!({ "cluster": h.cluster, "score": h.score, "deductions": deductions(h) }))
        .collect();
    Ok(json!({ "topology": report::hotcold(&healths), "scores": scores }))
}

async fn projections(pool: &PgPool) -> Result<Value, String> {
    let list = ProjectionCatalog::new(pool.clone())
        .list()
        .await
        .map_err(err)?;
    serde_json::to_value(list).map_err(err)
}

async fn dead_letters(pool: &PgPool) -> Result<Value, String> {
    let counts: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT projection, status, count(*) FROM rf_projection_dlq
          GROUP BY projection, status ORDER BY projection, status",
    )
    .fetch_all(pool)
    .await
    .map_err(err)?;
    Ok(Value::Array(
        counts
            .into_iter()
            .map(|(p, s, n)| json!({ "projection": p, "status": s, "count": n }))
            .collect(),
    ))
}

async fn archive(pool: &PgPool) -> Result<Value, String> {
    let status = ArchiveStatus::load(pool).await.map_err(err)?;
    let stats = ArchiveStats::load(pool).await.map_err(err)?;
    Ok(json!({
        "status": status,
        "streams_marked_total": stats.streams_marked,
        "streams_reactivated_total": stats.streams_reactivated,
        "events_moved_total": stats.events_moved,
        "move_batches_total": stats.move_batches,
        "streams_awaiting_move": stats.streams_awaiting_move,
    }))
}

/// The schema this bundle describes and the tenants registered in it (the
/// base schema's registry; a schema tenant's own is empty).
async fn tenancy(pool: &PgPool) -> Result<Value, String> {
    let schema: String = sqlx::query_scalar("SELECT current_schema()")
        .fetch_one(pool)
        .await
        .map_err(err)?;
    let tenants = TenantRegistry::new(pool.clone())
        .list()
        .await
        .map_err(err)?;
    Ok(json!({ "schema": schema, "tenants": tenants }))
}

async fn recent_errors(pool: &PgPool) -> Result<Value, String> {
    let rows: Vec<(String, String, i32, String, String)> = sqlx::query_as(
        "(SELECT 'handler' AS kind, projection, partition_key, last_error,
                 last_error_at::text AS at
            FROM rf_checkpoints WHERE last_error IS NOT NULL)
         UNION ALL
         (SELECT 'dead_letter', projection, partition_key, error, failed_at::text
            FROM rf_projection_dlq)
         ORDER BY at DESC LIMIT 20",
    )
    .fetch_all(pool)
    .await
    .map_err(err)?;
    Ok(Value::Array(
        rows.into_iter()
            .map(|(kind, projection, partition, error, at)| {
                json!({ "kind": kind, "projection": projection, "partition": partition,
                        "error": error, "at": at })
            })
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_leave_urls_and_secret_keys() {
        let v = redact(json!({
            "database_url": "postgres://u:pw@h/d?sslpassword=k",
            "nested": [{ "api_token": "abc", "name": "n" }],
            "password": "x",
        }));
        assert_eq!(
            v,
            json!({
                "database_url": "postgres://u:[redacted]@h/d?sslpassword=[redacted]",
                "nested": [{ "api_token": "[redacted]", "name": "n" }],
                "password": "[redacted]",
            })
        );
    }
}
