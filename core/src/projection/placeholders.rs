//! Finds the named parameters (`:stream_id`, `:data.amount`, ...) in one SQL
//! statement.
//!
//! The scanner lexes just enough SQL to leave alone what only looks like a
//! placeholder:
//! - `::type` casts (`:data.amount::bigint` is `:data.amount`, then a cast);
//! - string literals (`'it''s'`, and `E'\''` with backslash escapes), quoted
//!   identifiers (`"a:b"`), `-- line` and nested `/* block */` comments,
//!   dollar-quoted bodies (`$$ ... $$`, `$fn$ ... $fn$`);
//! - array slices: a `:` followed by a digit (`a[1:2]`), or, inside square
//!   brackets, a `:` right after a name, digit or closing bracket
//!   (`a[lo:hi]`). Write a placeholder bound as `a[lo: :data.hi::int]`.
//!
//! Refused rather than guessed at: positional `$1` parameters (mixed with
//! named ones the numbering would be ambiguous), a placeholder glued to a
//! word (`x:version` would become the identifier `x$1`), and a name that
//! would be cut short (`:data.1st`, `:données`).

use std::ops::Range;

use super::param_source::{ParamSource, KNOWN};

/// One placeholder in a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placeholder {
    /// Byte range of `:name` in the statement.
    pub range: Range<usize>,
    /// What it stands for.
    pub source: ParamSource,
}

/// A statement whose parameters cannot be rewritten. Offsets are bytes into
/// the statement, for pointing at the mistake.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlaceholderError {
    /// A `:name` that no event field has.
    #[error("unknown placeholder {token} (known: {KNOWN})")]
    Unknown {
        /// Where `token` starts.
        offset: usize,
        /// The placeholder as written, `:` included.
        token: String,
    },
    /// A positional `$n` parameter.
    #[error(
        "positional parameter {token} is not allowed; use named placeholders such as :stream_id"
    )]
    Positional {
        /// Where `token` starts.
        offset: usize,
        /// The parameter as written.
        token: String,
    },
    /// A placeholder right after a word (`x:version`): `x$1` would be one
    /// identifier to Postgres.
    #[error("placeholder {token} directly follows a word; put a space or an operator before it")]
    Glued {
        /// Where `token` starts.
        offset: usize,
        /// The placeholder as written.
        token: String,
    },
    /// A name that would be cut short, such as `:data.1st` or `:données`:
    /// the rest would reach Postgres glued to `$n`.
    #[error("malformed placeholder {token}: names and path segments are ASCII letters, digits and '_', not starting with a digit")]
    Malformed {
        /// Where `token` starts.
        offset: usize,
        /// The placeholder up to and including the offending character.
        token: String,
    },
}

impl PlaceholderError {
    /// Byte offset of the offending text in the statement.
    pub fn offset(&self) -> usize {
        match self {
            PlaceholderError::Unknown { offset, .. }
            | PlaceholderError::Positional { offset, .. }
            | PlaceholderError::Glued { offset, .. }
            | PlaceholderError::Malformed { offset, .. } => *offset,
        }
    }

    /// The offending text as written.
    pub fn token(&self) -> &str {
        match self {
            PlaceholderError::Unknown { token, .. }
            | PlaceholderError::Positional { token, .. }
            | PlaceholderError::Glued { token, .. }
            | PlaceholderError::Malformed { token, .. } => token,
        }
    }
}

/// The placeholders of `sql`, in order of appearance (repeats included).
pub fn scan(sql: &str) -> Result<Vec<Placeholder>, PlaceholderError> {
    let b = sql.as_bytes();
    let mut found = Vec::new();
    // Square-bracket depth, for telling slices from placeholders.
    let mut brackets = 0usize;
    let mut i = 0;
    while i < b.len() {
        let next = b.get(i + 1).copied();
        let prev = i.checked_sub(1).map(|p| b[p]);
        let after_word = prev.is_some_and(word_char);
        match b[i] {
            b'\'' => {
                let backslashes =
                    i > 0 && matches!(b[i - 1], b'E' | b'e') && (i < 2 || !word_char(b[i - 2]));
                i = end_of_quoted(b, i, backslashes);
            }
            b'"' => i = end_of_quoted(b, i, false),
            b'-' if next == Some(b'-') => {
                i = b[i..]
                    .iter()
                    .position(|c| *c == b'\n')
                    .map_or(b.len(), |p| i + p);
            }
            b'/' if next == Some(b'*') => i = end_of_block_comment(b, i),
            // `price$1` and `a$$` are identifiers: `$` may continue a name.
            b'$' if after_word => i += 1,
            b'$' if next.is_some_and(|c| c.is_ascii_digit()) => {
                let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
                return Err(PlaceholderError::Positional {
                    offset: i,
                    token: sql[i..i + 1 + digits].to_owned(),
                });
            }
            b'$' => i = end_of_dollar_quoted(b, i).unwrap_or(i + 1),
            b'[' => {
                brackets += 1;
                i += 1;
            }
            b']' => {
                brackets = brackets.saturating_sub(1);
                i += 1;
            }
            b':' if next == Some(b':') => i += 2,
            b':' if brackets > 0 && (after_word || matches!(prev, Some(b')' | b']'))) => i += 1,
            b':' if next.is_some_and(ident_start) => {
                let placeholder = placeholder_at(sql, i)?;
                if after_word {
                    return Err(PlaceholderError::Glued {
                        offset: i,
                        token: sql[placeholder.range].to_owned(),
                    });
                }
                i = placeholder.range.end;
                found.push(placeholder);
            }
            _ => i += 1,
        }
    }
    Ok(found)
}

