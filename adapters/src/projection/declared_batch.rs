//! A declared projection's batch in one round trip (see
//! `rillflow_core::projection::BatchPlan` for the shape of the SQL).

use std::sync::atomic::{AtomicBool, Ordering};

use rillflow_core::projection::{BatchPlan, BatchStatement, ProjectionSpec, BATCH_COLUMNS};
use sqlx::{PgConnection, Row};

use super::batch_arrays::{bind_array, bind_empty};
use super::handler::{BatchFailure, HandlerError};
use crate::event::RecordedEvent;

/// Runs batches of one (version-rendered) declaration.
#[derive(Debug)]
pub(super) struct DeclaredBatch {
    plan: BatchPlan,
    /// Set once Postgres refused to create the function (its SQL does not
    /// compile as PL/pgSQL, or the role may not create temporary objects):
    /// from then on the projection runs event by event, as before.
    refused: AtomicBool,
}

/// What a batch attempt came to.
pub(super) enum Attempt {
    /// The plan cannot run here; apply the events one by one instead.
    Unavailable,
    /// Done, or failed at an event.
    Ran(Result<(), BatchFailure>),
}

impl DeclaredBatch {
    /// The batched form of `spec`, None when it cannot have one.
    pub(super) fn new(spec: &ProjectionSpec) -> Option<Self> {
        BatchPlan::new(spec).map(|plan| DeclaredBatch {
            plan,
            refused: AtomicBool::new(false),
        })
    }

    /// Applies `events` (all handled, in order) in one call of the
    /// function, or with one statement per set-based statement when there
    /// is no function.
    pub(super) async fn apply(
        &self,
        conn: &mut PgConnection,
        spec: &ProjectionSpec,
        events: &[&RecordedEvent],
    ) -> Attempt {
        if events.is_empty() {
            return Attempt::Ran(Ok(()));
        }
        let Some(function) = &self.plan.function else {
            return Attempt::Ran(self.set_based_only(conn, spec, events).await);
        };
        if self.refused.load(Ordering::Relaxed) {
            return Attempt::Unavailable;
        }
        let at_zero = |error: HandlerError| BatchFailure { index: 0, error };
        // The function lives in this session's temporary schema, so a
        // pooled connection may not have it yet, and a rolled back batch
        // takes it away again: one catalog probe per batch tells.
        let exists: Result<bool, sqlx::Error> = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_proc WHERE proname = $1 AND pronamespace = pg_my_temp_schema())",
        )
        .bind(&function.name)
        .fetch_one(&mut *conn)
        .await;
        match exists {
            Ok(true) => {}
            Ok(false) => {
                if let Err(e) = sqlx::Executor::execute(&mut *conn, function.create.as_str()).await
                {
                    let for_good = refuses_for_good(&e);
                    let error = HandlerError::from(e);
                    if for_good {
                        self.refused.store(true, Ordering::Relaxed);
                        tracing::warn!(projection = spec.name.as_str(), %error, "cannot create the batch function; this projection runs event by event");
                    }
                    return Attempt::Ran(Err(at_zero(error)));
                }
            }
            Err(e) => return Attempt::Ran(Err(at_zero(e.into()))),
        }
        let kinds: Vec<i32> = events
            .iter()
            .map(|e| self.plan.kind(&e.event_type).unwrap_or(0))
            .collect();
        let mut query = sqlx::query(&function.call)
            .bind(kinds)
            .bind(&self.plan.kinds);
        for source in &self.plan.arrays {
            query = bind_array(query, source, events);
        }
        let outcome = query.fetch_one(&mut *conn).await.and_then(|row| {
            Ok((
                row.try_get::<Option<i32>, _>(0)?,
                row.try_get::<Option<String>, _>(1)?,
                row.try_get::<Option<String>, _>(2)?,
            ))
        });
        Attempt::Ran(match outcome {
            Ok((None, _, _)) => Ok(()),
            Ok((Some(index), state, message)) => Err(BatchFailure {
                index: usize::try_from(index).unwrap_or(0).min(events.len() - 1),
                error: HandlerError::new(format!(
                    "{} (sqlstate {})",
                    message.unwrap_or_default(),
                    state.as_deref().unwrap_or("?")
                )),
            }),
            Err(e) => Err(at_zero(e.into())),
        })
    }

    /// A projection with only set-based handlers: each statement of each
    /// type present, in type order. A failure belongs to no one event.
    async fn set_based_only(
        &self,
        conn: &mut PgConnection,
        spec: &ProjectionSpec,
        events: &[&RecordedEvent],
    ) -> Result<(), BatchFailure> {
        for (event_type, statements) in &spec.batch_handlers {
            if !events.iter().any(|e| &e.event_type == event_type) {
                continue;
            }
            for statement in statements {
                run_set_based(conn, event_type, statement, events)
                    .await
                    .map_err(|error| BatchFailure { index: 0, error })?;
            }
        }
        Ok(())
    }
}

/// Runs one set-based statement over `events`' events of `event_type`.
pub(super) async fn run_set_based(
    conn: &mut PgConnection,
    event_type: &str,
    statement: &BatchStatement,
    events: &[&RecordedEvent],
) -> Result<(), HandlerError> {
    let mut query = sqlx::query(&statement.sql).bind(event_type);
    for (_, source) in BATCH_COLUMNS.iter() {
        query = if statement.needs.contains(source) {
            bind_array(query, source, events)
        } else {
            bind_empty(query, source)
        };
    }
    for path in &statement.paths {
        query = bind_array(query, path, events);
    }
    query.execute(&mut *conn).await?;
    Ok(())
}

/// Whether creating the function failed in a way that will not change:
/// its SQL does not compile (class 42: syntax or access rule) or PL/pgSQL
/// is not available (class 0A).
fn refuses_for_good(e: &sqlx::Error) -> bool {
    let code = e.as_database_error().and_then(|d| d.code());
    code.is_some_and(|c| c.starts_with("42") || c.starts_with("0A"))
}
