//! A projection declared in a TOML file: SQL statements per event type,
//! with named parameters bound from the event.

use std::sync::Arc;

use async_trait::async_trait;
use rillflow_core::projection::{json_path_text, OnError, ParamSource, ProjectionSpec, Statement};
use rillflow_core::{Exhausted, RetryPolicy};
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::{PgConnection, Postgres};

use super::declared_batch::{run_set_based, Attempt, DeclaredBatch};
use super::handler::{BatchFailure, HandlerError, Projection, ProjectionOptions};
use crate::event::RecordedEvent;

/// Runs a [`ProjectionSpec`]'s SQL. Values always travel as bind
/// parameters; body and header fields are bound as text, so statements cast
/// them (`:data.amount::bigint`).
///
/// A batch goes to the database in one round trip (after a catalog probe):
/// the events as arrays, applied in order by a function generated from the
/// declaration (see [`rillflow_core::projection::BatchPlan`]), which reports
/// the index of an event that fails. One event alone (the runtime's careful
/// path) runs its statements one by one, as prepared statements.
#[derive(Debug, Clone)]
pub struct SqlProjection {
    /// As declared, `{version}` tokens included.
    template: ProjectionSpec,
    /// Rendered for the read-model version this instance writes.
    spec: ProjectionSpec,
    /// The batched form of `spec`; None when its SQL cannot have one.
    batch: Option<Arc<DeclaredBatch>>,
}

impl SqlProjection {
    /// A projection running `spec` (at read-model version 1 if versioned).
    pub fn new(spec: ProjectionSpec) -> Self {
        Self::rendered(spec, 1)
    }

    fn rendered(template: ProjectionSpec, version: u32) -> Self {
        let spec = template.at_version(version);
        SqlProjection {
            batch: DeclaredBatch::new(&spec).map(Arc::new),
            spec,
            template,
        }
    }

    /// The declaration, rendered for this instance's version.
    pub fn spec(&self) -> &ProjectionSpec {
        &self.spec
    }
}

/// Binds one parameter of `event`.
fn bind<'q>(
    query: Query<'q, Postgres, PgArguments>,
    source: &ParamSource,
    event: &'q RecordedEvent,
) -> Query<'q, Postgres, PgArguments> {
    match source {
        ParamSource::StreamId => query.bind(event.stream_id),
        ParamSource::Version => query.bind(event.version),
        ParamSource::Position => query.bind(event.position),
        ParamSource::TxId => query.bind(event.tx_id),
        ParamSource::EventId => query.bind(event.event_id),
        ParamSource::EventType => query.bind(event.event_type.as_str()),
        ParamSource::SchemaVersion => query.bind(event.schema_version),
        ParamSource::CreatedAt => query.bind(event.created_at),
        ParamSource::CausationId => query.bind(event.causation_id),
        ParamSource::CorrelationId => query.bind(event.correlation_id),
        ParamSource::Data => query.bind(&event.data),
        ParamSource::Headers => query.bind(&event.headers),
        ParamSource::DataPath(path) => query.bind(json_path_text(&event.data, path)),
        ParamSource::HeaderPath(path) => query.bind(json_path_text(&event.headers, path)),
        // `rewrite` looks the owner up by the stream id; should a statement
        // ever carry the source itself, the stream id is still what it needs.
        ParamSource::TenantId => query.bind(event.stream_id),
    }
}

async fn run_all(conn: &mut PgConnection, statements: &[String]) -> Result<(), HandlerError> {
    for sql in statements {
        // Setup and reset SQL may hold several statements and no
        // parameters: a bare string goes through the simple query protocol.
        sqlx::Executor::execute(&mut *conn, sql.as_str()).await?;
    }
    Ok(())
}

async fn execute(
    conn: &mut PgConnection,
    statement: &Statement,
    event: &RecordedEvent,
) -> Result<(), HandlerError> {
    let mut query = sqlx::query(&statement.sql);
    for source in &statement.params {
        query = bind(query, source, event);
    }
    query.execute(&mut *conn).await?;
    Ok(())
}

#[async_trait]
impl Projection for SqlProjection {
    fn name(&self) -> &str {
        self.spec.name.as_str()
    }

    fn handles(&self, event_type: &str) -> bool {
        self.spec.handles(event_type)
    }

    fn options(&self) -> ProjectionOptions {
        ProjectionOptions {
            batch_size: self.spec.batch_size,
            retry: RetryPolicy {
                max_retries: self.spec.max_retries,
                exhausted: match self.spec.on_error {
                    OnError::DeadLetter => Exhausted::DeadLetter,
                    OnError::Stop => Exhausted::Stop,
                },
                ..RetryPolicy::default()
            },
        }
    }

    fn versioned_tables(&self) -> Vec<String> {
        self.spec
            .versioned_tables
            .iter()
            .map(|t| t.as_str().to_owned())
            .collect()
    }

    fn at_version(&self, version: u32) -> Option<Arc<dyn Projection>> {
        self.template.is_versioned().then(|| {
            Arc::new(SqlProjection::rendered(self.template.clone(), version)) as Arc<dyn Projection>
        })
    }

    async fn setup(&self, conn: &mut PgConnection) -> Result<(), HandlerError> {
        run_all(conn, &self.spec.setup).await
    }

    async fn reset(&self, conn: &mut PgConnection) -> Result<bool, HandlerError> {
        if self.spec.reset.is_empty() {
            return Ok(false);
        }
        run_all(conn, &self.spec.reset).await?;
        Ok(true)
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        event: &RecordedEvent,
    ) -> Result<(), HandlerError> {
        if let Some(statements) = self.spec.handlers.get(&event.event_type) {
            for statement in statements {
                execute(conn, statement, event).await?;
            }
        }
        if let Some(statements) = self.spec.batch_handlers.get(&event.event_type) {
            for statement in statements {
                run_set_based(conn, &event.event_type, statement, &[event]).await?;
            }
        }
        Ok(())
    }

    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[&RecordedEvent],
    ) -> Result<(), BatchFailure> {
        if let Some(batch) = &self.batch {
            if let Attempt::Ran(outcome) = batch.apply(conn, &self.spec, events).await {
                return outcome;
            }
        }
        for (index, event) in events.iter().enumerate() {
            self.apply(conn, event)
                .await
                .map_err(|error| BatchFailure { index, error })?;
        }
        Ok(())
    }
}
