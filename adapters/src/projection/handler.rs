//! The API a read model implements.

use std::sync::Arc;

use async_trait::async_trait;
use rillflow_core::RetryPolicy;
use sqlx::PgConnection;

use crate::event::RecordedEvent;

/// A handler's failure. Its text is what operators see in `last_error` and
/// in the dead-letter table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HandlerError(pub String);

impl HandlerError {
    /// A failure with `message`.
    pub fn new(message: impl Into<String>) -> Self {
        HandlerError(message.into())
    }
}

impl From<sqlx::Error> for HandlerError {
    fn from(err: sqlx::Error) -> Self {
        match err.as_database_error() {
            Some(db) => HandlerError(format!(
                "{} (sqlstate {})",
                db.message(),
                db.code().as_deref().unwrap_or("?")
            )),
            None => HandlerError(err.to_string()),
        }
    }
}

/// A failure inside [`Projection::apply_batch`]: which event failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchFailure {
    /// Index of the failing event in the slice given to `apply_batch`: the
    /// events before it applied without error. 0 when the handler cannot
    /// tell (a set-based statement failed); the runtime then tries that
    /// event alone and, if it goes through, halves the rest.
    pub index: usize,
    /// What went wrong.
    pub error: HandlerError,
}

/// How a projection is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProjectionOptions {
    /// Most events read per batch (one transaction).
    pub batch_size: u32,
    /// What a failing handler leads to (PROJ-5).
    pub retry: RetryPolicy,
}

impl Default for ProjectionOptions {
    fn default() -> Self {
        ProjectionOptions {
            batch_size: 500,
            retry: RetryPolicy::default(),
        }
    }
}

/// A read model kept up to date from the event log.
///
/// Every method receives the batch's open transaction: whatever a handler
/// writes commits together with the projection's checkpoint, or not at all
/// (PROJ-1). Handlers must not commit, roll back or open transactions of
/// their own, and must not keep state outside the database that a rolled
/// back batch would leave behind.
#[async_trait]
pub trait Projection: Send + Sync {
    /// The projection's name: its checkpoint key, 1–63 characters of
    /// `[a-z0-9_]`.
    fn name(&self) -> &str;

    /// Whether events of `event_type` concern this projection. Others are
    /// skipped, though the checkpoint still moves past them.
    fn handles(&self, event_type: &str) -> bool;

    /// Batch size and error policy.
    fn options(&self) -> ProjectionOptions {
        ProjectionOptions::default()
    }

    /// Tables a rebuild builds beside the current ones: the handler writes
    /// `<table>_v<N>` for its read-model version N, and readers use the view
    /// `<table>`, switched to the new version once it has caught up. Empty
    /// (the default) means rebuilds happen in place.
    fn versioned_tables(&self) -> Vec<String> {
        Vec::new()
    }

    /// This projection writing read-model version `version`; None when it
    /// is not versioned.
    fn at_version(&self, _version: u32) -> Option<Arc<dyn Projection>> {
        None
    }

    /// Creates the read model's tables if missing. Runs before the first
    /// batch of every start, so it must be idempotent.
    async fn setup(&self, _conn: &mut PgConnection) -> Result<(), HandlerError> {
        Ok(())
    }

    /// Empties the read model for a rebuild. Runs in the transaction that
    /// also resets the checkpoints. `Ok(false)` means the projection cannot
    /// be rebuilt (it declares no reset).
    async fn reset(&self, _conn: &mut PgConnection) -> Result<bool, HandlerError> {
        Ok(false)
    }

    /// Applies one event.
    async fn apply(
        &self,
        conn: &mut PgConnection,
        event: &RecordedEvent,
    ) -> Result<(), HandlerError>;

    /// Applies several events in order, as one unit. The runtime calls this
    /// on its fast path; when it fails, the runtime rolls the whole batch
    /// back and replays it in runs given to this method again, each in a
    /// savepoint, with the failing event alone through
    /// [`Projection::apply`]. So an override (for example one set-based
    /// statement for the whole slice) only has to be equivalent to calling
    /// [`Projection::apply`] in order, on any slice of a batch.
    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[&RecordedEvent],
    ) -> Result<(), BatchFailure> {
        for (index, event) in events.iter().enumerate() {
            self.apply(conn, event)
                .await
                .map_err(|error| BatchFailure { index, error })?;
        }
        Ok(())
    }
}
