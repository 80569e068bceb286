//! A batch's events as bind parameters: one array per event field, one
//! element per event, in order, of the element type `array_type` names.

use rillflow_core::projection::{json_path_text, ParamSource};
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::Postgres;

use crate::event::RecordedEvent;

/// Binds an empty array of `source`'s element type: for a column of
/// `batch` that the statement cannot reach, NULL in every row.
pub(super) fn bind_empty<'q>(
    query: Query<'q, Postgres, PgArguments>,
    source: &ParamSource,
) -> Query<'q, Postgres, PgArguments> {
    bind_array(query, source, &[])
}

/// Binds the array of `source`'s values over `events`.
pub(super) fn bind_array<'q>(
    query: Query<'q, Postgres, PgArguments>,
    source: &ParamSource,
    events: &[&RecordedEvent],
) -> Query<'q, Postgres, PgArguments> {
    fn each<T>(events: &[&RecordedEvent], f: impl Fn(&RecordedEvent) -> T) -> Vec<T> {
        events.iter().map(|e| f(e)).collect()
    }
    match source {
        // `:tenant_id` is a lookup by the stream id (see `rewrite`).
        ParamSource::StreamId | ParamSource::TenantId => query.bind(each(events, |e| e.stream_id)),
        ParamSource::Version => query.bind(each(events, |e| e.version)),
        ParamSource::Position => query.bind(each(events, |e| e.position)),
        ParamSource::TxId => query.bind(each(events, |e| e.tx_id)),
        ParamSource::EventId => query.bind(each(events, |e| e.event_id)),
        ParamSource::EventType => query.bind(each(events, |e| e.event_type.clone())),
        ParamSource::SchemaVersion => query.bind(each(events, |e| e.schema_version)),
        ParamSource::CreatedAt => query.bind(each(events, |e| e.created_at)),
        ParamSource::CausationId => query.bind(each(events, |e| e.causation_id)),
        ParamSource::CorrelationId => query.bind(each(events, |e| e.correlation_id)),
        // JSON text (see `array_type`): every digit as written, since the
        // values were never floating point.
        ParamSource::Data => query.bind(each(events, |e| e.data.to_string())),
        ParamSource::Headers => query.bind(each(events, |e| e.headers.to_string())),
        ParamSource::DataPath(path) => query.bind(each(events, |e| json_path_text(&e.data, path))),
        ParamSource::HeaderPath(path) => {
            query.bind(each(events, |e| json_path_text(&e.headers, path)))
        }
    }
}
