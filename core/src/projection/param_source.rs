//! Where the value of a named parameter comes from, and how a JSON field
//! becomes bind text.

use std::fmt;

use serde::Serialize;

/// Where a parameter's value comes from. Each variant is one placeholder
/// name; [`fmt::Display`] writes it back as written (`:data.a.b`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum ParamSource {
    /// `:stream_id`, the event's stream (uuid).
    StreamId,
    /// `:version`, the event's version in its stream (bigint).
    Version,
    /// `:position`, the event's global position (bigint).
    Position,
    /// `:tx_id`, the id of the transaction that appended it (bigint).
    TxId,
    /// `:event_id`, the event's id (uuid).
    EventId,
    /// `:event_type`, the event's type (text).
    EventType,
    /// `:schema_version`, the body's schema version (int).
    SchemaVersion,
    /// `:created_at`, when it was appended (timestamptz).
    CreatedAt,
    /// `:causation_id` (uuid, nullable).
    CausationId,
    /// `:correlation_id` (uuid, nullable).
    CorrelationId,
    /// `:data`, the whole JSON body (jsonb).
    Data,
    /// `:headers`, the whole headers object (jsonb).
    Headers,
    /// `:tenant_id`, the conjoined tenant owning the event's stream (text;
    /// NULL for an untenanted stream). Not bound itself: the rewrite turns
    /// it into a lookup of the stream's owner by `:stream_id`.
    TenantId,
    /// `:data.a.b`, a field of the body, bound as text (see [`json_path_text`]).
    DataPath(Vec<String>),
    /// `:headers.k`, a field of the headers, bound as text.
    HeaderPath(Vec<String>),
}

/// The names a placeholder may have, for error messages.
pub(super) const KNOWN: &str = ":stream_id, :version, :position, :tx_id, :event_id, :event_type, \
     :schema_version, :created_at, :causation_id, :correlation_id, :data, :headers, \
     :tenant_id, :data.<path>, :headers.<path>";

/// The plain (path-less) sources with their names; one table serves both
/// directions so parsing and printing cannot drift apart.
const PLAIN: [(&str, ParamSource); 13] = [
    ("stream_id", ParamSource::StreamId),
    ("version", ParamSource::Version),
    ("position", ParamSource::Position),
    ("tx_id", ParamSource::TxId),
    ("event_id", ParamSource::EventId),
    ("event_type", ParamSource::EventType),
    ("schema_version", ParamSource::SchemaVersion),
    ("created_at", ParamSource::CreatedAt),
    ("causation_id", ParamSource::CausationId),
    ("correlation_id", ParamSource::CorrelationId),
    ("data", ParamSource::Data),
    ("headers", ParamSource::Headers),
    ("tenant_id", ParamSource::TenantId),
];

impl ParamSource {
    /// The source a placeholder name (without its `:`) stands for, such as
    /// `stream_id` or `data.amount`; None for any other name. Path segments
    /// are not validated here: the scanner only produces well-formed ones.
    pub fn from_name(name: &str) -> Option<ParamSource> {
        let (root, path) = match name.split_once('.') {
            None => (name, None),
            Some((root, rest)) => (root, Some(rest)),
        };
        match (root, path) {
            (_, None) => PLAIN
                .iter()
                .find(|(n, _)| *n == root)
                .map(|(_, s)| s.clone()),
            ("data", Some(rest)) => Some(ParamSource::DataPath(segments(rest))),
            ("headers", Some(rest)) => Some(ParamSource::HeaderPath(segments(rest))),
            _ => None,
        }
    }
}

fn segments(path: &str) -> Vec<String> {
    path.split('.').map(str::to_owned).collect()
}

impl fmt::Display for ParamSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (root, path) = match self {
            ParamSource::DataPath(path) => ("data", path),
            ParamSource::HeaderPath(path) => ("headers", path),
            plain => {
                let (name, _) = PLAIN
                    .iter()
                    .find(|(_, s)| s == plain)
                    .expect("every path-less source is in PLAIN");
                return write!(f, ":{name}");
            }
        };
        write!(f, ":{root}")?;
        path.iter().try_for_each(|segment| write!(f, ".{segment}"))
    }
}

/// A field of a JSON value as bind text: strings as they are (unquoted),
/// numbers and booleans as JSON writes them, objects and arrays as compact
/// JSON; null or missing as None, which binds SQL NULL. A path through a
/// non-object (`"s".deeper`) is missing too: the body's shape varies by
/// schema version and a handler should see NULL, not fail.
pub fn json_path_text(value: &serde_json::Value, path: &[String]) -> Option<String> {
    let mut at = value;
    for key in path {
        at = at.as_object()?.get(key)?;
    }
    match at {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_sources_round_trip() {
        for (name, source) in &PLAIN {
            assert_eq!(ParamSource::from_name(name).as_ref(), Some(source));
            assert_eq!(source.to_string(), format!(":{name}"));
        }
        let path = ParamSource::from_name("headers.a.b_2").unwrap();
        assert_eq!(
            path,
            ParamSource::HeaderPath(vec!["a".into(), "b_2".into()])
        );
        assert_eq!(path.to_string(), ":headers.a.b_2");
        for unknown in ["stream", "version.x", "Data", "", "data_x", "event_id.x"] {
            assert_eq!(ParamSource::from_name(unknown), None, "{unknown:?}");
        }
    }
}
