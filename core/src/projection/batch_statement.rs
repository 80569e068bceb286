//! A set-based handler statement: SQL that sees a batch's events of one type
//! as the relation `batch`, run once per batch instead of once per event.

use serde::Serialize;

use super::param_source::ParamSource;
use super::placeholders::{scan, PlaceholderError};
use super::sql_lex::{self, Token};

/// The columns of `batch` that every set-based statement gets, in the order
/// of their array parameters (`$2` onwards; `$1` is the event type), with
/// their SQL types. Then comes `tenant_id` (looked up by stream), then one
/// text column per `:data.<path>` / `:headers.<path>` the statement names.
pub const BATCH_COLUMNS: [(&str, ParamSource); 12] = [
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
];

/// A set-based statement ready to run: `sql` puts the relation `batch` in
/// front of the statement as written. Its parameters: `$1` the event type
/// (text), then one array per [`BATCH_COLUMNS`] entry, then one text array
/// per entry of `paths`, all with one element per event of the slice (whose
/// events of other types the relation leaves out).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BatchStatement {
    /// The SQL with positional parameters.
    pub sql: String,
    /// The body and header fields that are columns of `batch`, in
    /// parameter order after the [`BATCH_COLUMNS`].
    pub paths: Vec<ParamSource>,
    /// The [`BATCH_COLUMNS`] whose arrays must be bound. The others may be
    /// bound empty (their column is then NULL): the statement cannot reach
    /// them (see [`reachable_columns`]).
    pub needs: Vec<ParamSource>,
}

/// Why a set-based statement is refused. Offsets are bytes into it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchSqlError {
    /// A malformed or unknown placeholder.
    #[error(transparent)]
    Placeholder(#[from] PlaceholderError),
    /// A placeholder of the whole event, which is a column here.
    #[error("{token} is a column of batch in set-based SQL: write {column} (and FROM batch)")]
    NotAValue {
        /// Where it starts.
        offset: usize,
        /// As written.
        token: String,
        /// The column to use instead.
        column: String,
    },
    /// A field whose column name Postgres would truncate.
    #[error("{token} is too long to be a column of batch (at most 63 bytes after the ':')")]
    PathTooLong {
        /// Where it starts.
        offset: usize,
        /// As written.
        token: String,
    },
    /// The statement never reads `batch`.
    #[error("set-based SQL must read the relation batch (for example SELECT ... FROM batch GROUP BY stream_id)")]
    NoBatch,
}

impl BatchSqlError {
    /// Where the mistake starts, and the text found there.
    pub fn at(&self) -> Option<(usize, &str)> {
        match self {
            BatchSqlError::Placeholder(e) => Some((e.offset(), e.token())),
            BatchSqlError::NotAValue { offset, token, .. }
            | BatchSqlError::PathTooLong { offset, token } => Some((*offset, token)),
            BatchSqlError::NoBatch => None,
        }
    }
}

/// The column a path placeholder stands for in `batch`: its name without
/// the `:`, double-quoted (`"data.amount"`). Segments are ASCII names, so
/// nothing needs escaping.
pub fn path_column(source: &ParamSource) -> String {
    let name = source.to_string();
    format!("\"{}\"", &name[1..])
}

/// Checks one set-based statement (already known to be a single, non-empty
/// statement) and puts `batch` in front of it. `:data.<path>` and
/// `:headers.<path>` become columns of `batch`; other placeholders are
/// refused, since the event's fields are columns here.
pub fn compose(sql: &str) -> Result<BatchStatement, BatchSqlError> {
    let mut body = String::with_capacity(sql.len());
    let mut paths: Vec<ParamSource> = Vec::new();
    let mut copied = 0;
    for placeholder in scan(sql)? {
        let token = &sql[placeholder.range.clone()];
        match &placeholder.source {
            ParamSource::DataPath(_) | ParamSource::HeaderPath(_) => {
                if token.len() - 1 > 63 {
                    return Err(BatchSqlError::PathTooLong {
                        offset: placeholder.range.start,
                        token: token.to_owned(),
                    });
                }
                if !paths.contains(&placeholder.source) {
                    paths.push(placeholder.source.clone());
                }
                body.push_str(&sql[copied..placeholder.range.start]);
                body.push_str(&path_column(&placeholder.source));
                copied = placeholder.range.end;
            }
            other => {
                return Err(BatchSqlError::NotAValue {
                    offset: placeholder.range.start,
                    token: token.to_owned(),
                    column: other.to_string()[1..].to_owned(),
                })
            }
        }
    }
    body.push_str(&sql[copied..]);
    if !sql_lex::mentions(&body, "batch") {
        return Err(BatchSqlError::NoBatch);
    }
    let needs = reachable_columns(&body);
    Ok(BatchStatement {
        sql: with_batch(&body, &paths, &needs),
        needs,
        paths,
    })
}

/// Words after `batch` that are not an alias for it.
const NOT_ALIASES: [&str; 24] = [
    "where",
    "group",
    "order",
    "having",
    "window",
    "limit",
    "offset",
    "fetch",
    "for",
    "on",
    "using",
    "join",
    "left",
    "right",
    "inner",
    "full",
    "cross",
    "union",
    "intersect",
    "except",
    "returning",
    "natural",
    "lateral",
    "tablesample",
];

