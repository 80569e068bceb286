//! The answers to `GET /` and `GET /metrics`, built from the snapshot only:
//! no request waits on the database.

use serde_json::{Map, Value};
use tokio::time::Instant;

use super::freshness_metrics::freshness_families;
use super::server::HealthSource;
use super::snapshot::HealthSnapshot;
use super::{metrics, report};

/// The health document and whether it is a failure (served as 503).
///
/// The rule, which docs/hotcold.md states for operators:
/// - until both views the document judges from (clusters and projections)
///   have been read once, it is today's failure document, `status` `error`
///   (a verdict over projections never seen would claim a lag it does not
///   know);
/// - after that, `status` comes from the last values read, however old:
///   an old value is marked `stale` in `freshness` but never fails the probe
///   by itself, since a slow query says nothing about the cluster;
/// - `unhealthy` (a projection lagging beyond `max_lag`) answers 503 as
///   before.
pub fn health(snapshot: &HealthSnapshot, source: &dyn HealthSource, now: Instant) -> (bool, Value) {
    let views = snapshot.freshness(now);
    let freshness: Map<String, Value> = views
        .iter()
        .map(|(name, f, _)| ((*name).to_owned(), f.to_json()))
        .collect();
    let clusters = snapshot.clusters.borrow().value.clone();
    let projections = snapshot.projections.borrow().value.clone();
    let (failed, mut doc) = match (clusters, projections) {
        (Some(clusters), Some(projections)) => {
            let doc = report::document(source.local(), &clusters, &projections, source.max_lag());
            (doc["status"] == "unhealthy", doc)
        }
        (clusters, _) => {
            // The first view missing (freshness comes in `VIEW_NAMES`
            // order: clusters, then projections), with why its read failed.
            let (name, f, _) = &views[usize::from(clusters.is_some())];
            let why = f.error.as_deref().unwrap_or("not read yet");
            (
                true,
                report::failure(source.local(), &format!("{name}: {why}")),
            )
        }
    };
    doc["freshness"] = Value::Object(freshness);
    (failed, doc)
}

/// The Prometheus text: every view's families from its last value (a view
/// never read leaves its families out rather than reporting zeros), this
/// process's own families, and how fresh each view is.
pub fn metrics(snapshot: &HealthSnapshot, source: &dyn HealthSource, now: Instant) -> String {
    let clusters = snapshot.clusters.borrow().value.clone().unwrap_or_default();
    let projections = snapshot
        .projections
        .borrow()
        .value
        .clone()
        .unwrap_or_default();
    let archive = snapshot.archive.borrow().value.clone().flatten();
    let mut local = source.local_metrics();
    local.extend(freshness_families(&snapshot.freshness(now)));
    metrics::render(
        &clusters,
        &projections,
        archive.as_ref(),
        local,
        source.tenant().as_deref(),
    )
}
