//! A counting read model for tests and benchmarks: per stream, how many
//! events were applied and the last version. It refuses an event that is not
//! the stream's next version, so a skipped, repeated or reordered event makes
//! it fail rather than count wrong (PROJ-1, PROJ-3).

use std::collections::BTreeMap;

use async_trait::async_trait;
use rillflow_adapters::projection::{BatchFailure, HandlerError, Projection, ProjectionOptions};
use rillflow_adapters::RecordedEvent;
use sqlx::PgConnection;
use uuid::Uuid;

/// Counts events per stream in table `<name>`.
#[derive(Debug, Clone)]
pub struct Counter {
    name: String,
    options: ProjectionOptions,
    /// Event types it handles; every type when empty.
    types: Vec<String>,
}

impl Counter {
    /// A counter named `name` (also its table's name) over every event.
    pub fn new(name: &str) -> Self {
        Counter {
            name: name.to_owned(),
            options: ProjectionOptions::default(),
            types: Vec::new(),
        }
    }

    /// With other options.
    pub fn with_options(mut self, options: ProjectionOptions) -> Self {
        self.options = options;
        self
    }

    /// Only events of these types.
    pub fn only(mut self, types: &[&str]) -> Self {
        self.types = types.iter().map(|t| t.to_string()).collect();
        self
    }

    /// Per stream: (events applied, last version), read from its table.
    pub async fn counts(&self, conn: &mut PgConnection) -> BTreeMap<Uuid, (i64, i64)> {
        let sql = format!("SELECT stream_id, events, last_version FROM {}", self.name);
        let rows: Vec<(Uuid, i64, i64)> = sqlx::query_as(&sql)
            .fetch_all(&mut *conn)
            .await
            .expect("read counter table");
        rows.into_iter().map(|(s, n, v)| (s, (n, v))).collect()
    }
}

#[async_trait]
impl Projection for Counter {
    fn name(&self) -> &str {
        &self.name
    }

    fn handles(&self, event_type: &str) -> bool {
        self.types.is_empty() || self.types.iter().any(|t| t == event_type)
    }

    fn options(&self) -> ProjectionOptions {
        self.options
    }

    async fn setup(&self, conn: &mut PgConnection) -> Result<(), HandlerError> {
        let sql = format!(
            "CREATE TABLE IF NOT EXISTS {} (stream_id uuid PRIMARY KEY, events bigint NOT NULL, last_version bigint NOT NULL)",
            self.name
        );
        sqlx::query(&sql).execute(&mut *conn).await?;
        Ok(())
    }

    async fn reset(&self, conn: &mut PgConnection) -> Result<bool, HandlerError> {
        sqlx::query(&format!("TRUNCATE {}", self.name))
            .execute(&mut *conn)
            .await?;
        Ok(true)
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        event: &RecordedEvent,
    ) -> Result<(), HandlerError> {
        let sql = format!(
            "INSERT INTO {t} AS c (stream_id, events, last_version) VALUES ($1, 1, $2)
             ON CONFLICT (stream_id) DO UPDATE SET events = c.events + 1, last_version = $2
             WHERE c.last_version = $2 - 1",
            t = self.name
        );
        let done = sqlx::query(&sql)
            .bind(event.stream_id)
            .bind(event.version)
            .execute(&mut *conn)
            .await?
            .rows_affected();
        if done != 1 {
            return Err(HandlerError::new(format!(
                "stream {} version {} is not the next version",
                event.stream_id, event.version
            )));
        }
        Ok(())
    }

    /// One statement for the whole batch: events counted per stream, each
    /// stream's run checked to start right after its stored version.
    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[&RecordedEvent],
    ) -> Result<(), BatchFailure> {
        if events.is_empty() {
            return Ok(());
        }
        // stream -> (count, first version, last version)
        let mut runs: BTreeMap<Uuid, (i64, i64, i64)> = BTreeMap::new();
        for e in events {
            let run = runs.entry(e.stream_id).or_insert((0, e.version, e.version));
            if e.version != run.2 + i64::from(run.0 > 0) {
                return Err(BatchFailure {
                    index: 0,
                    error: HandlerError::new("versions within the batch are not consecutive"),
                });
            }
            run.0 += 1;
            run.2 = e.version;
        }
        let streams: Vec<Uuid> = runs.keys().copied().collect();
        let counts: Vec<i64> = runs.values().map(|r| r.0).collect();
        let firsts: Vec<i64> = runs.values().map(|r| r.1).collect();
        let lasts: Vec<i64> = runs.values().map(|r| r.2).collect();
        let sql = format!(
            "INSERT INTO {t} AS c (stream_id, events, last_version)
             SELECT s, n, l FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::bigint[]) AS r(s, n, f, l)
             WHERE f = 1
                OR EXISTS (SELECT 1 FROM {t} x WHERE x.stream_id = r.s AND x.last_version = r.f - 1)
             ON CONFLICT (stream_id) DO UPDATE SET events = c.events + EXCLUDED.events,
                                                   last_version = EXCLUDED.last_version
             WHERE c.last_version < EXCLUDED.last_version",
            t = self.name
        );
        let done = sqlx::query(&sql)
            .bind(&streams)
            .bind(&counts)
            .bind(&firsts)
            .bind(&lasts)
            .execute(&mut *conn)
            .await
            .map_err(|e| BatchFailure {
                index: 0,
                error: e.into(),
            })?
            .rows_affected();
        if done != streams.len() as u64 {
            // Let the per-event path find and report the offending event.
            return Err(BatchFailure {
                index: 0,
                error: HandlerError::new("a stream's events do not follow its stored version"),
            });
        }
        Ok(())
    }
}
