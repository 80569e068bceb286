//! Turns byte offsets of a projections file into lines and columns, and
//! offsets inside a decoded TOML string back into offsets of the file.

use std::ops::Range;

use toml::Spanned;

use super::spec_error::SpecError;

/// The text of a projections file, for locating errors.
pub(super) struct Source<'a> {
    text: &'a str,
}

impl<'a> Source<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        Source { text }
    }

    /// The 1-based line and column (in characters) of byte `offset`;
    /// offsets past the end or inside a character move back to one.
    pub(super) fn position(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &self.text[..offset];
        let line_start = before.rfind('\n').map_or(0, |p| p + 1);
        (
            before.matches('\n').count() + 1,
            before[line_start..].chars().count() + 1,
        )
    }

    /// An error at byte `offset` of the file.
    pub(super) fn error_at(&self, offset: usize, message: impl Into<String>) -> SpecError {
        let (line, column) = self.position(offset);
        SpecError {
            line,
            column,
            message: message.into(),
        }
    }

    /// An error at byte `inner` of the decoded string `value`, expected to
    /// read `token` there. Escapes and multi-line strings make decoded and
    /// written offsets differ, so they are mapped; when the mapping does not
    /// land on `token` (it should not happen) the string's start is used.
    pub(super) fn error_in(
        &self,
        value: &Spanned<String>,
        inner: usize,
        token: &str,
        message: impl Into<String>,
    ) -> SpecError {
        let span: Range<usize> = value.span();
        let offset = self
            .text
            .get(span.clone())
            .and_then(|raw| written_offset(raw, value.get_ref(), inner))
            .map(|p| span.start + p)
            .filter(|p| self.text.get(*p..).is_some_and(|t| t.starts_with(token)))
            .unwrap_or(span.start);
        self.error_at(offset, message)
    }

    /// A TOML syntax or shape error, where the parser saw it.
    pub(super) fn toml_error(&self, e: &toml::de::Error) -> SpecError {
        let offset = e.span().map_or(0, |s| s.start);
        // Some messages carry a second line of context; keep one line.
        let message: Vec<&str> = e.message().lines().map(str::trim).collect();
        self.error_at(offset, message.join("; "))
    }
}

/// Byte offset, in `raw` (a TOML string as written, delimiters included),
/// of byte `inner` of its decoded `value`. None when `raw` is not a string
/// or decodes differently than expected.
pub(super) fn written_offset(raw: &str, value: &str, inner: usize) -> Option<usize> {
    let (delimiter, basic) = match raw.as_bytes() {
        [b'"', b'"', b'"', ..] => (3, true),
        [b'\'', b'\'', b'\'', ..] => (3, false),
        [b'"', ..] => (1, true),
        [b'\'', ..] => (1, false),
        _ => return None,
    };
    let w = raw.as_bytes();
    let mut r = delimiter;
    if delimiter == 3 {
        // A newline right after the opening delimiter is not part of the value.
        if raw[r..].starts_with("\r\n") {
            r += 2;
        } else if raw[r..].starts_with('\n') {
            r += 1;
        }
    }
    let mut d = 0;
    loop {
        // A line-ending backslash swallows the whitespace after it and
        // writes nothing, so it is skipped even when `inner` is reached.
        if basic
            && w.get(r) == Some(&b'\\')
            && matches!(w.get(r + 1), Some(b' ' | b'\t' | b'\r' | b'\n'))
        {
            r += 1;
            while matches!(w.get(r), Some(b' ' | b'\t' | b'\r' | b'\n')) {
                r += 1;
            }
            continue;
        }
        if d >= inner {
            break;
        }
        if basic && w.get(r) == Some(&b'\\') {
            match *w.get(r + 1)? {
                e @ (b'u' | b'U') => {
                    let digits = if e == b'u' { 4 } else { 8 };
                    let hex = raw.get(r + 2..r + 2 + digits)?;
                    let c = char::from_u32(u32::from_str_radix(hex, 16).ok()?)?;
                    r += 2 + digits;
                    d += c.len_utf8();
                }
                _ => {
                    r += 2;
                    d += 1;
                }
            }
        } else if raw.get(r..)?.starts_with("\r\n") && value.get(d..)?.starts_with('\n') {
            // The parser may normalise line ends.
            r += 2;
            d += 1;
        } else {
            let n = raw.get(r..)?.chars().next()?.len_utf8();
            r += n;
            d += n;
        }
    }
    (d == inner).then_some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each case writes a value holding `:x`; the expected offset is where
    /// the `:x` is written.
    #[test]
    fn decoded_offsets_map_to_written_ones() {
        let cases = [
            (r#""ab:x""#, "ab:x", 3),
            ("'ab:x'", "ab:x", 3),
            (r#""a\tb\"\\:x""#, "a\tb\"\\:x", 9),
            (r#""\u00e9\U0001F600:x""#, "é😀:x", 17),
            ("\"\"\"\nab:x\"\"\"", "ab:x", 6),
            ("'''\r\nab\r\n:x'''", "ab\n:x", 9),
            ("\"\"\"ab \\\n    \n  :x\"\"\"", "ab :x", 15),
        ];
        for (raw, value, want) in cases {
            let inner = value.find(":x").unwrap();
            let got = written_offset(raw, value, inner);
            assert_eq!(got, Some(want), "{raw:?}");
            assert!(raw[want..].starts_with(":x"), "{raw:?}");
        }
        assert_eq!(written_offset("42", "42", 1), None);
    }

    #[test]
    fn lines_and_columns_are_one_based_and_count_characters() {
        let src = Source::new("ab\né:x\n");
        assert_eq!(src.position(5), (2, 2));
        assert_eq!(src.position(0), (1, 1));
        // Past the end and inside a character both move back.
        assert_eq!(src.position(99), (3, 1));
        assert_eq!(src.position(4), (2, 1));
        let e = src.error_at(5, "m");
        assert_eq!(
            (e.line, e.column, e.to_string()),
            (2, 2, "line 2, column 2: m".into())
        );
    }
}
