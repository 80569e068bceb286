//! Noticing, from a running daemon, that the database's history changed
//! under it: a promotion (the WAL timeline moved on) or a checkpoint whose
//! event is gone (the log lost what a read model already applied).
//!
//! What it does about them is say so: a warning or an error in the log and
//! `rillflow_log_divergences_total{kind}` in this process's metrics. Safety
//! does not wait for it. After a lossy failover the lease rows roll back
//! with everything else, and a node may still hold an epoch the old primary
//! granted after the standby's last replayed commit. Every batch is fenced
//! by its epoch in its own transaction (LEASE-1, PROJ-4), and since each
//! timeline's epochs start above the last's (`rf_epoch_floor()`, sql/0020)
//! no other node can be granted that epoch again: the node's next batch is
//! refused and its next renewal fails, which demotes it (or makes it give
//! its partitions up) through the lease machine as for any lost lease. The
//! re-check of the leases is therefore the heartbeat's renewal itself,
//! within one heartbeat; this watch adds the explanation.
//!
//! A vanished checkpoint cannot happen when checkpoints and events live in
//! one database (they roll back together). It can when they do not (events
//! read from another server than the one checkpoints are written to), and
//! then the projection has applied events the log no longer holds and
//! would skip the new events that took their positions: an operator must
//! rebuild it or reset its checkpoint. The watch takes the two pools apart
//! for that reason.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use prometheus::proto::MetricFamily;
use prometheus::{IntCounterVec, Opts, Registry};
use rillflow_core::log_history::timeline_changed;
use rillflow_core::GlobalCursor;
use sqlx::PgPool;

use crate::log_history::timeline;

/// How often a daemon looks: the default heartbeat. Two cheap statements.
pub const CHECK_EVERY: Duration = Duration::from_secs(5);

/// Every checkpoint past the start of the log, keyed for the report.
const CHECKPOINTS_SQL: &str = "
SELECT projection, model_version, partition_key, tx_id, position
  FROM rf_checkpoints WHERE position > 0
 ORDER BY projection, model_version, partition_key";

/// Which of the keys ($1 transaction ids, $2 positions) no event holds, in
/// either tier: one index lookup each.
const MISSING_SQL: &str = "
SELECT k.i::integer FROM unnest($1::bigint[], $2::bigint[]) WITH ORDINALITY AS k(tx, pos, i)
 WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.tx_id = k.tx AND e.position = k.pos)
   AND NOT EXISTS (SELECT 1 FROM events_archive a WHERE a.tx_id = k.tx AND a.position = k.pos)";

/// A checkpoint's row.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CheckpointSlot {
    /// The projection.
    pub projection: String,
    /// Its read-model version.
    pub model_version: i32,
    /// The partition.
    pub partition: i32,
}

/// What one look found that the previous ones had not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// The database was promoted: its WAL timeline moved on.
    TimelineChanged {
        /// The timeline seen before.
        from: u32,
        /// The timeline now.
        to: u32,
    },
    /// A checkpoint's event is no longer in the log.
    CheckpointVanished {
        /// Whose checkpoint.
        slot: CheckpointSlot,
        /// Its key.
        at: GlobalCursor,
    },
}

impl Finding {
    /// The metric's `kind` label.
    pub fn kind(&self) -> &'static str {
        match self {
            Finding::TimelineChanged { .. } => "timeline",
            Finding::CheckpointVanished { .. } => "checkpoint",
        }
    }
}

#[derive(Debug, Default)]
struct Seen {
    timeline: u32,
    /// Vanished checkpoints already reported, with the key they had: one
    /// that moves on and vanishes again is reported again.
    vanished: BTreeSet<(CheckpointSlot, GlobalCursor)>,
}

/// Looks for changed history, logs and counts what it finds.
pub struct HistoryWatch {
    registry: Registry,
    divergences: IntCounterVec,
    seen: Mutex<Seen>,
}

impl Default for HistoryWatch {
    fn default() -> Self {
        Self::new()
    }
}

