//! The projections file: TOML declaring SQL projections, parsed and checked
//! as a whole before anything touches the database.
//!
//! ```toml
//! [defaults]                 # optional
//! batch_size = 500           # 1..=10000
//! max_retries = 3            # 0..=100
//! on_error = "dead_letter"   # or "stop"
//!
//! [[projections]]
//! name = "balances"
//! setup = "CREATE TABLE IF NOT EXISTS balances (id uuid PRIMARY KEY, n bigint)"
//! reset = "TRUNCATE balances"   # setup and reset: a string or an array of strings
//! [projections.handlers]
//! Deposited = "UPDATE balances SET n = n + :data.amount::bigint WHERE id = :stream_id"
//! ```

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use toml::Spanned;

use super::batch_statement::{compose, BatchStatement};
use super::on_error::OnError;
use super::placeholders::scan;
use super::raw::{statements, RawFile, RawProjection, SqlValue};
use super::source::Source;
use super::spec::{ProjectionSpec, VERSION_TOKEN};
use super::spec_error::SpecError;
use super::sql_lex;
use super::statement::{rewrite, Statement};
use crate::Identifier;

/// A parsed and checked projections file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectionFile {
    /// In file order; names are unique.
    pub projections: Vec<ProjectionSpec>,
}

const BATCH_SIZE: RangeInclusive<i64> = 1..=10_000;
const MAX_RETRIES: RangeInclusive<i64> = 0..=100;
/// A versioned table's physical name, `<table>_v<u32>`, must still fit the
/// 63 bytes of an identifier, or Postgres would truncate two versions to
/// the same name.
const MAX_VERSIONED_TABLE: usize = 63 - "_v".len() - "4294967295".len();

/// What a projection inherits from `[defaults]` unless it overrides it.
struct Settings {
    batch_size: u32,
    max_retries: u32,
    on_error: OnError,
}

/// The settings written in `[defaults]` or a projection, over `inherited`.
/// `label` starts the messages (`defaults`, `projection "x"`).
fn settings(
    batch_size: Option<Spanned<i64>>,
    max_retries: Option<Spanned<i64>>,
    on_error: Option<Spanned<String>>,
    inherited: &Settings,
    label: &str,
    src: &Source,
) -> Result<Settings, SpecError> {
    let bounded = |value: Option<Spanned<i64>>, default: u32, range: RangeInclusive<i64>, key| {
        let Some(value) = value else {
            return Ok(default);
        };
        let n = *value.get_ref();
        match u32::try_from(n) {
            Ok(ok) if range.contains(&n) => Ok(ok),
            _ => Err(src.error_at(
                value.span().start,
                format!(
                    "{label}: {key} must be between {} and {}, not {n}",
                    range.start(),
                    range.end()
                ),
            )),
        }
    };
    let on_error = match on_error {
        None => inherited.on_error,
        Some(word) => word
            .get_ref()
            .parse()
            .map_err(|e| src.error_at(word.span().start, format!("{label}: {e}")))?,
    };
    Ok(Settings {
        batch_size: bounded(batch_size, inherited.batch_size, BATCH_SIZE, "batch_size")?,
        max_retries: bounded(
            max_retries,
            inherited.max_retries,
            MAX_RETRIES,
            "max_retries",
        )?,
        on_error,
    })
}

impl ProjectionFile {
    /// Parses and checks a projections file. The first mistake found is
    /// returned, with the line and column of the value at fault.
    pub fn parse(text: &str) -> Result<ProjectionFile, SpecError> {
        let src = Source::new(text);
        let raw: RawFile = toml::from_str(text).map_err(|e| src.toml_error(&e))?;
        let d = raw.defaults.unwrap_or_default();
        let builtin = Settings {
            batch_size: 500,
            max_retries: 3,
            on_error: OnError::DeadLetter,
        };
        let defaults = settings(
            d.batch_size,
            d.max_retries,
            d.on_error,
            &builtin,
            "defaults",
            &src,
        )?;
        let list = match raw.projections {
            Some(list) if !list.get_ref().is_empty() => list.into_inner(),
            // An empty file is almost certainly the wrong file.
            other => {
                let at = other.map_or(0, |l| l.span().start);
                return Err(
                    src.error_at(at, "no projections declared (add a [[projections]] table)")
                );
            }
        };
        // Line of each name so far, for pointing back at the first of two.
        let mut seen: BTreeMap<Identifier, usize> = BTreeMap::new();
        let mut projections = Vec::with_capacity(list.len());
        for p in list {
            let at = p.name.span().start;
            let name = Identifier::parse(p.name.get_ref())
                .map_err(|e| src.error_at(at, format!("invalid projection name: {e}")))?;
            if let Some(first) = seen.get(&name) {
                return Err(src.error_at(
                    at,
                    format!(
                        "projection {:?} is declared twice (first on line {first})",
                        name.as_str()
                    ),
                ));
            }
            seen.insert(name.clone(), src.position(at).0);
            projections.push(compile(name, p, &defaults, &src)?);
        }
        Ok(ProjectionFile { projections })
    }
}

