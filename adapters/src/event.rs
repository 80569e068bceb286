//! Events going in and coming out of the store.

use chrono::{DateTime, Utc};
use rillflow_core::GlobalCursor;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

/// An event to append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Set by the caller to make the event's id stable; generated when absent.
    pub event_id: Option<Uuid>,
    /// The event's type name, as handlers dispatch on it.
    pub event_type: String,
    /// The payload's schema version, for upcasting.
    pub schema_version: i32,
    /// The payload.
    pub data: Value,
    /// Free-form metadata.
    pub headers: Value,
    /// The event or command that caused this one.
    pub causation_id: Option<Uuid>,
    /// The conversation this event belongs to.
    pub correlation_id: Option<Uuid>,
}

impl NewEvent {
    /// An event of `event_type` carrying `data`, schema version 1, no headers.
    pub fn new(event_type: impl Into<String>, data: Value) -> Self {
        NewEvent {
            event_id: None,
            event_type: event_type.into(),
            schema_version: 1,
            data,
            headers: Value::Object(Default::default()),
            causation_id: None,
            correlation_id: None,
        }
    }

    /// Sets the event id.
    pub fn with_id(mut self, id: Uuid) -> Self {
        self.event_id = Some(id);
        self
    }

    /// Sets the schema version.
    pub fn with_schema_version(mut self, version: i32) -> Self {
        self.schema_version = version;
        self
    }

    /// Sets the headers.
    pub fn with_headers(mut self, headers: Value) -> Self {
        self.headers = headers;
        self
    }

    /// Sets the causation id.
    pub fn caused_by(mut self, id: Uuid) -> Self {
        self.causation_id = Some(id);
        self
    }

    /// Sets the correlation id.
    pub fn correlated_with(mut self, id: Uuid) -> Self {
        self.correlation_id = Some(id);
        self
    }
}

/// Options of one append call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppendOptions {
    /// A retried append with the same key on the same stream returns the first
    /// append's result and writes nothing.
    pub idempotency_key: Option<String>,
    /// The conjoined tenant appending: a new stream becomes the tenant's,
    /// and a stream of anyone else is refused ([`crate::StoreError::WrongTenant`]).
    pub tenant: Option<rillflow_core::tenant::TenantName>,
}

/// What an append wrote (or, for a replayed idempotent append, had written).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppendResult {
    /// The stream appended to.
    pub stream_id: Uuid,
    /// Version of the first event of this append.
    pub first_version: u64,
    /// Version of the last event, which is the stream's version afterwards.
    pub last_version: u64,
    /// Global positions of the events, in append order.
    pub positions: Vec<i64>,
    /// True when the idempotency key matched an earlier append.
    pub replayed: bool,
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct RecordedEvent {
    /// Global position (unique, but commits out of order; see [`GlobalCursor`]).
    pub position: i64,
    /// The writing transaction's id.
    pub tx_id: i64,
    /// The stream.
    pub stream_id: Uuid,
    /// Version within the stream, from 1.
    pub version: i64,
    /// The event's id.
    pub event_id: Uuid,
    /// Type name.
    pub event_type: String,
    /// Payload schema version.
    pub schema_version: i32,
    /// Payload.
    pub data: Value,
    /// Metadata.
    pub headers: Value,
    /// Causation id.
    pub causation_id: Option<Uuid>,
    /// Correlation id.
    pub correlation_id: Option<Uuid>,
    /// Partition hash of the stream.
    pub partition_hash: i32,
    /// When it was written (database clock).
    pub created_at: DateTime<Utc>,
}

impl RecordedEvent {
    /// This event's place in the global order.
    pub fn cursor(&self) -> GlobalCursor {
        GlobalCursor::new(self.tx_id, self.position)
    }
}

/// One batch of the global log.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadAllBatch {
    /// Events after the requested cursor, in global order.
    pub events: Vec<RecordedEvent>,
    /// Where the next read starts: the last event's cursor, or the requested
    /// cursor when the batch is empty.
    pub next: GlobalCursor,
}