/// The [`BATCH_COLUMNS`] that `body` may read: those it names, when it
/// provably reads no others; every one otherwise. A column it does not
/// name could still be reached through `*` (other than `count(*)`), a
/// whole-row reference to `batch` or its alias, or a NATURAL join; so the
/// columns are narrowed only when `batch` and its alias appear just after
/// FROM or JOIN, as the alias's definition, or before a `.`, and no such
/// construct appears. Bodies of several kilobytes of JSON per batch are
/// what this saves.
pub fn reachable_columns(body: &str) -> Vec<ParamSource> {
    let all = || BATCH_COLUMNS.iter().map(|(_, s)| s.clone()).collect();
    let toks: Vec<Token> = sql_lex::tokens(body).into_iter().map(|(_, t)| t).collect();
    let word = |i: usize| match toks.get(i) {
        Some(Token::Word(w)) => Some(w.as_str()),
        _ => None,
    };
    let punct = |i: usize, c: u8| toks.get(i) == Some(&Token::Punct(c));
    let mut names = vec!["batch".to_owned()];
    let mut definitions = Vec::new();
    for i in 0..toks.len() {
        if word(i) != Some("batch") {
            continue;
        }
        let at = if word(i + 1) == Some("as") {
            i + 2
        } else {
            i + 1
        };
        if matches!(toks.get(at), Some(Token::QuotedName(_))) {
            // A quoted alias is not followed up: every column.
            return all();
        }
        if let Some(alias) = word(at).filter(|w| !NOT_ALIASES.contains(w) && *w != "as") {
            names.push(alias.to_owned());
            definitions.push(at);
        }
    }
    for (i, t) in toks.iter().enumerate() {
        let whole_row_risk = match t {
            Token::Punct(b'*') => {
                !(i >= 2
                    && punct(i - 1, b'(')
                    && word(i - 2) == Some("count")
                    && punct(i + 1, b')'))
            }
            Token::Word(w) if w == "natural" => true,
            Token::Word(w) if names.contains(w) => {
                let after_from = i >= 1 && matches!(word(i - 1), Some("from" | "join"));
                !(after_from || definitions.contains(&i) || punct(i + 1, b'.'))
            }
            Token::QuotedName(_) => false,
            _ => false,
        };
        if whole_row_risk {
            return all();
        }
    }
    let mut named: Vec<String> = toks
        .iter()
        .filter_map(|t| match t {
            Token::Word(w) => Some(w.clone()),
            _ => None,
        })
        .collect();
    // Quoted names count as written, and a quoted `batch` or alias is not
    // followed up: every column then.
    for (range, t) in sql_lex::tokens(body) {
        if let Token::QuotedName(_) = t {
            let written = &body[range];
            let inner = written
                .strip_prefix('"')
                .and_then(|w| w.strip_suffix('"'))
                .unwrap_or(written)
                .to_owned();
            if names.contains(&inner) {
                return all();
            }
            named.push(inner);
        }
    }
    BATCH_COLUMNS
        .iter()
        .filter(|(name, _)| {
            named.iter().any(|w| w == name)
                // The relation keeps its rows by type; the owner is looked
                // up by stream.
                || *name == "event_type"
                || (*name == "stream_id" && named.iter().any(|w| w == "tenant_id"))
        })
        .map(|(_, s)| s.clone())
        .collect()
}

/// `WITH batch AS (...)` in front of `body`, merged into the statement's
/// own `WITH [RECURSIVE]` when it has one.
fn with_batch(body: &str, paths: &[ParamSource], needs: &[ParamSource]) -> String {
    let toks = sql_lex::tokens(body);
    let mut words = toks.iter().filter_map(|(r, t)| match t {
        Token::Word(w) => Some((r.clone(), w.as_str())),
        _ => None,
    });
    let relation = relation(paths, needs);
    match (toks.first(), words.next(), words.next()) {
        (Some((_, Token::Word(_))), Some((with, "with")), second) => {
            let (recursive, rest) = match second {
                Some((r, "recursive")) => ("RECURSIVE ", r.end),
                _ => ("", with.end),
            };
            format!("WITH {recursive}{relation},{}", &body[rest..])
        }
        _ => format!("WITH {relation}\n{body}"),
    }
}

