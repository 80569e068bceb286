//! Named parameters in declared SQL: `:stream_id`, `:data.amount`, ... are
//! rewritten to `$1`, `$2`, ... and remembered as where each value comes
//! from. The scanner knows enough SQL lexing to leave alone what only looks
//! like a placeholder: casts (`::int`), string literals, quoted identifiers,
//! comments, dollar-quoted bodies and array slices (`a[1:2]`).

use serde::Serialize;

/// Where a parameter's value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum ParamSource {
    /// The event's stream (uuid).
    StreamId,
    /// The event's version in its stream (bigint).
    Version,
    /// The event's global position (bigint).
    Position,
    /// The id of the transaction that appended it (bigint).
    TxId,
    /// The event's id (uuid).
    EventId,
    /// The event's type (text).
    EventType,
    /// The body's schema version (int).
    SchemaVersion,
    /// When it was appended (timestamptz).
    CreatedAt,
    /// Causation id (uuid, nullable).
    CausationId,
    /// Correlation id (uuid, nullable).
    CorrelationId,
    /// The whole JSON body (jsonb).
    Data,
    /// The whole headers object (jsonb).
    Headers,
    /// A field of the body, bound as text.
    DataPath(Vec<String>),
    /// A field of the headers, bound as text.
    HeaderPath(Vec<String>),
}

/// A statement with positional parameters: `params[i]` is `$i+1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Statement {
    /// The SQL with `$n` placeholders.
    pub sql: String,
    /// The value of each placeholder.
    pub params: Vec<ParamSource>,
}

/// A placeholder problem at a byte offset of the statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceholderError {
    /// Byte offset of the offending text in the statement.
    pub offset: usize,
    /// The offending text, as written.
    pub token: String,
    /// What is wrong.
    pub message: String,
}

/// Names a placeholder may have, for error messages.
pub const KNOWN: &str = ":stream_id, :version, :position, :tx_id, :event_id, :event_type, \
     :schema_version, :created_at, :causation_id, :correlation_id, :data, :headers, \
     :data.<path>, :headers.<path>";

fn source_of(name: &str) -> Option<ParamSource> {
    let mut parts = name.split('.');
    let root = parts.next()?;
    let path: Vec<String> = parts.map(str::to_owned).collect();
    let plain = |s: ParamSource| path.is_empty().then_some(s);
    match root {
        "stream_id" => plain(ParamSource::StreamId),
        "version" => plain(ParamSource::Version),
        "position" => plain(ParamSource::Position),
        "tx_id" => plain(ParamSource::TxId),
        "event_id" => plain(ParamSource::EventId),
        "event_type" => plain(ParamSource::EventType),
        "schema_version" => plain(ParamSource::SchemaVersion),
        "created_at" => plain(ParamSource::CreatedAt),
        "causation_id" => plain(ParamSource::CausationId),
        "correlation_id" => plain(ParamSource::CorrelationId),
        "data" if path.is_empty() => Some(ParamSource::Data),
        "data" => Some(ParamSource::DataPath(path)),
        "headers" if path.is_empty() => Some(ParamSource::Headers),
        "headers" => Some(ParamSource::HeaderPath(path)),
        _ => None,
    }
}

fn ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn ident_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Where the lexical element starting at `i` ends, when it is one the
/// scanner must copy untouched (literal, quoted name, comment, dollar body).
fn skip_opaque(sql: &[u8], i: usize) -> Option<usize> {
    let at = |k: usize| sql.get(k).copied();
    match sql[i] {
        b'\'' => {
            // E'...' strings escape with backslashes; others double quotes.
            let escaped =
                i > 0 && matches!(sql[i - 1], b'E' | b'e') && (i < 2 || !ident_char(sql[i - 2]));
            let mut k = i + 1;
            while k < sql.len() {
                match sql[k] {
                    b'\\' if escaped => k += 2,
                    b'\'' if at(k + 1) == Some(b'\'') => k += 2,
                    b'\'' => return Some(k + 1),
                    _ => k += 1,
                }
            }
            Some(sql.len())
        }
        b'"' => {
            let mut k = i + 1;
            while k < sql.len() {
                if sql[k] == b'"' {
                    if at(k + 1) == Some(b'"') {
                        k += 2;
                        continue;
                    }
                    return Some(k + 1);
                }
                k += 1;
            }
            Some(sql.len())
        }
        b'-' if at(i + 1) == Some(b'-') => {
            let end = sql[i..]
                .iter()
                .position(|b| *b == b'\n')
                .map_or(sql.len(), |p| i + p);
            Some(end)
        }
        b'/' if at(i + 1) == Some(b'*') => {
            let (mut depth, mut k) = (1, i + 2);
            while k < sql.len() && depth > 0 {
                if sql[k] == b'/' && at(k + 1) == Some(b'*') {
                    depth += 1;
                    k += 2;
                } else if sql[k] == b'*' && at(k + 1) == Some(b'/') {
                    depth -= 1;
                    k += 2;
                } else {
                    k += 1;
                }
            }
            Some(k)
        }
        b'$' => {
            // $tag$ ... $tag$ or $$ ... $$; a `$` inside an identifier is not one.
            if i > 0 && ident_char(sql[i - 1]) {
                return None;
            }
            let mut k = i + 1;
            if at(k).is_some_and(ident_start) {
                while at(k).is_some_and(ident_char) {
                    k += 1;
                }
            }
            if at(k) != Some(b'$') {
                return None;
            }
            let tag = &sql[i..=k];
            let body = k + 1;
            let end = sql[body..]
                .windows(tag.len())
                .position(|w| w == tag)
                .map_or(sql.len(), |p| body + p + tag.len());
            Some(end)
        }
        _ => None,
    }
}

