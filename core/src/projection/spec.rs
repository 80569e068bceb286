//! The projections file: TOML declaring SQL projections.
//!
//! ```toml
//! [defaults]                 # optional
//! batch_size = 500           # 1..=10000
//! max_retries = 3            # 0..=100
//! on_error = "dead_letter"   # or "stop"
//!
//! [[projections]]
//! name = "balances"
//! setup = "CREATE TABLE IF NOT EXISTS ..."   # string or array of strings
//! reset = "TRUNCATE balances"                # needed for a rebuild
//! [projections.handlers]
//! Deposited = "UPDATE balances SET n = n + :data.amount::bigint WHERE id = :stream_id"
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use serde::Deserialize;
use toml::Spanned;

use super::placeholders::{first_placeholder, rewrite, PlaceholderError, Statement};
use crate::Identifier;

/// What happens when an event's retries are used up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Dead-letter it and go on.
    DeadLetter,
    /// Pause the projection until an operator resumes it.
    Stop,
}

impl FromStr for OnError {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "dead_letter" => Ok(OnError::DeadLetter),
            "stop" => Ok(OnError::Stop),
            other => Err(format!(
                "on_error must be \"dead_letter\" or \"stop\", not {other:?}"
            )),
        }
    }
}

impl fmt::Display for OnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OnError::DeadLetter => "dead_letter",
            OnError::Stop => "stop",
        })
    }
}

/// One declared projection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectionSpec {
    /// Name, also its checkpoint key.
    pub name: Identifier,
    /// SQL run before processing (idempotent).
    pub setup: Vec<String>,
    /// SQL run by a rebuild; empty when it cannot be rebuilt.
    pub reset: Vec<String>,
    /// Events per batch.
    pub batch_size: u32,
    /// Retries of a failing event.
    pub max_retries: u32,
    /// After the retries.
    pub on_error: OnError,
    /// Tables rebuilt side by side: the SQL names them `<table>_v{version}`
    /// and readers use the view `<table>`, which a rebuild switches to the
    /// new version once it has caught up.
    pub versioned_tables: Vec<Identifier>,
    /// Per event type, the statements to run in order.
    pub handlers: BTreeMap<String, Vec<Statement>>,
}

impl ProjectionSpec {
    /// Whether it handles events of `event_type`.
    pub fn handles(&self, event_type: &str) -> bool {
        self.handlers.contains_key(event_type)
    }

    /// The event types it handles, in order.
    pub fn event_types(&self) -> impl Iterator<Item = &str> {
        self.handlers.keys().map(String::as_str)
    }

    /// Whether a rebuild builds a new version beside the current one.
    pub fn is_versioned(&self) -> bool {
        !self.versioned_tables.is_empty()
    }

    /// The declaration with `{version}` replaced by `version` everywhere.
    pub fn at_version(&self, version: u32) -> ProjectionSpec {
        let v = version.to_string();
        let render = |sql: &String| sql.replace(VERSION_TOKEN, &v);
        ProjectionSpec {
            setup: self.setup.iter().map(render).collect(),
            reset: self.reset.iter().map(render).collect(),
            handlers: self
                .handlers
                .iter()
                .map(|(t, list)| {
                    let list = list
                        .iter()
                        .map(|st| Statement {
                            sql: render(&st.sql),
                            params: st.params.clone(),
                        })
                        .collect();
                    (t.clone(), list)
                })
                .collect(),
            ..self.clone()
        }
    }
}

/// Replaced by the version number in the SQL of versioned projections.
pub const VERSION_TOKEN: &str = "{version}";

/// A parsed projections file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectionFile {
    /// In file order.
    pub projections: Vec<ProjectionSpec>,
}

/// What is wrong with a projections file, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct SpecError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    defaults: Option<RawDefaults>,
    projections: Option<Spanned<Vec<RawProjection>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    batch_size: Option<Spanned<i64>>,
    max_retries: Option<Spanned<i64>>,
    on_error: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProjection {
    name: Spanned<String>,
    setup: Option<Spanned<OneOrMany>>,
    reset: Option<Spanned<OneOrMany>>,
    batch_size: Option<Spanned<i64>>,
    max_retries: Option<Spanned<i64>>,
    on_error: Option<Spanned<String>>,
    versioned_tables: Option<Vec<Spanned<String>>>,
    handlers: Option<Spanned<BTreeMap<String, Spanned<OneOrMany>>>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// Turns byte offsets of the file into line and column.
struct Locator<'a> {
    text: &'a str,
}

impl Locator<'_> {
    fn error(&self, offset: usize, message: impl Into<String>) -> SpecError {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        SpecError {
            line,
            column,
            message: message.into(),
        }
    }

    /// Points at `token` inside the value spanning `span`, or at the value.
    fn error_in(&self, span: Range<usize>, token: &str, message: impl Into<String>) -> SpecError {
        let region = self.text.get(span.clone()).unwrap_or("");
        let offset = region
            .find(token)
            .filter(|_| !token.is_empty())
            .map_or(span.start, |p| span.start + p);
        self.error(offset, message)
    }
}

fn ranged(
    value: Option<Spanned<i64>>,
    default: u32,
    range: Range<i64>,
    what: &str,
    at: &Locator,
) -> Result<u32, SpecError> {
    match value {
        None => Ok(default),
        Some(v) if range.contains(v.get_ref()) => Ok(*v.get_ref() as u32),
        Some(v) => Err(at.error(
            v.span().start,
            format!(
                "{what} must be between {} and {}, not {}",
                range.start,
                range.end - 1,
                v.get_ref()
            ),
        )),
    }
}

