//! The time one batch transaction may take, enforced by the database.
//!
//! A fenced batch holds the lease row `FOR SHARE`, so the holder's own
//! renewals wait for it: a batch that runs past its budget costs the node
//! its lease. The daemon's session `statement_timeout` (one heartbeat) is
//! right for lease statements but would cut any handler statement longer
//! than a heartbeat, dead-lettering events that were merely slow. So a
//! batch gets its own limit instead: every statement of it may run up to
//! the whole budget, and a watchdog cancels the handler the batch's backend
//! is running once the budget is spent, which bounds a handler that issues
//! many statements too. The runner then commits what was done before the
//! cut and leaves the rest to the next batch. The watchdog cancels only
//! while a handler runs, never the batch's own bookkeeping (its dead-letter
//! and checkpoint writes), so a cut batch can always commit.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::{PgConnection, PgPool};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

/// Where the batch is, as far as the watchdog is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Between handlers: nothing to cancel.
    Outside,
    /// A handler runs on the batch's connection.
    InHandler,
    /// The batch is past its handlers (or gone): never cancel again.
    Done,
}

/// Arms one batch's limits: the statement limit on its transaction and the
/// watchdog over its backend.
pub(super) struct BudgetWatch {
    fired: Arc<AtomicBool>,
    /// Held by the watchdog while it cancels and by the batch while it
    /// enters or leaves a handler: a cancel is sent only while a handler
    /// runs, so it cannot hit the batch's bookkeeping or whatever the
    /// pooled connection runs next.
    phase: Arc<Mutex<Phase>>,
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
        let phase = Arc::new(Mutex::new(Phase::Outside));
        let task = tokio::spawn(watchdog(
            pool.clone(),
            pid,
            budget,
            fired.clone(),
            phase.clone(),
        ));
        Ok(BudgetWatch {
            fired,
            phase,
            task: Some(task),
        })
    }

    /// True once the budget is spent (and a handler running then was told
    /// to cancel): whatever failed after that is the budget's doing.
    pub(super) fn spent(&self) -> bool {
        self.fired.load(Ordering::Acquire)
    }

    /// Runs `handler`, the only thing the watchdog may cancel.
    pub(super) async fn during<F: Future>(&self, handler: F) -> F::Output {
        self.enter(Phase::InHandler).await;
        let out = handler.await;
        self.enter(Phase::Outside).await;
        out
    }

    async fn enter(&self, next: Phase) {
        let mut phase = self.phase.lock().await;
        if *phase != Phase::Done {
            *phase = next;
        }
    }

    /// Stops the watchdog; after this no cancel is sent. Call before the
    /// batch's bookkeeping.
    pub(super) async fn disarm(&mut self) {
        *self.phase.lock().await = Phase::Done;
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl Drop for BudgetWatch {
    fn drop(&mut self) {
        // A batch that returned early through `?` never disarmed. Unless the
        // watchdog is sending its cancel at this very moment (to a handler
        // that then fails, which is why the batch is being dropped), mark it
        // done so it never will.
        if let Ok(mut phase) = self.phase.try_lock() {
            *phase = Phase::Done;
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
    phase: Arc<Mutex<Phase>>,
) {
    tokio::time::sleep(budget).await;
    let phase = phase.lock().await;
    if *phase == Phase::Done {
        return;
    }
    fired.store(true, Ordering::Release);
    if *phase == Phase::Outside {
        // Between handlers: the runner sees the budget spent before the
        // next one and ends the batch there.
        return;
    }
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
