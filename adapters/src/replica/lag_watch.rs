//! The read standby's lag, measured in the background for health and
//! metrics (which answer without querying, see `health::snapshot`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus::proto::MetricFamily;
use prometheus::{Gauge, IntCounter, IntGauge, Opts, Registry};
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio::time::Instant;

use super::{ReadReplica, ReplicaLag};

/// How often the lag is measured: as often as the health views refresh.
const EVERY: Duration = Duration::from_secs(2);
/// Longest wait for one measurement.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The last measurement and the metrics made from it.
#[derive(Clone)]
pub struct ReplicaWatch {
    last: Arc<Mutex<Last>>,
    registry: Registry,
}

#[derive(Default)]
struct Last {
    lag: Option<ReplicaLag>,
    at: Option<Instant>,
    error: Option<String>,
    conflicts: u64,
}

struct Gauges {
    bytes: IntGauge,
    seconds: Gauge,
    paused: IntGauge,
    conflicts: IntCounter,
}

impl ReplicaWatch {
    /// Measures `replica` against `primary` now and every 2 s after, until
    /// every clone of the returned watch is dropped.
    pub fn start(replica: ReadReplica, primary: PgPool) -> Self {
        let registry = Registry::new();
        let gauges = Gauges::register(&registry);
        let last = Arc::new(Mutex::new(Last::default()));
        let watch = ReplicaWatch {
            last: last.clone(),
            registry,
        };
        let weak = Arc::downgrade(&last);
        tokio::spawn(async move {
            loop {
                let measured = tokio::time::timeout(TIMEOUT, replica.lag(&primary)).await;
                let Some(shared) = weak.upgrade() else { return };
                {
                    let mut last = shared.lock().expect("not poisoned");
                    match measured {
                        Ok(Ok(lag)) => {
                            gauges.bytes.set(lag.bytes.min(i64::MAX as u64) as i64);
                            gauges.seconds.set(lag.seconds);
                            gauges.paused.set(i64::from(lag.paused));
                            last.lag = Some(lag);
                            last.at = Some(Instant::now());
                            last.error = None;
                        }
                        Ok(Err(e)) => last.error = Some(e.to_string()),
                        Err(_) => last.error = Some(format!("no answer within {TIMEOUT:?}")),
                    }
                    let conflicts = replica.conflicts();
                    gauges
                        .conflicts
                        .inc_by(conflicts.saturating_sub(last.conflicts));
                    last.conflicts = conflicts;
                }
                // Not held while asleep: the watch ends with its last clone.
                drop(shared);
                tokio::time::sleep(EVERY).await;
            }
        });
        watch
    }

    /// The replica's metric families.
    pub fn gather(&self) -> Vec<MetricFamily> {
        self.registry.gather()
    }

    /// The `read_replica` section of the health document.
    pub fn report(&self) -> Value {
        let last = self.last.lock().expect("not poisoned");
        json!({
            "lag_bytes": last.lag.map(|l| l.bytes),
            "lag_seconds": last.lag.map(|l| l.seconds),
            "replay_paused": last.lag.map(|l| l.paused),
            "standby": last.lag.map(|l| l.standby),
            "read_conflicts": last.conflicts,
            "measured_ms_ago": last.at.map(|at| at.elapsed().as_millis() as u64),
            "error": last.error,
        })
    }
}

impl Gauges {
    fn register(registry: &Registry) -> Self {
        let gauges = Gauges {
            bytes: IntGauge::with_opts(Opts::new(
                "rillflow_replica_lag_bytes",
                "WAL the primary has written that the read standby has not replayed yet",
            ))
            .expect("valid metric definition"),
            seconds: Gauge::with_opts(Opts::new(
                "rillflow_replica_lag_seconds",
                "Age of the read standby's newest replayed commit while it has WAL left to replay; 0 when caught up",
            ))
            .expect("valid metric definition"),
            paused: IntGauge::with_opts(Opts::new(
                "rillflow_replica_replay_paused",
                "1 while the read standby's replay is paused",
            ))
            .expect("valid metric definition"),
            conflicts: IntCounter::with_opts(Opts::new(
                "rillflow_replica_read_conflicts_total",
                "Reads the standby cancelled for recovery (each read again from the same checkpoint)",
            ))
            .expect("valid metric definition"),
        };
        let collectors: [Box<dyn prometheus::core::Collector>; 4] = [
            Box::new(gauges.bytes.clone()),
            Box::new(gauges.seconds.clone()),
            Box::new(gauges.paused.clone()),
            Box::new(gauges.conflicts.clone()),
        ];
        for c in collectors {
            registry.register(c).expect("registered once");
        }
        gauges
    }
}
