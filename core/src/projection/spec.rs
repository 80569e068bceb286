//! One declared projection, as the runtime uses it.

use std::collections::BTreeMap;

use super::batch_statement::BatchStatement;
use super::on_error::OnError;
use super::statement::Statement;
use crate::Identifier;

/// Replaced by the read-model version in the SQL of versioned projections
/// (`balances_v{version}` becomes `balances_v3`).
pub const VERSION_TOKEN: &str = "{version}";

/// `sql` with every [`VERSION_TOKEN`] replaced by `version`'s decimal digits.
/// Only digits are spliced in, so the result is as safe as the input.
pub fn render_version(sql: &str, version: u32) -> String {
    sql.replace(VERSION_TOKEN, &version.to_string())
}

/// One declared projection, checked: its name is a valid identifier, every
/// handler has at least one non-empty statement with known placeholders,
/// and `{version}` appears only if (and then wherever) tables are versioned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectionSpec {
    /// Name, also its checkpoint key.
    pub name: Identifier,
    /// SQL run before processing; idempotent, without placeholders.
    pub setup: Vec<String>,
    /// SQL run by a rebuild; empty when the projection declares none.
    pub reset: Vec<String>,
    /// Events per batch, 1..=10000.
    pub batch_size: u32,
    /// Retries of a failing event, 0..=100.
    pub max_retries: u32,
    /// What happens once they are used up.
    pub on_error: OnError,
    /// Tables rebuilt side by side: the SQL names them `<table>_v{version}`
    /// and readers use the view `<table>`, which a rebuild switches to the
    /// new version once it has caught up.
    pub versioned_tables: Vec<Identifier>,
    /// Per event type, the statements run in order for each such event.
    pub handlers: BTreeMap<String, Vec<Statement>>,
    /// Per event type, set-based statements run once per batch over the
    /// batch's events of that type (the relation `batch`), after the
    /// batch's per-event statements. No type is in both maps; together
    /// their keys are exactly the event types the projection handles.
    pub batch_handlers: BTreeMap<String, Vec<BatchStatement>>,
}

impl ProjectionSpec {
    /// Whether it handles events of `event_type`.
    pub fn handles(&self, event_type: &str) -> bool {
        self.handlers.contains_key(event_type) || self.batch_handlers.contains_key(event_type)
    }

    /// The event types it handles, sorted.
    pub fn event_types(&self) -> impl Iterator<Item = &str> {
        let all: std::collections::BTreeSet<&str> = self
            .handlers
            .keys()
            .chain(self.batch_handlers.keys())
            .map(String::as_str)
            .collect();
        all.into_iter()
    }

    /// Whether a rebuild builds a new version beside the live one.
    pub fn is_versioned(&self) -> bool {
        !self.versioned_tables.is_empty()
    }

    /// The declaration with [`VERSION_TOKEN`] rendered as `version` in all
    /// its SQL. Parameters are untouched: the token holds no `:`.
    pub fn at_version(&self, version: u32) -> ProjectionSpec {
        let render_all = |list: &[String]| -> Vec<String> {
            list.iter()
                .map(|sql| render_version(sql, version))
                .collect()
        };
        let handlers = self
            .handlers
            .iter()
            .map(|(event_type, statements)| {
                let rendered = statements
                    .iter()
                    .map(|s| Statement {
                        sql: render_version(&s.sql, version),
                        params: s.params.clone(),
                    })
                    .collect();
                (event_type.clone(), rendered)
            })
            .collect();
        let batch_handlers = self
            .batch_handlers
            .iter()
            .map(|(event_type, statements)| {
                let rendered = statements
                    .iter()
                    .map(|s| BatchStatement {
                        sql: render_version(&s.sql, version),
                        paths: s.paths.clone(),
                        needs: s.needs.clone(),
                    })
                    .collect();
                (event_type.clone(), rendered)
            })
            .collect();
        ProjectionSpec {
            name: self.name.clone(),
            setup: render_all(&self.setup),
            reset: render_all(&self.reset),
            batch_size: self.batch_size,
            max_retries: self.max_retries,
            on_error: self.on_error,
            versioned_tables: self.versioned_tables.clone(),
            handlers,
            batch_handlers,
        }
    }
}
