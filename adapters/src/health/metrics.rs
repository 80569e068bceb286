//! Prometheus exposition of cluster and projection health, built from the
//! database's view.

use prometheus::proto::{LabelPair, MetricFamily};
use prometheus::{Encoder, GaugeVec, IntGaugeVec, Opts, Registry, TextEncoder};
use rillflow_core::lease::health::ClusterHealth;

use super::archive_metrics::{add_archive, move_duration_family};
use super::projection_metrics::add_projections;
use crate::archive::ArchiveStats;
use crate::projection::ProjectionStatus;

/// Renders every cluster's and projection's health, the archive counters
/// (when known), plus this process's own `local` families, in the
/// Prometheus text format.
///
/// A fresh registry per scrape: the figures are the database's last view
/// (the health server's snapshot, or a query just made for the CLI), so a
/// node that dropped out of the view drops out of the metrics too, and no
/// process keeps series the database no longer reports. The encoder writes one `# HELP`
/// and `# TYPE` line per metric family, whatever the number of label sets.
pub fn render(
    clusters: &[ClusterHealth],
    projections: &[ProjectionStatus],
    archive: Option<&ArchiveStats>,
    local: Vec<MetricFamily>,
    tenant: Option<&str>,
) -> String {
    let registry = Registry::new();
    add_clusters(&registry, clusters);
    add_projections(&registry, projections);
    if let Some(stats) = archive {
        add_archive(&registry, stats);
    }
    let mut families = registry.gather();
    families.extend(archive.map(move_duration_family));
    // Process-local families have names of their own, so no family is
    // written twice.
    families.extend(local);
    families.sort_by(|a, b| a.name().cmp(b.name()));
    if let Some(tenant) = tenant {
        label_all(&mut families, "tenant", tenant);
    }
    let mut out = Vec::new();
    TextEncoder::new()
        .encode(&families, &mut out)
        .expect("text encoding into memory cannot fail");
    String::from_utf8(out).expect("the text format is UTF-8")
}

/// Adds the label `name="value"` to every series: a process scoped to one
/// tenant reports everything it sees as that tenant's, so the series of
/// several tenants' daemons scraped into one Prometheus stay apart.
fn label_all(families: &mut [MetricFamily], name: &str, value: &str) {
    for family in families {
        for metric in family.mut_metric().iter_mut() {
            // A series that already names its tenant (a conjoined tenant's
            // share) keeps it; a label may appear only once.
            if metric.get_label().iter().any(|l| l.name() == name) {
                continue;
            }
            let mut pair = LabelPair::default();
            pair.set_name(name.to_owned());
            pair.set_value(value.to_owned());
            let mut labels = metric.take_label();
            labels.push(pair);
            metric.set_label(labels);
        }
    }
}

/// Adds the `daemon_*` families of every cluster to `registry`.
fn add_clusters(registry: &Registry, clusters: &[ClusterHealth]) {
    let cluster_gauge = |name: &str, help: &str| {
        let g =
            IntGaugeVec::new(Opts::new(name, help), &["cluster"]).expect("valid metric definition");
        registry
            .register(Box::new(g.clone()))
            .expect("metric registered once");
        g
    };
    let node_gauge = |name: &str, help: &str| {
        let g = GaugeVec::new(Opts::new(name, help), &["cluster", "node"])
            .expect("valid metric definition");
        registry
            .register(Box::new(g.clone()))
            .expect("metric registered once");
        g
    };
    let healthy = cluster_gauge(
        "daemon_cluster_healthy",
        "1 when the cluster has exactly one valid hot node and enough standbys",
    );
    let standbys = cluster_gauge("daemon_cluster_standby_nodes", "Live cold standby nodes");
    let required = cluster_gauge(
        "daemon_cluster_required_standbys",
        "Standbys the operator requires (min_cold_standbys)",
    );
    let hot = cluster_gauge(
        "daemon_cluster_hot_nodes",
        "Nodes holding a valid lease (0 or 1)",
    );
    let nodes = cluster_gauge(
        "daemon_cluster_nodes",
        "Nodes reported (dead nodes drop out a few seconds after their lease)",
    );
    let score = cluster_gauge("daemon_cluster_health_score", "Health score from 0 to 100");
    let epoch = cluster_gauge(
        "daemon_cluster_epoch",
        "Fencing epoch of the current or last lease",
    );
    let node_hot = node_gauge("daemon_node_hot", "1 for the node holding the valid lease");
    let heartbeat_age = node_gauge(
        "daemon_node_heartbeat_age_seconds",
        "Seconds since the node's last heartbeat (database clock)",
    );
    let lease = node_gauge(
        "daemon_node_lease_seconds",
        "Seconds of lease left for the hot node (database clock), 0 for others",
    );

    for c in clusters {
        let l = [c.cluster.as_str()];
        healthy.with_label_values(&l).set(i64::from(c.healthy));
        standbys
            .with_label_values(&l)
            .set(i64::from(c.standby_nodes));
        required
            .with_label_values(&l)
            .set(i64::from(c.min_cold_standbys));
        hot.with_label_values(&l).set(i64::from(c.hot_nodes));
        nodes.with_label_values(&l).set(i64::from(c.total_nodes));
        score.with_label_values(&l).set(i64::from(c.score));
        epoch
            .with_label_values(&l)
            .set(i64::try_from(c.epoch).unwrap_or(i64::MAX));
        for n in &c.nodes {
            let l = [c.cluster.as_str(), n.name.as_str()];
            node_hot
                .with_label_values(&l)
                .set(if n.hot { 1.0 } else { 0.0 });
            heartbeat_age
                .with_label_values(&l)
                .set(n.heartbeat_age_ms as f64 / 1000.0);
            let remaining = n.lease_remaining_ms.filter(|_| n.hot).unwrap_or(0).max(0);
            lease.with_label_values(&l).set(remaining as f64 / 1000.0);
        }
    }
}