/// Checks one projection, whose name is already valid and unique.
fn compile(
    name: Identifier,
    p: RawProjection,
    defaults: &Settings,
    src: &Source,
) -> Result<ProjectionSpec, SpecError> {
    let label = format!("projection {:?}", name.as_str());
    let own = settings(
        p.batch_size,
        p.max_retries,
        p.on_error,
        defaults,
        &label,
        src,
    )?;
    let (versioned_tables, tables_at) = versioned_tables(p.versioned_tables, &label, src)?;
    let mut sql = SqlChecker {
        src,
        label: &label,
        versioned: !versioned_tables.is_empty(),
        uses_version: false,
    };
    let setup = sql.plain("setup", p.setup)?;
    let reset = sql.plain("reset", p.reset)?;
    let name_at = p.name.span().start;
    let no_handlers = |at| {
        src.error_at(
            at,
            format!("{label} has no handlers (add a [projections.handlers] table mapping event types to SQL, or [projections.batch_handlers] for set-based SQL)"),
        )
    };
    let empty_at = p
        .handlers
        .as_ref()
        .or(p.batch_handlers.as_ref())
        .map_or(name_at, |t| t.span().start);
    let per_event = p.handlers.filter(|t| !t.get_ref().is_empty());
    let set_based = p.batch_handlers.filter(|t| !t.get_ref().is_empty());
    if per_event.is_none() && set_based.is_none() {
        return Err(no_handlers(empty_at));
    }
    let mut handlers = BTreeMap::new();
    for (event_type, value) in per_event.map(Spanned::into_inner).unwrap_or_default() {
        let compiled = sql.handler(&event_type, value)?;
        handlers.insert(event_type.into_inner(), compiled);
    }
    let mut batch_handlers = BTreeMap::new();
    for (event_type, value) in set_based.map(Spanned::into_inner).unwrap_or_default() {
        if handlers.contains_key(event_type.get_ref()) {
            return Err(src.error_at(
                event_type.span().start,
                format!(
                    "{label}: event type {:?} has both a handler and a batch handler; give it one or the other",
                    event_type.get_ref()
                ),
            ));
        }
        let compiled = sql.batch_handler(&event_type, value)?;
        batch_handlers.insert(event_type.into_inner(), compiled);
    }
    // A versioned projection that never says `{version}` would build each
    // new version into the live version's tables.
    if let Some(at) = tables_at.filter(|_| sql.versioned && !sql.uses_version) {
        return Err(src.error_at(
            at,
            format!("{label} declares versioned_tables but no SQL uses {VERSION_TOKEN} (name the tables <table>_v{VERSION_TOKEN})"),
        ));
    }
    Ok(ProjectionSpec {
        name,
        setup,
        reset,
        batch_size: own.batch_size,
        max_retries: own.max_retries,
        on_error: own.on_error,
        versioned_tables,
        handlers,
        batch_handlers,
    })
}

/// The checked `versioned_tables`, and where the list starts.
fn versioned_tables(
    raw: Option<Spanned<Vec<Spanned<String>>>>,
    label: &str,
    src: &Source,
) -> Result<(Vec<Identifier>, Option<usize>), SpecError> {
    let Some(raw) = raw else {
        return Ok((Vec::new(), None));
    };
    let at = raw.span().start;
    let mut tables: Vec<Identifier> = Vec::new();
    for t in raw.into_inner() {
        let here = t.span().start;
        let table = Identifier::parse(t.get_ref())
            .map_err(|e| src.error_at(here, format!("{label}: invalid versioned table: {e}")))?;
        if table.as_str().len() > MAX_VERSIONED_TABLE {
            return Err(src.error_at(here, format!(
                "{label}: versioned table {:?} is longer than {MAX_VERSIONED_TABLE} bytes, which leaves no room for its _v<version> suffix",
                table.as_str()
            )));
        }
        if tables.contains(&table) {
            return Err(src.error_at(
                here,
                format!(
                    "{label}: versioned table {:?} is listed twice",
                    table.as_str()
                ),
            ));
        }
        tables.push(table);
    }
    Ok((tables, Some(at)))
}

/// The checks every SQL string of one projection goes through.
struct SqlChecker<'a> {
    src: &'a Source<'a>,
    label: &'a str,
    /// Whether `{version}` may appear.
    versioned: bool,
    /// Whether it has appeared so far.
    uses_version: bool,
}