impl HistoryWatch {
    /// A watch that has looked at nothing yet.
    pub fn new() -> Self {
        let registry = Registry::new();
        let divergences = IntCounterVec::new(
            Opts::new(
                "rillflow_log_divergences_total",
                "Changes of history this process noticed: the database's WAL timeline moved on (kind=timeline, a promotion) or a projection checkpoint's event vanished (kind=checkpoint)",
            ),
            &["kind"],
        )
        .expect("valid metric definition");
        registry
            .register(Box::new(divergences.clone()))
            .expect("metric registered once");
        // Both series exist from the start, so a rate() over them works
        // before the first divergence.
        for kind in ["timeline", "checkpoint"] {
            divergences.with_label_values(&[kind]);
        }
        HistoryWatch {
            registry,
            divergences,
            seen: Mutex::new(Seen::default()),
        }
    }

    /// One look: the timeline of the database checkpoints are written to,
    /// and whether every checkpoint's event is still in the log `events`
    /// is read from. Logs and counts each new finding, and returns them.
    pub async fn check(
        &self,
        checkpoints: &PgPool,
        events: &PgPool,
    ) -> Result<Vec<Finding>, sqlx::Error> {
        let mut found = Vec::new();
        let now = timeline(&mut *checkpoints.acquire().await?).await?;
        let rows: Vec<(String, i32, i32, i64, i64)> = sqlx::query_as(CHECKPOINTS_SQL)
            .fetch_all(checkpoints)
            .await?;
        let (txs, positions): (Vec<i64>, Vec<i64>) = rows.iter().map(|r| (r.3, r.4)).unzip();
        let missing: Vec<i32> = sqlx::query_scalar(MISSING_SQL)
            .bind(&txs)
            .bind(&positions)
            .fetch_all(events)
            .await?;
        let mut seen = self.seen.lock().expect("no panic while holding the lock");
        if timeline_changed(seen.timeline, now) {
            found.push(Finding::TimelineChanged {
                from: seen.timeline,
                to: now,
            });
        }
        if now != 0 {
            seen.timeline = now;
        }
        let vanished: BTreeSet<(CheckpointSlot, GlobalCursor)> = missing
            .iter()
            .filter_map(|i| rows.get(usize::try_from(*i).ok()?.checked_sub(1)?))
            .map(|(projection, model_version, partition, tx, position)| {
                let slot = CheckpointSlot {
                    projection: projection.clone(),
                    model_version: *model_version,
                    partition: *partition,
                };
                (slot, GlobalCursor::new(*tx, *position))
            })
            .collect();
        for (slot, at) in vanished.difference(&seen.vanished) {
            found.push(Finding::CheckpointVanished {
                slot: slot.clone(),
                at: *at,
            });
        }
        seen.vanished = vanished;
        drop(seen);
        for finding in &found {
            self.report(finding);
        }
        Ok(found)
    }

    fn report(&self, finding: &Finding) {
        self.divergences.with_label_values(&[finding.kind()]).inc();
        match finding {
            Finding::TimelineChanged { from, to } => tracing::warn!(
                from,
                to,
                "the database was promoted (its WAL timeline moved on): commits the old primary made after the standby's last replayed one may be lost; leases granted since are re-judged at the next renewal, and readers resuming from cursor tokens are checked against the new history"
            ),
            Finding::CheckpointVanished { slot, at } => tracing::error!(
                projection = %slot.projection,
                model_version = slot.model_version,
                partition = slot.partition,
                checkpoint = %at,
                "a checkpoint's event is no longer in the log: the history diverged under this projection (a lossy failover of the events' server?); rebuild it or reset its checkpoint"
            ),
        }
    }

    /// Looks every `every` until the watch is dropped elsewhere; a failed
    /// look is logged at debug level and tried again next time (the health
    /// views report an unreachable database).
    pub fn spawn(self: &Arc<Self>, checkpoints: PgPool, events: PgPool, every: Duration) {
        let watch: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let Some(w) = watch.upgrade() else { return };
                if let Err(error) = w.check(&checkpoints, &events).await {
                    tracing::debug!(%error, "history not checked");
                }
                drop(w);
                tokio::time::sleep(every).await;
            }
        });
    }

    /// The families to expose next to the database's figures.
    pub fn gather(&self) -> Vec<MetricFamily> {
        self.registry.gather()
    }
}
