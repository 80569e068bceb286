//! The projections file as written: the serde model, with the spans of the
//! values that semantic checks point at. `deny_unknown_fields` everywhere so
//! that a misspelt key is an error instead of a silently ignored setting.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use toml::Spanned;

/// The whole file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    pub defaults: Option<RawDefaults>,
    pub projections: Option<Spanned<Vec<RawProjection>>>,
}

/// `[defaults]`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDefaults {
    pub batch_size: Option<Spanned<i64>>,
    pub max_retries: Option<Spanned<i64>>,
    pub on_error: Option<Spanned<String>>,
}

/// One `[[projections]]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProjection {
    pub name: Spanned<String>,
    pub setup: Option<Spanned<SqlValue>>,
    pub reset: Option<Spanned<SqlValue>>,
    pub batch_size: Option<Spanned<i64>>,
    pub max_retries: Option<Spanned<i64>>,
    pub on_error: Option<Spanned<String>>,
    pub versioned_tables: Option<Spanned<Vec<Spanned<String>>>>,
    pub handlers: Option<Spanned<BTreeMap<Spanned<String>, Spanned<SqlValue>>>>,
    pub batch_handlers: Option<Spanned<BTreeMap<Spanned<String>, Spanned<SqlValue>>>>,
}

/// A string or an array of strings. Written by hand rather than as an
/// untagged enum: untagged enums buffer their input and lose the spans of
/// the array's elements.
pub(super) enum SqlValue {
    One(String),
    Many(Vec<Spanned<String>>),
}

/// The statements of a SQL value, each with its span, and the span of the
/// whole value (for pointing at an empty array).
pub(super) fn statements(value: Spanned<SqlValue>) -> (Range<usize>, Vec<Spanned<String>>) {
    let span = value.span();
    let list = match value.into_inner() {
        SqlValue::One(sql) => vec![Spanned::new(span.clone(), sql)],
        SqlValue::Many(list) => list,
    };
    (span, list)
}

impl<'de> Deserialize<'de> for SqlValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SqlVisitor;

        impl<'de> Visitor<'de> for SqlVisitor {
            type Value = SqlValue;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an SQL string or an array of SQL strings")
            }

            fn visit_str<E: de::Error>(self, sql: &str) -> Result<SqlValue, E> {
                Ok(SqlValue::One(sql.to_owned()))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SqlValue, A::Error> {
                let mut list = Vec::new();
                while let Some(sql) = seq.next_element::<Spanned<String>>()? {
                    list.push(sql);
                }
                Ok(SqlValue::Many(list))
            }
        }

        deserializer.deserialize_any(SqlVisitor)
    }
}