/// Rewrites `:name` placeholders to `$n`.
pub fn rewrite(sql: &str) -> Result<Statement, PlaceholderError> {
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let mut params: Vec<ParamSource> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if let Some(end) = skip_opaque(bytes, i) {
            i = end;
            continue;
        }
        match bytes[i] {
            b'$' if bytes.get(i + 1).is_some_and(u8::is_ascii_digit)
                && !(i > 0 && ident_char(bytes[i - 1])) =>
            {
                let len = bytes[i + 1..]
                    .iter()
                    .take_while(|b| b.is_ascii_digit())
                    .count();
                return Err(PlaceholderError {
                    offset: i,
                    token: sql[i..i + 1 + len].to_owned(),
                    message:
                        "positional parameters are not allowed; use named ones such as :stream_id"
                            .into(),
                });
            }
            b':' if bytes.get(i + 1) == Some(&b':') => i += 2,
            // After a name, `a[lo:hi]` is an array slice, not a placeholder.
            b':' if i > 0 && ident_char(bytes[i - 1]) => i += 1,
            b':' if bytes.get(i + 1).copied().is_some_and(ident_start) => {
                let mut k = i + 1;
                loop {
                    while bytes.get(k).copied().is_some_and(ident_char) {
                        k += 1;
                    }
                    // A dot continues the path only when a name follows it.
                    if bytes.get(k) == Some(&b'.')
                        && bytes.get(k + 1).copied().is_some_and(ident_start)
                    {
                        k += 1;
                        continue;
                    }
                    break;
                }
                let name = &sql[i + 1..k];
                let Some(source) = source_of(name) else {
                    return Err(PlaceholderError {
                        offset: i,
                        token: format!(":{name}"),
                        message: format!("unknown placeholder :{name} (known: {KNOWN})"),
                    });
                };
                let number = match names.iter().position(|n| n == name) {
                    Some(p) => p + 1,
                    None => {
                        names.push(name.to_owned());
                        params.push(source);
                        names.len()
                    }
                };
                out.push_str(&sql[copied..i]);
                out.push('$');
                out.push_str(&number.to_string());
                copied = k;
                i = k;
            }
            _ => i += 1,
        }
    }
    out.push_str(&sql[copied..]);
    Ok(Statement { sql: out, params })
}

/// Whether `sql` holds a `:name` placeholder (where none is allowed).
pub fn first_placeholder(sql: &str) -> Option<PlaceholderError> {
    match rewrite(sql) {
        Ok(s) if s.params.is_empty() => None,
        Ok(_) => {
            let at = rewrite_offset(sql);
            Some(PlaceholderError {
                offset: at.0,
                token: at.1,
                message: "placeholders are only bound in handlers, not in setup or reset SQL"
                    .into(),
            })
        }
        Err(e) => Some(e),
    }
}

/// Offset and text of the first placeholder (for error messages).
fn rewrite_offset(sql: &str) -> (usize, String) {
    let b = sql.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if let Some(end) = skip_opaque(b, i) {
            i = end;
            continue;
        }
        if b[i] == b':' && b.get(i + 1) == Some(&b':') {
            i += 2;
            continue;
        }
        if b[i] == b':' && i > 0 && ident_char(b[i - 1]) {
            i += 1;
            continue;
        }
        if b[i] == b':' && b.get(i + 1).copied().is_some_and(ident_start) {
            let len = b[i + 1..]
                .iter()
                .take_while(|c| ident_char(**c) || **c == b'.')
                .count();
            return (i, sql[i..i + 1 + len].to_owned());
        }
        i += 1;
    }
    (0, String::new())
}

/// A field of a JSON value as bind text: strings as they are, numbers and
/// booleans as JSON writes them, objects and arrays as compact JSON; null
/// or missing as None (SQL NULL).
pub fn json_path_text(value: &serde_json::Value, path: &[String]) -> Option<String> {
    let mut v = value;
    for key in path {
        v = v.as_object()?.get(key)?;
    }
    match v {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}