impl SqlChecker<'_> {
    /// Checks that `sql` is not blank and uses `{version}` only if allowed;
    /// `what` names it in messages (`setup`, `handler "X"`).
    fn common(&mut self, what: &str, sql: &Spanned<String>) -> Result<(), SpecError> {
        let label = self.label;
        if sql.get_ref().trim().is_empty() {
            return Err(self.src.error_at(
                sql.span().start,
                format!("{label}: {what}: empty SQL statement"),
            ));
        }
        if let Some(at) = sql.get_ref().find(VERSION_TOKEN) {
            if !self.versioned {
                return Err(self.src.error_in(sql, at, VERSION_TOKEN, format!(
                    "{label}: {what}: uses {VERSION_TOKEN} but the projection declares no versioned_tables"
                )));
            }
            self.uses_version = true;
        }
        Ok(())
    }

    /// Setup or reset SQL: run as written, so it may hold no parameters.
    fn plain(
        &mut self,
        what: &str,
        value: Option<Spanned<SqlValue>>,
    ) -> Result<Vec<String>, SpecError> {
        let Some(value) = value else {
            return Ok(Vec::new());
        };
        let (_, list) = statements(value);
        let mut out = Vec::with_capacity(list.len());
        for sql in list {
            self.common(what, &sql)?;
            let first = match scan(sql.get_ref()) {
                Ok(found) => found
                    .into_iter()
                    .next()
                    .map(|p| (p.range.start, sql.get_ref()[p.range].to_owned())),
                Err(e) => Some((e.offset(), e.token().to_owned())),
            };
            if let Some((at, token)) = first {
                return Err(self.src.error_in(&sql, at, &token, format!(
                    "{}: {what}: {token} is not allowed: {what} SQL runs without an event, so it takes no parameters",
                    self.label
                )));
            }
            out.push(sql.into_inner());
        }
        Ok(out)
    }

    /// One handler: its statements with parameters made positional.
    fn handler(
        &mut self,
        event_type: &Spanned<String>,
        value: Spanned<SqlValue>,
    ) -> Result<Vec<Statement>, SpecError> {
        let label = self.label;
        let (what, list) = self.handler_list("handler", event_type, value)?;
        let mut out = Vec::with_capacity(list.len());
        for sql in list {
            let statement = rewrite(sql.get_ref()).map_err(|e| {
                self.src
                    .error_in(&sql, e.offset(), e.token(), format!("{label}: {what}: {e}"))
            })?;
            out.push(statement);
        }
        Ok(out)
    }

    /// One set-based handler: its statements with `batch` in front.
    fn batch_handler(
        &mut self,
        event_type: &Spanned<String>,
        value: Spanned<SqlValue>,
    ) -> Result<Vec<BatchStatement>, SpecError> {
        let label = self.label;
        let (what, list) = self.handler_list("batch handler", event_type, value)?;
        let mut out = Vec::with_capacity(list.len());
        for sql in list {
            let (body, _) = sql_lex::single_statement(sql.get_ref());
            let statement = compose(body).map_err(|e| {
                let message = format!("{label}: {what}: {e}");
                match e.at() {
                    Some((at, token)) => self.src.error_in(&sql, at, token, message),
                    None => self.src.error_at(sql.span().start, message),
                }
            })?;
            out.push(statement);
        }
        Ok(out)
    }

    /// The statements of a handler of either kind, each checked to be one
    /// non-blank statement; `kind` starts the label (`handler "X"`).
    fn handler_list(
        &mut self,
        kind: &str,
        event_type: &Spanned<String>,
        value: Spanned<SqlValue>,
    ) -> Result<(String, Vec<Spanned<String>>), SpecError> {
        let label = self.label;
        if event_type.get_ref().trim().is_empty() {
            return Err(self.src.error_at(
                event_type.span().start,
                format!("{label}: an event type must not be empty"),
            ));
        }
        let what = format!("{kind} {:?}", event_type.get_ref());
        let (span, list) = statements(value);
        if list.is_empty() {
            return Err(self.src.error_at(
                span.start,
                format!("{label}: {what}: no SQL statements (give a string or a non-empty array of strings)"),
            ));
        }
        for sql in &list {
            self.common(&what, sql)?;
            let (body, single) = sql_lex::single_statement(sql.get_ref());
            if !single {
                let at = sql_lex::tokens(body)
                    .into_iter()
                    .find(|(_, t)| *t == sql_lex::Token::Semicolon)
                    .map_or(0, |(r, _)| r.start);
                return Err(self.src.error_in(sql, at, ";", format!(
                    "{label}: {what}: one statement per string (a handler's statements run one by one: give an array of strings)"
                )));
            }
        }
        Ok((what, list))
    }
}