/// The placeholder whose `:` is at `start`.
fn placeholder_at(sql: &str, start: usize) -> Result<Placeholder, PlaceholderError> {
    let b = sql.as_bytes();
    let mut end = start + 1;
    loop {
        while b.get(end).copied().is_some_and(ident_char) {
            end += 1;
        }
        // A dot continues the path only when a segment follows; otherwise
        // it is left to SQL.
        if b.get(end) == Some(&b'.') && b.get(end + 1).copied().is_some_and(ident_start) {
            end += 1;
            continue;
        }
        break;
    }
    let malformed = match b.get(end).copied() {
        Some(c) if c >= 0x80 => sql[end..].chars().next().map(char::len_utf8),
        Some(b'.')
            if b.get(end + 1)
                .is_some_and(|c| c.is_ascii_digit() || *c == b'"') =>
        {
            Some(2)
        }
        _ => None,
    };
    if let Some(extra) = malformed {
        return Err(PlaceholderError::Malformed {
            offset: start,
            token: sql[start..end + extra].to_owned(),
        });
    }
    match ParamSource::from_name(&sql[start + 1..end]) {
        Some(source) => Ok(Placeholder {
            range: start..end,
            source,
        }),
        None => Err(PlaceholderError::Unknown {
            offset: start,
            token: sql[start..end].to_owned(),
        }),
    }
}

pub(super) fn ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

pub(super) fn ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// A byte that can be part of an SQL word (Postgres names may hold `$` and
/// any non-ASCII letter).
pub(super) fn word_char(c: u8) -> bool {
    ident_char(c) || c == b'$' || c >= 0x80
}

/// The end of the quoted text opened at `open` (`'` or `"`): a doubled
/// quote escapes itself, and in `E'...'` so does a backslash. Unterminated
/// text runs to the end; Postgres will report it.
pub(super) fn end_of_quoted(b: &[u8], open: usize, backslashes: bool) -> usize {
    let quote = b[open];
    let mut k = open + 1;
    while k < b.len() {
        let escaped_quote = b[k] == quote && b.get(k + 1) == Some(&quote);
        if escaped_quote || (backslashes && b[k] == b'\\') {
            k += 2;
        } else if b[k] == quote {
            return k + 1;
        } else {
            k += 1;
        }
    }
    b.len()
}

/// The end of the `/* ... */` opened at `open`; Postgres nests them.
pub(super) fn end_of_block_comment(b: &[u8], open: usize) -> usize {
    let (mut depth, mut k) = (1usize, open + 2);
    while k < b.len() && depth > 0 {
        match (b[k], b.get(k + 1)) {
            (b'/', Some(b'*')) => {
                depth += 1;
                k += 2;
            }
            (b'*', Some(b'/')) => {
                depth -= 1;
                k += 2;
            }
            _ => k += 1,
        }
    }
    k.min(b.len())
}

/// The end of the dollar-quoted body whose opening tag (`$$` or `$tag$`)
/// starts at `open`, or None when no tag starts there.
pub(super) fn end_of_dollar_quoted(b: &[u8], open: usize) -> Option<usize> {
    let mut k = open + 1;
    if b.get(k).is_some_and(|c| ident_start(*c) || *c >= 0x80) {
        while b.get(k).is_some_and(|c| ident_char(*c) || *c >= 0x80) {
            k += 1;
        }
    }
    if b.get(k) != Some(&b'$') {
        return None;
    }
    let tag = &b[open..=k];
    let body = k + 1;
    Some(
        b[body..]
            .windows(tag.len())
            .position(|w| w == tag)
            .map_or(b.len(), |p| body + p + tag.len()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_the_placeholder_text() {
        let sql = "x = :data.a.b::int, y = :stream_id";
        let found = scan(sql).unwrap();
        let texts: Vec<&str> = found.iter().map(|p| &sql[p.range.clone()]).collect();
        assert_eq!(texts, [":data.a.b", ":stream_id"]);
    }

    #[test]
    fn unterminated_opaque_text_runs_to_the_end() {
        for sql in ["'a :x", "\"a :x", "/* :x /* */", "$t$ :x $t", "E'\\' :x"] {
            assert_eq!(scan(sql), Ok(Vec::new()), "{sql:?}");
        }
    }
}
