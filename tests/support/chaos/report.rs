//! What a chaos run verifies and prints.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use sqlx::PgPool;

/// One injected fault and the gap it left in the projection.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultRecord {
    /// What was done.
    pub kind: &'static str,
    /// The node it was done to (none for database-wide faults).
    pub node: Option<String>,
    /// Last event applied before the fault to first applied after, by the
    /// database clock.
    pub downtime: Duration,
}

/// The verdict of a chaos run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChaosReport {
    /// Events the writer was told were stored.
    pub acknowledged: u64,
    /// Events in the store (hot and cold).
    pub stored: u64,
    /// Rows the projection wrote (one per application).
    pub applied: u64,
    /// Acknowledged events missing from the store, plus stored events the
    /// projection never applied.
    pub missing: u64,
    /// Applications beyond the first of the same event.
    pub duplicates: u64,
    /// Applied events the store does not have.
    pub phantom: u64,
    /// Batches the fence refused (from the daemons' logs).
    pub fenced: u64,
    /// Appends the writer had to retry.
    pub writer_retries: u64,
    /// Every fault, in order.
    pub faults: Vec<FaultRecord>,
}

impl ChaosReport {
    /// True when nothing was lost, doubled or invented.
    pub fn passed(&self) -> bool {
        self.missing == 0 && self.duplicates == 0 && self.phantom == 0
    }

    /// Fills the event counts from the database and the writer's acks.
    pub async fn count(&mut self, pool: &PgPool, acked: &[i64]) -> Result<(), sqlx::Error> {
        self.acknowledged = acked.len() as u64;
        let (stored, applied, distinct, unapplied, phantom): (i64, i64, i64, i64, i64) =
            sqlx::query_as(
                "WITH stored AS (SELECT position FROM events UNION ALL SELECT position FROM events_archive)
                 SELECT (SELECT count(*) FROM stored),
                        (SELECT count(*) FROM chaos_applied),
                        (SELECT count(DISTINCT position) FROM chaos_applied),
                        (SELECT count(*) FROM stored s
                          WHERE NOT EXISTS (SELECT 1 FROM chaos_applied a WHERE a.position = s.position)),
                        (SELECT count(DISTINCT a.position) FROM chaos_applied a
                          WHERE NOT EXISTS (SELECT 1 FROM stored s WHERE s.position = a.position))",
            )
            .fetch_one(pool)
            .await?;
        let lost: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM unnest($1::bigint[]) p
              WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.position = p)
                AND NOT EXISTS (SELECT 1 FROM events_archive e WHERE e.position = p)",
        )
        .bind(acked)
        .fetch_one(pool)
        .await?;
        self.stored = stored as u64;
        self.applied = applied as u64;
        self.duplicates = (applied - distinct) as u64;
        self.missing = (lost + unapplied) as u64;
        self.phantom = phantom as u64;
        Ok(())
    }
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

impl fmt::Display for ChaosReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "events acknowledged to the writer  {}",
            self.acknowledged
        )?;
        writeln!(f, "events in the store                {}", self.stored)?;
        writeln!(f, "events applied by the projection   {}", self.applied)?;
        writeln!(f, "missing                            {}", self.missing)?;
        writeln!(f, "duplicates                         {}", self.duplicates)?;
        writeln!(f, "phantom                            {}", self.phantom)?;
        writeln!(f, "batches refused by the fence       {}", self.fenced)?;
        writeln!(
            f,
            "writer retries                     {}",
            self.writer_retries
        )?;
        let mut by_kind: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
        for fault in &self.faults {
            by_kind.entry(fault.kind).or_default().push(fault.downtime);
        }
        writeln!(f)?;
        writeln!(
            f,
            "{:<26} {:>6} {:>12} {:>12}",
            "FAULT", "COUNT", "MEDIAN", "WORST"
        )?;
        for (kind, mut gaps) in by_kind {
            gaps.sort();
            writeln!(
                f,
                "{:<26} {:>6} {:>12} {:>12}",
                kind,
                gaps.len(),
                ms(gaps[gaps.len() / 2]),
                ms(*gaps.last().expect("at least one"))
            )?;
        }
        write!(
            f,
            "verdict: {}",
            if self.passed() {
                "PASS (nothing lost, doubled or invented)"
            } else {
                "FAIL"
            }
        )
    }
}
