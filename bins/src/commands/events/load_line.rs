//! One line of an `events append --from-file` file: a JSON object naming a
//! stream and one event, with the options `events append` takes as flags.

use rillflow_adapters::NewEvent;
use rillflow_core::{limits, ExpectedVersion};
use serde_json::{Map, Value};
use uuid::Uuid;

/// A line, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadLine {
    pub stream: Uuid,
    pub expected: ExpectedVersion,
    pub idempotency_key: Option<String>,
    pub event: NewEvent,
}

/// Fields a line may have; anything else is refused, so that a misspelt
/// option is not silently dropped.
const FIELDS: [&str; 10] = [
    "stream",
    "type",
    "data",
    "expected_version",
    "idempotency_key",
    "headers",
    "schema_version",
    "event_id",
    "causation_id",
    "correlation_id",
];

impl LoadLine {
    /// Parses one line; the error says what is wrong without repeating the
    /// line (it may be megabytes of payload).
    pub fn parse(line: &str) -> Result<Self, String> {
        let value: Value =
            serde_json::from_str(line).map_err(|e| format!("not valid JSON ({e})"))?;
        let Value::Object(mut o) = value else {
            return Err("a line must be a JSON object".into());
        };
        if let Some(unknown) = o.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(format!(
                "unknown field {unknown:?} (expected {})",
                FIELDS.join(", ")
            ));
        }
        let stream = uuid(&mut o, "stream")?.ok_or("\"stream\" is missing")?;
        let event_type = match o.remove("type") {
            Some(Value::String(t)) => t,
            Some(_) => return Err("\"type\" must be a string".into()),
            None => return Err("\"type\" is missing".into()),
        };
        limits::event_type(&event_type).map_err(|e| format!("\"type\": {e}"))?;
        let data = o.remove("data").ok_or("\"data\" is missing")?;
        let expected = match o.remove("expected_version") {
            None => ExpectedVersion::Any,
            Some(Value::String(s)) => s
                .parse()
                .map_err(|e| format!("\"expected_version\": {e}"))?,
            Some(Value::Number(n)) => n
                .to_string()
                .parse()
                .map_err(|e| format!("\"expected_version\": {e}"))?,
            Some(_) => return Err("\"expected_version\" must be a number or a string".into()),
        };
        let idempotency_key = match o.remove("idempotency_key") {
            None | Some(Value::Null) => None,
            Some(Value::String(k)) => {
                limits::idempotency_key(&k).map_err(|e| format!("\"idempotency_key\": {e}"))?;
                Some(k)
            }
            Some(_) => return Err("\"idempotency_key\" must be a string".into()),
        };
        let mut event = NewEvent::new(event_type, data);
        match o.remove("headers") {
            None | Some(Value::Null) => {}
            Some(h @ Value::Object(_)) => event = event.with_headers(h),
            Some(_) => return Err("\"headers\" must be a JSON object".into()),
        }
        match o.remove("schema_version") {
            None | Some(Value::Null) => {}
            Some(v) => {
                let n = v
                    .as_i64()
                    .and_then(|n| i32::try_from(n).ok())
                    .filter(|n| *n >= 1)
                    .ok_or("\"schema_version\" must be a whole number from 1")?;
                event = event.with_schema_version(n);
            }
        }
        if let Some(id) = uuid(&mut o, "event_id")? {
            event = event.with_id(id);
        }
        if let Some(id) = uuid(&mut o, "causation_id")? {
            event = event.caused_by(id);
        }
        if let Some(id) = uuid(&mut o, "correlation_id")? {
            event = event.correlated_with(id);
        }
        Ok(LoadLine {
            stream,
            expected,
            idempotency_key,
            event,
        })
    }

    /// Whether this line may join the append of the line before it: same
    /// stream, any version and no key, so that one append of both has the
    /// outcome of the two in turn.
    pub fn joins(&self, previous: &LoadLine) -> bool {
        self.stream == previous.stream
            && self.expected == ExpectedVersion::Any
            && self.idempotency_key.is_none()
            && previous.idempotency_key.is_none()
    }
}

fn uuid(o: &mut Map<String, Value>, field: &str) -> Result<Option<Uuid>, String> {
    match o.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => s
            .parse()
            .map(Some)
            .map_err(|_| format!("\"{field}\" is not a UUID")),
        Some(_) => Err(format!("\"{field}\" must be a UUID string")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_line_parses_and_big_numbers_keep_their_digits() {
        let line = r#"{"stream":"00000000-0000-0000-0000-000000000001","type":"Paid",
            "data":{"amount":12345678901234567890.10},"expected_version":3,
            "idempotency_key":"k1","headers":{"h":1},"schema_version":2,
            "event_id":"00000000-0000-0000-0000-0000000000e1"}"#;
        let l = LoadLine::parse(line).unwrap();
        assert_eq!(l.expected, ExpectedVersion::Exact(3));
        assert_eq!(l.idempotency_key.as_deref(), Some("k1"));
        assert_eq!(l.event.schema_version, 2);
        assert_eq!(
            l.event.data.to_string(),
            r#"{"amount":12345678901234567890.10}"#
        );
    }

    #[test]
    fn mistakes_are_named() {
        let s = r#""stream":"00000000-0000-0000-0000-000000000001""#;
        let cases = [
            ("[]".to_owned(), "JSON object"),
            (format!("{{{s},\"data\":1}}"), "\"type\" is missing"),
            (format!("{{{s},\"type\":\"T\"}}"), "\"data\" is missing"),
            (
                format!("{{{s},\"type\":\"T\",\"data\":1,\"expected\":1}}"),
                "unknown field",
            ),
            (format!("{{{s},\"type\":\"\",\"data\":1}}"), "\"type\""),
            (
                format!("{{{s},\"type\":\"T\",\"data\":1,\"headers\":[]}}"),
                "\"headers\"",
            ),
            (
                format!("{{{s},\"type\":\"T\",\"data\":1,\"schema_version\":0}}"),
                "schema_version",
            ),
            (
                format!("{{{s},\"type\":\"T\",\"data\":1,\"expected_version\":\"some\"}}"),
                "expected_version",
            ),
            (
                "{\"stream\":\"x\",\"type\":\"T\",\"data\":1}".to_owned(),
                "not a UUID",
            ),
            ("{\"type\":\"T\",\"data\":1".to_owned(), "not valid JSON"),
        ];
        for (line, want) in cases {
            let err = LoadLine::parse(&line).unwrap_err();
            assert!(err.contains(want), "{line}: {err}");
        }
    }
}
