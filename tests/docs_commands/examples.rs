//! Example values for the placeholders of documented commands.

use super::*;

/// The values placeholders stand for, in one setting (the parser sandbox or
/// the fixture database).
pub(crate) struct Examples {
    pub(crate) url: String,
    /// A stream with events, for the event commands.
    pub(crate) stream: Uuid,
    /// Its version.
    pub(crate) stream_version: u64,
    /// An archived stream with events, for the archive commands (the mover
    /// refuses a stream that is not archived).
    pub(crate) archived: Uuid,
    pub(crate) projection: String,
    pub(crate) projections_file: String,
    pub(crate) cluster: String,
    pub(crate) node: String,
    pub(crate) dead_letter: String,
    pub(crate) out_file: String,
    /// A JSON Lines file of events for `events append --from-file`.
    pub(crate) events_file: String,
}

pub(crate) fn is_placeholder(word: &str) -> bool {
    let caps = word.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && word.chars().any(|c| c.is_ascii_alphabetic())
        && word
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_' || c == '-');
    caps || (word.starts_with('<') && word.ends_with('>')) || word.starts_with('$')
}

impl Examples {
    /// The value of placeholder `ph` in a command of `family` (its first
    /// word), given as the value of `flag` (or as a positional argument when
    /// `flag` is None).
    pub(crate) fn value(
        &self,
        family: &str,
        flag: Option<&str>,
        ph: &str,
    ) -> Result<String, String> {
        let ph_key = ph.trim_start_matches('<').trim_end_matches('>');
        let stream = if family == "archive" {
            self.archived
        } else {
            self.stream
        };
        let v = match (flag, ph_key) {
            (_, "$DATABASE_URL" | "${DATABASE_URL}") => self.url.clone(),
            (Some("--stream"), _) => stream.to_string(),
            (Some("--event-id"), _) => Uuid::from_u128(0xd0c5_0001).to_string(),
            (Some("--causation-id"), _) => Uuid::from_u128(0xd0c5_0002).to_string(),
            (Some("--correlation-id"), _) => Uuid::from_u128(0xd0c5_0003).to_string(),
            (Some("--daemon-id"), _) => Uuid::from_u128(0xd0c5_0004).to_string(),
            (Some("--type"), _) => "DocsExample".into(),
            (Some("--data"), _) => r#"{"amount":1}"#.into(),
            (Some("--headers"), _) => "{}".into(),
            (Some("--expected-version"), _) => self.stream_version.to_string(),
            (Some("--idempotency-key"), _) => "docs-example".into(),
            (Some("--schema-version" | "--from" | "--total-partitions"), _) => "1".into(),
            (Some("--partition-key"), _) => "0".into(),
            (Some("--limit" | "--fail-below"), _) => "50".into(),
            (Some("--batch-size"), _) => "100".into(),
            (Some("--max-events-per-sec"), _) => "1000".into(),
            (Some("--wait-secs"), _) => "10".into(),
            (Some("--down"), _) => "1".into(),
            (Some("--partitions"), _) => "2".into(),
            (Some("--read-models"), _) => "docs_models".into(),
            (Some("--name"), _) => self.projection.clone(),
            (Some("--node" | "--node-name"), _) => self.node.clone(),
            (Some("--cluster" | "--cluster-name"), _) => self.cluster.clone(),
            (Some("--projections"), _) => self.projections_file.clone(),
            (Some("--output"), "FILE") => self.out_file.clone(),
            (Some("--from-file"), _) => self.events_file.clone(),
            (Some("--health-bind"), _) => "127.0.0.1:9464".into(),
            // The test database itself: a read server may be the primary's
            // own.
            (Some("--read-database-url"), _) => self.url.clone(),
            (Some("--id"), _) => self.dead_letter.clone(),
            (Some("--reason"), _) => "docs example".into(),
            (Some("--by"), _) => "docs".into(),
            (Some("--month"), _) => "2025-01-01".into(),
            (Some("--before"), _) => "2024-01-01T00:00:00Z".into(),
            (None, "NAME") => self.projection.clone(),
            (None, "STREAM" | "UUID" | "stream" | "uuid") => stream.to_string(),
            (None, "POS") => "0".into(),
            (None, "SHELL") => "bash".into(),
            _ => {
                return Err(format!(
                    "no example value for placeholder {ph}{} (add one to Examples::value)",
                    flag.map(|f| format!(" of {f}")).unwrap_or_default()
                ))
            }
        };
        Ok(v)
    }

    /// The arguments of a variant with every placeholder replaced.
    pub(crate) fn concrete(&self, words: &[String]) -> Result<Vec<String>, String> {
        let family = words.first().map(String::as_str).unwrap_or_default();
        let mut out = Vec::new();
        let mut flag: Option<String> = None;
        for w in words {
            if let Some((f, v)) = w.split_once('=').filter(|(f, _)| f.starts_with("--")) {
                let v = if f == "--database-url" {
                    self.url.clone()
                } else if is_placeholder(v) {
                    self.value(family, Some(f), v)?
                } else {
                    v.to_owned()
                };
                out.push(format!("{f}={v}"));
                flag = None;
                continue;
            }
            if w.starts_with('-') {
                out.push(w.clone());
                flag = Some(w.clone());
                continue;
            }
            let value = match flag.as_deref() {
                Some("--database-url") => self.url.clone(),
                // After a switch that takes no value the placeholder is a
                // positional argument: try that reading too.
                f if is_placeholder(w) => self.value(family, f, w).or_else(|e| {
                    if f.is_some() {
                        self.value(family, None, w)
                    } else {
                        Err(e)
                    }
                })?,
                _ => w.clone(),
            };
            out.push(value);
            flag = None;
        }
        Ok(out)
    }
}
