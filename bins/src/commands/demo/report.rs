//! The demo's verification: what was appended, what the read model holds.

use anyhow::Result;
use sqlx::PgPool;

/// The figures the demo ends with.
pub struct Verification {
    pub appended: i64,
    pub stored: i64,
    pub projected: i64,
    pub missing: i64,
    pub duplicates: i64,
    pub failover_ms: u128,
    pub new_hot: String,
    pub events_hot: i64,
    pub events_cold: i64,
    pub streams_archived: i64,
}

/// The store and read-model counts.
pub struct Counts {
    pub stored: i64,
    pub projected: i64,
    pub missing: i64,
    pub duplicates: i64,
}

impl Counts {
    /// Reads the store and the read model.
    pub async fn load(pool: &PgPool) -> Result<Counts> {
        let stored: i64 = sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM events) + (SELECT count(*) FROM events_archive)",
        )
        .fetch_one(pool)
        .await?;
        let projected: i64 = sqlx::query_scalar("SELECT count(*) FROM demo_ledger")
            .fetch_one(pool)
            .await?;
        // Stored events the read model never saw, and rows applied more than once.
        let missing: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT position FROM events UNION ALL
                                   SELECT position FROM events_archive) e
              WHERE NOT EXISTS (SELECT 1 FROM demo_ledger d WHERE d.position = e.position)",
        )
        .fetch_one(pool)
        .await?;
        let duplicates: i64 =
            sqlx::query_scalar("SELECT count(*) FROM demo_ledger WHERE applied > 1")
                .fetch_one(pool)
                .await?;
        Ok(Counts {
            stored,
            projected,
            missing,
            duplicates,
        })
    }
}

impl Verification {
    /// True when nothing was lost, doubled or left unprojected.
    pub fn passed(&self) -> bool {
        self.missing == 0
            && self.duplicates == 0
            && self.stored == self.appended
            && self.projected == self.appended
    }

    /// The table printed at the end.
    pub fn print(&self) {
        let rows = [
            ("events appended (acknowledged)", self.appended.to_string()),
            ("events in the store", self.stored.to_string()),
            ("events projected", self.projected.to_string()),
            ("missing from the read model", self.missing.to_string()),
            ("applied more than once", self.duplicates.to_string()),
            (
                "failover after kill -9 of the hot node",
                format!("{} ms (now hot: {})", self.failover_ms, self.new_hot),
            ),
            ("streams archived", self.streams_archived.to_string()),
            ("events in hot storage", self.events_hot.to_string()),
            ("events in cold storage", self.events_cold.to_string()),
        ];
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        println!();
        println!("{:<width$}  RESULT", "CHECK");
        for (k, v) in rows {
            println!("{k:<width$}  {v}");
        }
        println!(
            "\n{}",
            if self.passed() {
                "PASS: every acknowledged event was projected exactly once, through a crash failover and archiving"
            } else {
                "FAIL: see the figures above and the node logs"
            }
        );
    }
}