fn on_error(
    value: Option<Spanned<String>>,
    default: OnError,
    at: &Locator,
) -> Result<OnError, SpecError> {
    match value {
        None => Ok(default),
        Some(v) => v
            .get_ref()
            .parse()
            .map_err(|e: String| at.error(v.span().start, e)),
    }
}

/// Statements of a setup or reset value: non-empty, no placeholders.
fn plain_sql(
    value: Option<Spanned<OneOrMany>>,
    what: &str,
    at: &Locator,
) -> Result<Vec<String>, SpecError> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let span = value.span();
    let list = value.into_inner().into_vec();
    for sql in &list {
        if sql.trim().is_empty() {
            return Err(at.error(span.start, format!("{what}: empty SQL statement")));
        }
        if let Some(e) = first_placeholder(sql) {
            return Err(at.error_in(
                span.clone(),
                &e.token,
                format!("{what}: {} ({})", e.message, e.token),
            ));
        }
    }
    Ok(list)
}

/// `{version}` belongs in versioned projections, and they need it: without
/// it a new version would write into the current one's tables.
fn check_version_token(
    spec: &ProjectionSpec,
    at_offset: usize,
    at: &Locator,
) -> Result<(), SpecError> {
    let label = format!("projection {:?}", spec.name.as_str());
    let mut all = spec
        .setup
        .iter()
        .chain(&spec.reset)
        .chain(spec.handlers.values().flatten().map(|st| &st.sql));
    let uses = all.any(|sql| sql.contains(VERSION_TOKEN));
    match (spec.is_versioned(), uses) {
        (false, true) => Err(at.error(
            at_offset,
            format!("{label} uses {VERSION_TOKEN} but declares no versioned_tables"),
        )),
        (true, false) => Err(at.error(
            at_offset,
            format!("{label} declares versioned_tables but its SQL never uses {VERSION_TOKEN} (name the tables <table>_v{VERSION_TOKEN})"),
        )),
        _ => Ok(()),
    }
}

impl ProjectionFile {
    /// Parses and checks a projections file.
    pub fn parse(text: &str) -> Result<ProjectionFile, SpecError> {
        let at = Locator { text };
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            at.error(offset, e.message().trim().to_owned())
        })?;
        let defaults = raw.defaults.unwrap_or(RawDefaults {
            batch_size: None,
            max_retries: None,
            on_error: None,
        });
        let batch_size = ranged(defaults.batch_size, 500, 1..10_001, "batch_size", &at)?;
        let max_retries = ranged(defaults.max_retries, 3, 0..101, "max_retries", &at)?;
        let policy = on_error(defaults.on_error, OnError::DeadLetter, &at)?;
        let Some(list) = raw.projections.filter(|l| !l.get_ref().is_empty()) else {
            return Err(at.error(0, "no projections declared (add a [[projections]] table)"));
        };
        let mut projections: Vec<ProjectionSpec> = Vec::new();
        for p in list.into_inner() {
            let name_span = p.name.span();
            let name = Identifier::parse(p.name.get_ref())
                .map_err(|e| at.error(name_span.start, format!("invalid projection name: {e}")))?;
            if projections.iter().any(|q| q.name == name) {
                return Err(at.error(
                    name_span.start,
                    format!("projection {:?} is declared twice", name.as_str()),
                ));
            }
            let label = format!("projection {:?}", name.as_str());
            let Some(handlers) = p.handlers.filter(|h| !h.get_ref().is_empty()) else {
                return Err(at.error(
                    name_span.start,
                    format!("{label} has no handlers (add a [projections.handlers] table)"),
                ));
            };
            let mut compiled = BTreeMap::new();
            for (event_type, value) in handlers.into_inner() {
                let span = value.span();
                let what = format!("{label}: handler {event_type:?}");
                if event_type.trim().is_empty() {
                    return Err(at.error(
                        span.start,
                        format!("{label}: an event type must not be empty"),
                    ));
                }
                let statements = value.into_inner().into_vec();
                if statements.is_empty() {
                    return Err(at.error(span.start, format!("{what}: no SQL statements")));
                }
                let mut list = Vec::with_capacity(statements.len());
                for sql in statements {
                    if sql.trim().is_empty() {
                        return Err(at.error(span.start, format!("{what}: empty SQL statement")));
                    }
                    let statement = rewrite(&sql).map_err(|e: PlaceholderError| {
                        at.error_in(span.clone(), &e.token, format!("{what}: {}", e.message))
                    })?;
                    list.push(statement);
                }
                compiled.insert(event_type, list);
            }
            let mut versioned_tables = Vec::new();
            for t in p.versioned_tables.unwrap_or_default() {
                let table = Identifier::parse(t.get_ref()).map_err(|e| {
                    at.error(
                        t.span().start,
                        format!("{label}: invalid versioned table: {e}"),
                    )
                })?;
                if table.as_str().len() > 50 {
                    return Err(at.error(
                        t.span().start,
                        format!("{label}: versioned table name {:?} leaves no room for its version suffix (at most 50 characters)", table.as_str()),
                    ));
                }
                versioned_tables.push(table);
            }
            let spec = ProjectionSpec {
                setup: plain_sql(p.setup, &format!("{label}: setup"), &at)?,
                reset: plain_sql(p.reset, &format!("{label}: reset"), &at)?,
                batch_size: ranged(p.batch_size, batch_size, 1..10_001, "batch_size", &at)?,
                max_retries: ranged(p.max_retries, max_retries, 0..101, "max_retries", &at)?,
                on_error: on_error(p.on_error, policy, &at)?,
                versioned_tables,
                handlers: compiled,
                name,
            };
            check_version_token(&spec, name_span.start, &at)?;
            projections.push(spec);
        }
        Ok(ProjectionFile { projections })
    }
}
