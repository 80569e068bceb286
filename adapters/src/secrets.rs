//! Keeping passwords out of whatever rillflow prints: logs, error lines and
//! the diagnostics bundle.
//!
//! A connection string carries its password in one of three places: the
//! userinfo of a URL (`postgres://user:pw@host`), a query parameter
//! (`?password=pw`, `&sslpassword=pw`), or a keyword of a `key=value`
//! connection string (`host=h password='p w'`). [`redact_secrets`] finds
//! all three anywhere in a text, so an error message that quotes a URL is
//! cleaned as well as the URL itself.

/// What replaces a secret.
pub const REDACTED: &str = "[redacted]";

/// Keywords whose value is a secret, in URLs' query strings and in
/// `key=value` connection strings (compared without case).
const SECRET_KEYS: &[&str] = &["password", "sslpassword", "passwd", "pwd"];

/// `text` with every password it carries replaced by [`REDACTED`].
pub fn redact_secrets(text: &str) -> String {
    // Most lines carry neither form: leave them as they are, cheaply.
    let lower = text.to_ascii_lowercase();
    if !lower.contains("://") && !SECRET_KEYS.iter().any(|k| lower.contains(k)) {
        return text.to_owned();
    }
    redact_fields(&redact_keywords(&redact_userinfo(text)))
}

/// [`redact_secrets`] for a log line that may carry terminal colours: they
/// can split `key=value` apart, so a line with a secret loses its colours.
pub fn redact_log_line(line: &str) -> String {
    let plain = strip_ansi(line);
    let redacted = redact_secrets(&plain);
    if redacted == plain {
        line.to_owned()
    } else {
        redacted
    }
}

/// A log event's structured pair `key=password value=…` (as sqlx reports a
/// connect parameter it ignores) with the value replaced.
fn redact_fields(text: &str) -> String {
    let mut out = text.to_owned();
    for key in SECRET_KEYS {
        let marker = format!("key={key} value=");
        let mut from = 0;
        while let Some(found) = out[from..].to_ascii_lowercase().find(&marker) {
            let start = from + found + marker.len();
            let end = value_end(out.as_bytes(), start);
            out.replace_range(start..end, REDACTED);
            from = start + REDACTED.len();
        }
    }
    out
}

/// `text` without ANSI escape sequences (`ESC [ … final`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// Every `scheme://user:password@` with the password replaced.
fn redact_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        // The authority ends at the path, the query, or the URL's end.
        let end = after
            .find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace() || c == '"')
            .unwrap_or(after.len());
        let authority = &after[..end];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.find(':') {
                    Some(colon) => {
                        out.push_str(&userinfo[..=colon]);
                        out.push_str(REDACTED);
                    }
                    None => out.push_str(userinfo),
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// Every `key=value` whose key is a secret keyword (as a query parameter
/// or a connection-string keyword) with the value replaced; a value may be
/// single-quoted, with `\'` inside.
fn redact_keywords(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let starts_word = i == 0 || matches!(bytes[i - 1], b' ' | b'?' | b'&' | b';' | b'\t');
        let key = SECRET_KEYS.iter().find(|k| {
            let end = i + k.len();
            starts_word
                && end < bytes.len()
                && bytes[i..end].eq_ignore_ascii_case(k.as_bytes())
                && {
                    // `password = x` is a valid connection-string keyword too.
                    let mut j = end;
                    while j < bytes.len() && bytes[j] == b' ' {
                        j += 1;
                    }
                    j < bytes.len() && bytes[j] == b'='
                }
        });
        let Some(key) = key else {
            i += 1;
            continue;
        };
        let mut j = i + key.len();
        while bytes[j] != b'=' {
            j += 1;
        }
        j += 1;
        while j < bytes.len() && bytes[j] == b' ' {
            j += 1;
        }
        let value_end = value_end(bytes, j);
        out.push_str(&text[copied..j]);
        out.push_str(REDACTED);
        copied = value_end;
        i = value_end;
    }
    out.push_str(&text[copied..]);
    out
}

/// Where the value starting at `start` ends: after its closing quote when
/// quoted, else at the next separator.
fn value_end(bytes: &[u8], start: usize) -> usize {
    if bytes.get(start) == Some(&b'\'') {
        let mut j = start + 1;
        while j < bytes.len() {
            match bytes[j] {
                b'\\' => j += 2,
                b'\'' => return j + 1,
                _ => j += 1,
            }
        }
        return bytes.len();
    }
    let mut j = start;
    while j < bytes.len() && !matches!(bytes[j], b' ' | b'&' | b'#' | b'"' | b'\t' | b'\n') {
        j += 1;
    }
    j
}

#[cfg(test)]
mod tests {
    use super::redact_secrets as r;

    #[test]
    fn every_form_of_password_is_redacted() {
        let cases = [
            (
                "postgres://app:s3cret@db:5432/ledger",
                "postgres://app:[redacted]@db:5432/ledger",
            ),
            (
                "postgres://app:s3cr@t:x@db:5432/rf?sslmode=require",
                "postgres://app:[redacted]@db:5432/rf?sslmode=require",
            ),
            (
                "postgres://app@db/ledger?password=s3cret&sslmode=require",
                "postgres://app@db/ledger?password=[redacted]&sslmode=require",
            ),
            (
                "postgresql://app@db/ledger?sslmode=verify-full&sslpassword=k3y",
                "postgresql://app@db/ledger?sslmode=verify-full&sslpassword=[redacted]",
            ),
            (
                "host=db user=app password=s3cret dbname=ledger",
                "host=db user=app password=[redacted] dbname=ledger",
            ),
            (
                "host=db password = 'it\\'s secret' dbname=ledger",
                "host=db password = [redacted] dbname=ledger",
            ),
            (
                "cannot connect to postgres://u:pw@h/d: refused; also PASSWORD=x",
                "cannot connect to postgres://u:[redacted]@h/d: refused; also PASSWORD=[redacted]",
            ),
            (
                r#"{"url":"postgres://u:pw@h/d?password=p2"}"#,
                r#"{"url":"postgres://u:[redacted]@h/d?password=[redacted]"}"#,
            ),
        ];
        for (text, want) in cases {
            assert_eq!(r(text), want, "{text}");
        }
    }

    #[test]
    fn coloured_log_fields_are_redacted_too() {
        let line = "\u{1b}[33m WARN\u{1b}[0m ignoring unrecognized connect parameter \
                    \u{1b}[3mkey\u{1b}[0m\u{1b}[2m=\u{1b}[0msslpassword \
                    \u{1b}[3mvalue\u{1b}[0m\u{1b}[2m=\u{1b}[0mk3y\n";
        assert_eq!(
            super::redact_log_line(line),
            " WARN ignoring unrecognized connect parameter key=sslpassword value=[redacted]\n"
        );
        let calm = "\u{1b}[32m INFO\u{1b}[0m joined as a standby\n";
        assert_eq!(
            super::redact_log_line(calm),
            calm,
            "colours stay where nothing is secret"
        );
    }

    #[test]
    fn text_without_secrets_is_left_alone() {
        for text in [
            "postgres://app@db/ledger",
            "projection stream_counts: 12 events applied",
            "mypassword is a word, not a keyword",
            "http://127.0.0.1:9464/metrics",
            "",
        ] {
            assert_eq!(r(text), text);
        }
    }
}