/// `batch AS (...)`: the arrays unnested in step, the slice's events of the
/// type in `$1` kept. A column the statement cannot reach (not in `needs`)
/// is a typed NULL: its array is still a parameter, bound empty, but is not
/// unnested.
fn relation(paths: &[ParamSource], needs: &[ParamSource]) -> String {
    let mut arrays = Vec::new();
    let mut names = Vec::new();
    let mut columns = vec!["u.seq".to_owned()];
    for (n, (name, source)) in BATCH_COLUMNS.iter().enumerate() {
        if needs.contains(source) {
            arrays.push(format!("${}::{}[]", n + 2, array_type(source)));
            names.push((*name).to_owned());
            columns.push(element(&format!("u.{name}"), source, name));
        } else {
            columns.push(format!("NULL::{} AS {name}", sql_type(source)));
        }
    }
    let owner = if needs.contains(&ParamSource::StreamId) {
        "(SELECT rf_owner.tenant_id FROM rf_streams rf_owner WHERE rf_owner.stream_id = u.stream_id)"
    } else {
        "NULL::text"
    };
    columns.push(format!("{owner} AS tenant_id"));
    for (n, path) in paths.iter().enumerate() {
        let column = path_column(path);
        arrays.push(format!("${}::text[]", n + 2 + BATCH_COLUMNS.len()));
        columns.push(format!("u.{column}"));
        names.push(column);
    }
    names.push("seq".to_owned());
    format!(
        "batch AS (SELECT {} FROM unnest({}) WITH ORDINALITY AS u({}) WHERE u.event_type = $1::text)",
        columns.join(", "),
        arrays.join(", "),
        names.join(", ")
    )
}

/// The element type of the array that carries `source`'s values for a
/// batch: its SQL type, except that bodies and headers travel as JSON text
/// and become jsonb only where a statement uses them (an unused column of
/// `batch` is never computed), so a batch does not pay for parsing them.
pub fn array_type(source: &ParamSource) -> &'static str {
    match source {
        ParamSource::Data | ParamSource::Headers => "text",
        other => sql_type(other),
    }
}

/// An array element as the value of `source` (`x` or `x::jsonb`), named
/// `name` when it needs a cast.
pub fn element(expr: &str, source: &ParamSource, name: &str) -> String {
    if array_type(source) == sql_type(source) {
        expr.to_owned()
    } else {
        format!("{expr}::{} AS {name}", sql_type(source))
    }
}

/// The SQL type a source's value is bound as, in handlers and in `batch`.
pub fn sql_type(source: &ParamSource) -> &'static str {
    match source {
        ParamSource::StreamId
        | ParamSource::EventId
        | ParamSource::CausationId
        | ParamSource::CorrelationId => "uuid",
        ParamSource::Version | ParamSource::Position | ParamSource::TxId => "bigint",
        ParamSource::SchemaVersion => "integer",
        ParamSource::CreatedAt => "timestamptz",
        ParamSource::Data | ParamSource::Headers => "jsonb",
        ParamSource::EventType
        | ParamSource::TenantId
        | ParamSource::DataPath(_)
        | ParamSource::HeaderPath(_) => "text",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reach(body: &str) -> Vec<&'static str> {
        let needs = reachable_columns(body);
        BATCH_COLUMNS
            .iter()
            .filter(|(_, s)| needs.contains(s))
            .map(|(n, _)| *n)
            .collect()
    }

    #[test]
    fn only_columns_that_cannot_be_reached_are_left_out() {
        let every: Vec<&str> = BATCH_COLUMNS.iter().map(|(n, _)| *n).collect();
        let narrowed = [
            (
                "SELECT stream_id, count(*), max(version) FROM batch GROUP BY stream_id",
                vec!["stream_id", "version", "event_type"],
            ),
            (
                "SELECT b.data FROM batch AS b JOIN t ON t.id = b.position",
                vec!["position", "event_type", "data"],
            ),
            (
                "SELECT \"created_at\" FROM t JOIN batch x USING (tx_id)",
                vec!["tx_id", "event_type", "created_at"],
            ),
            (
                "SELECT tenant_id FROM batch",
                vec!["stream_id", "event_type"],
            ),
        ];
        for (sql, want) in narrowed {
            assert_eq!(reach(sql), want, "{sql}");
        }
        let whole = [
            "SELECT * FROM batch",
            "SELECT b.* FROM batch b",
            "SELECT to_jsonb(b) FROM batch b",
            "SELECT batch FROM batch",
            "SELECT x FROM t, batch",
            "SELECT x FROM t NATURAL JOIN batch",
            "SELECT sum(version * 2) FROM batch",
            "SELECT (b).data FROM batch b",
            "SELECT row_to_json(\"batch\") FROM batch",
            "SELECT to_jsonb(\"B\") FROM batch \"B\"",
        ];
        for sql in whole {
            assert_eq!(reach(sql), every, "{sql}");
        }
    }

    #[test]
    fn a_leading_with_is_merged() {
        let s =
            compose("with recursive x AS (SELECT 1) INSERT INTO t SELECT * FROM batch").unwrap();
        assert!(
            s.sql.starts_with("WITH RECURSIVE batch AS (SELECT u.seq"),
            "{}",
            s.sql
        );
        assert!(
            s.sql
                .ends_with("), x AS (SELECT 1) INSERT INTO t SELECT * FROM batch"),
            "{}",
            s.sql
        );
        let s = compose("INSERT INTO t SELECT :data.a.b::int FROM batch").unwrap();
        assert!(
            s.sql
                .ends_with(")\nINSERT INTO t SELECT \"data.a.b\"::int FROM batch"),
            "{}",
            s.sql
        );
        assert!(s.sql.contains("unnest($7::text[], $14::text[]) WITH ORDINALITY AS u(event_type, \"data.a.b\", seq)"), "{}", s.sql);
    }
}
