//! Just enough lexing of one SQL statement to see its structure: where its
//! code is (outside literals, quoted names, comments and dollar-quoted
//! bodies), its words, its top-level semicolons and its `$n` parameters.
//!
//! The batched form of declared handlers embeds statements in a generated
//! function, so it must know how a statement starts, whether it is one
//! statement, and where the parameters that [`super::rewrite`] wrote are.
//! The rules are the placeholder scanner's, so both agree on what is code.

use std::ops::Range;

use super::placeholders::{
    end_of_block_comment, end_of_dollar_quoted, end_of_quoted, ident_char, ident_start, word_char,
};

/// One piece of code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token {
    /// An unquoted word (keyword or name), lowercased.
    Word(String),
    /// A double-quoted name, as written (quotes included).
    QuotedName(Range<usize>),
    /// A `;`.
    Semicolon,
    /// A positional parameter `$n`, with its number.
    Param(usize),
    /// One of `* . ( ) ,`.
    Punct(u8),
}

/// The tokens of `sql` that matter here, with their byte ranges; other
/// punctuation, numbers, literals and comments are skipped.
pub(crate) fn tokens(sql: &str) -> Vec<(Range<usize>, Token)> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let next = b.get(i + 1).copied();
        let after_word = i > 0 && word_char(b[i - 1]);
        match b[i] {
            b'\'' => {
                let backslashes =
                    i > 0 && matches!(b[i - 1], b'E' | b'e') && (i < 2 || !word_char(b[i - 2]));
                i = end_of_quoted(b, i, backslashes);
            }
            b'"' => {
                let end = end_of_quoted(b, i, false);
                out.push((i..end, Token::QuotedName(i..end)));
                i = end;
            }
            b'-' if next == Some(b'-') => {
                i = b[i..]
                    .iter()
                    .position(|c| *c == b'\n')
                    .map_or(b.len(), |p| i + p);
            }
            b'/' if next == Some(b'*') => i = end_of_block_comment(b, i),
            b'$' if after_word => i += 1,
            b'$' if next.is_some_and(|c| c.is_ascii_digit()) => {
                let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
                let end = i + 1 + digits;
                // More digits than any statement has parameters: not ours.
                if let Ok(n) = sql[i + 1..end].parse() {
                    out.push((i..end, Token::Param(n)));
                }
                i = end;
            }
            b'$' => i = end_of_dollar_quoted(b, i).unwrap_or(i + 1),
            b';' => {
                out.push((i..i + 1, Token::Semicolon));
                i += 1;
            }
            c if (ident_start(c) || c >= 0x80) && !after_word => {
                let end = i + b[i..].iter().take_while(|c| word_char(**c)).count();
                out.push((i..end, Token::Word(sql[i..end].to_ascii_lowercase())));
                i = end;
            }
            c if ident_char(c) || c >= 0x80 => i += 1,
            c @ (b'*' | b'.' | b'(' | b')' | b',') => {
                out.push((i..i + 1, Token::Punct(c)));
                i += 1;
            }
            _ => i += 1,
        }
    }
    out
}

/// `sql` without trailing semicolons (and whatever follows them that is not
/// code), and whether what is left is a single statement. Postgres accepts a
/// trailing `;` on a prepared statement; inside a function body it would
/// end the statement twice.
pub(crate) fn single_statement(sql: &str) -> (&str, bool) {
    let toks = tokens(sql);
    let mut end = sql.len();
    let mut trailing = toks.len();
    while trailing > 0 && toks[trailing - 1].1 == Token::Semicolon {
        trailing -= 1;
        end = toks[trailing].0.start;
    }
    let single = !toks[..trailing].iter().any(|(_, t)| *t == Token::Semicolon);
    (&sql[..end], single)
}

/// The first word of `sql`'s code, lowercased.
pub(crate) fn first_word(sql: &str) -> Option<String> {
    match tokens(sql).into_iter().next() {
        Some((_, Token::Word(w))) => Some(w),
        _ => None,
    }
}

/// Whether `word` (lowercase) appears in `sql`'s code, unquoted or as the
/// same name double-quoted.
pub(crate) fn mentions(sql: &str, word: &str) -> bool {
    let quoted = format!("\"{word}\"");
    tokens(sql).into_iter().any(|(range, t)| match t {
        Token::Word(w) => w == word,
        Token::QuotedName(_) => sql[range].eq_ignore_ascii_case(&quoted),
        _ => false,
    })
}

/// `sql` with each `$n` parameter in its code replaced by `render(n)`.
pub(crate) fn replace_params(sql: &str, mut render: impl FnMut(usize) -> String) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut copied = 0;
    for (range, t) in tokens(sql) {
        if let Token::Param(n) = t {
            out.push_str(&sql[copied..range.start]);
            out.push_str(&render(n));
            copied = range.end;
        }
    }
    out.push_str(&sql[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_is_told_from_text() {
        let sql = "UPDATE t SET a = 'x;$1', \"b;c\" = $2 -- ;$3\n /* ; */ WHERE $$;$4$$ = x$5;";
        let words: Vec<Token> = tokens(sql).into_iter().map(|(_, t)| t).collect();
        assert_eq!(
            words,
            [
                Token::Word("update".into()),
                Token::Word("t".into()),
                Token::Word("set".into()),
                Token::Word("a".into()),
                Token::Punct(b','),
                Token::QuotedName(25..30),
                Token::Param(2),
                Token::Word("where".into()),
                Token::Word("x$5".into()),
                Token::Semicolon,
            ]
        );
    }

    #[test]
    fn statements_are_counted_and_trailing_semicolons_dropped() {
        assert_eq!(single_statement("SELECT 1; ;"), ("SELECT 1", true));
        assert_eq!(single_statement("SELECT 1; -- x"), ("SELECT 1", true));
        assert_eq!(single_statement("SELECT ';'"), ("SELECT ';'", true));
        assert!(!single_statement("SELECT 1; SELECT 2").1);
    }

    #[test]
    fn params_are_replaced_only_in_code() {
        let sql = "SELECT $1, '$1', $12, a$1 /* $2 */";
        assert_eq!(
            replace_params(sql, |n| format!("v{n}")),
            "SELECT v1, '$1', v12, a$1 /* $2 */"
        );
    }

    #[test]
    fn words_and_quoted_names_are_found() {
        assert!(mentions("SELECT * FROM Batch", "batch"));
        assert!(mentions("SELECT * FROM \"batch\"", "batch"));
        assert!(!mentions("SELECT 'batch' FROM batches -- batch", "batch"));
        assert_eq!(
            first_word("  /* c */ WITH x AS (SELECT 1)"),
            Some("with".into())
        );
        assert_eq!(first_word("(SELECT 1)"), None);
        assert_eq!(first_word("-- only a comment"), None);
    }
}
