//! The time one batch transaction may take, enforced by the database.
//!
//! A fenced batch holds the lease row `FOR SHARE`, so the holder's own
//! renewals wait for it: a batch that runs past its budget costs the node
//! its lease. The daemon's session `statement_timeout` (one heartbeat) is
//! right for lease statements but would cut any handler statement longer
//! than a heartbeat, dead-lettering events that were merely slow. So a
//! batch gets its own limit instead: every statement of it may run up to
//! the whole budget, and a watchdog cancels whatever the batch's backend is
//! running once the budget is spent, which bounds a handler that issues
//! many statements too. The runner then commits what was done before the
//! cut and leaves the rest to the next batch.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::{PgConnection, PgPool};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

/// Arms one batch's limits: the statement limit on its transaction and the
/// watchdog over its backend.
pub(super) struct BudgetWatch {
    fired: Arc<AtomicBool>,
    /// Held by the watchdog while it cancels and by the batch while it
    /// stops the watchdog: a cancel is never sent once the batch has moved
    /// on to commit, so it cannot hit whatever the pooled connection runs
    /// next.
    done: Arc<Mutex<bool>>,
    task: Option<JoinHandle<()>>,
}

impl BudgetWatch {
    /// Sets `budget` as the statement limit of the transaction open on
    /// `conn` and starts the watchdog, which cancels through `pool`.
    pub(super) async fn arm(
        conn: &mut PgConnection,
        pool: &PgPool,
        budget: Duration,
    ) -> Result<Self, sqlx::Error> {
        let millis = budget.as_millis().clamp(1, i32::MAX as u128).to_string();
        // `true`: local to the transaction, so the pooled connection goes
        // back with the session's own limit.
        let pid: i32 = sqlx::query_scalar(
            "SELECT pg_backend_pid() FROM (SELECT set_config('statement_timeout', $1, true)) s",
        )
        .bind(millis)
        .fetch_one(conn)
        .await?;
        let fired = Arc::new(AtomicBool::new(false));
        let done = Arc::new(Mutex::new(false));
        let task = tokio::spawn(watchdog(
            pool.clone(),
            pid,
            budget,
            fired.clone(),
            done.clone(),
        ));
        Ok(BudgetWatch {
            fired,
            done,
            task: Some(task),
        })
    }

    /// True once the budget is spent and the batch's backend was told to
    /// cancel: whatever failed after that is the budget's doing.
    pub(super) fn spent(&self) -> bool {
        self.fired.load(Ordering::Acquire)
    }

    /// Stops the watchdog; after this no cancel is sent. Call before the
    /// commit or rollback that ends the batch.
    pub(super) async fn disarm(&mut self) {
        *self.done.lock().await = true;
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl Drop for BudgetWatch {
    fn drop(&mut self) {
        // A batch that returned early through `?` never disarmed. Unless the
        // watchdog is sending its cancel at this very moment, mark the batch
        // done so it never will; a cancel already on its way can still hit
        // the connection's next statement, which fails like any cancelled
        // statement and is retried.
        if let Ok(mut done) = self.done.try_lock() {
            *done = true;
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn watchdog(
    pool: PgPool,
    pid: i32,
    budget: Duration,
    fired: Arc<AtomicBool>,
    done: Arc<Mutex<bool>>,
) {
    tokio::time::sleep(budget).await;
    let done = done.lock().await;
    if *done {
        return;
    }
    fired.store(true, Ordering::Release);
    tracing::warn!(
        backend = pid,
        budget_ms = budget.as_millis() as u64,
        "batch ran out of its time budget; cancelling its statement"
    );
    if let Err(error) = sqlx::query("SELECT pg_cancel_backend($1)")
        .bind(pid)
        .execute(&pool)
        .await
    {
        // The statement limit still ends each statement within a budget.
        tracing::warn!(%error, "could not cancel an over-budget batch");
    }
}
