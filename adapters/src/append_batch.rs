//! Many appends in one transaction, each judged alone (`rf_append_batch`,
//! sql/0015).

use rillflow_core::ExpectedVersion;
use serde_json::Value;
use uuid::Uuid;

use crate::error::{StoreError, Verdict};
use crate::event::{AppendOptions, AppendResult, NewEvent};
use crate::store::{empty_headers, sends, sql_expected_version, validate, EventStore};

/// One append of a batch: what [`EventStore::append`] takes, owned.
#[derive(Debug, Clone, PartialEq)]
pub struct AppendRequest {
    /// The stream appended to.
    pub stream: Uuid,
    /// The version the stream must be at.
    pub expected: ExpectedVersion,
    /// The events, at least one.
    pub events: Vec<NewEvent>,
    /// Idempotency key and tenant.
    pub options: AppendOptions,
}

impl AppendRequest {
    /// An append of `events` to `stream` at any version, without options.
    pub fn new(stream: Uuid, events: Vec<NewEvent>) -> Self {
        AppendRequest {
            stream,
            expected: ExpectedVersion::Any,
            events,
            options: AppendOptions::default(),
        }
    }
}

const BATCH_SQL: &str = "SELECT o_index, o_first, o_last, o_positions, o_replayed, \
    o_code, o_message, o_detail \
    FROM rf_append_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";

/// Bits of `rf_append_batch`'s per-append column mask.
const IDS: i32 = 1;
const SCHEMA_VERSIONS: i32 = 2;
const HEADERS: i32 = 4;
const CAUSATION: i32 = 8;
const CORRELATION: i32 = 16;

/// The batch's arguments, column by column. An event column that no append
/// of the batch sends travels as NULL, as in a single append.
#[derive(Default)]
struct BatchArgs<'a> {
    streams: Vec<Uuid>,
    kinds: Vec<&'static str>,
    versions: Vec<Option<i64>>,
    keys: Vec<Option<&'a str>>,
    tenants: Vec<Option<&'a str>>,
    counts: Vec<i32>,
    columns: Vec<i32>,
    ids: Vec<Option<Uuid>>,
    types: Vec<&'a str>,
    schema_versions: Vec<i32>,
    data: Vec<&'a Value>,
    headers: Vec<&'a Value>,
    causation: Vec<Option<Uuid>>,
    correlation: Vec<Option<Uuid>>,
    sent: i32,
}

impl<'a> BatchArgs<'a> {
    fn push(&mut self, request: &'a AppendRequest, version: Option<i64>) {
        let events = &request.events;
        // The same rule as a single append's columns (store::sends), so an
        // idempotency key digests the same whichever way the append came.
        let mut mask = 0;
        for (bit, sent) in [
            (IDS, sends(events, |e| e.event_id.is_none())),
            (SCHEMA_VERSIONS, sends(events, |e| e.schema_version == 1)),
            (HEADERS, sends(events, empty_headers)),
            (CAUSATION, sends(events, |e| e.causation_id.is_none())),
            (CORRELATION, sends(events, |e| e.correlation_id.is_none())),
        ] {
            if sent {
                mask |= bit;
            }
        }
        self.sent |= mask;
        self.streams.push(request.stream);
        self.kinds.push(request.expected.sql_kind());
        self.versions.push(version);
        self.keys.push(request.options.idempotency_key.as_deref());
        self.tenants
            .push(request.options.tenant.as_ref().map(|t| t.as_str()));
        self.counts.push(events.len() as i32);
        self.columns.push(mask);
        for e in events {
            self.ids.push(e.event_id);
            self.types.push(&e.event_type);
            self.schema_versions.push(e.schema_version);
            self.data.push(&e.data);
            self.headers.push(&e.headers);
            self.causation.push(e.causation_id);
            self.correlation.push(e.correlation_id);
        }
    }

    /// The column when some append sends it, else NULL.
    fn sent<T>(&self, bit: i32, values: &'a [T]) -> Option<&'a [T]> {
        (self.sent & bit != 0).then_some(values)
    }
}

type Row = (
    i32,
    Option<i64>,
    Option<i64>,
    Option<Vec<i64>>,
    Option<bool>,
    Option<String>,
    Option<String>,
    Option<String>,
);

impl EventStore {
    /// Appends each request on its own terms (its expected version, its
    /// idempotency key, its tenant) in one transaction and one round trip;
    /// one result per request, in the order given.
    ///
    /// The outcome is that of appending the requests one by one ordered by
    /// stream (in the given order within a stream), except for positions:
    /// inside the batch's transaction, streams of plain appends (any
    /// version, no key, no ids, no tenant) take theirs first. A request
    /// refused for its expected version, key, ids or tenant wrote nothing
    /// and does not affect the others.
    ///
    /// Two rare cases leave the single transaction: an append that met a
    /// newer writer's transaction id ([`StoreError::StaleTransaction`]) is
    /// retried alone, and a batch failed whole by the database (a key or id
    /// taken by a concurrent transaction at the same moment, a deadlock
    /// with another batch or a caller's transaction, a timeout) is run
    /// again append by append. A connection lost in flight leaves every request of the
    /// batch [`StoreError::OutcomeUnknown`].
    pub async fn append_batch(
        &self,
        requests: &[AppendRequest],
    ) -> Vec<Result<AppendResult, StoreError>> {
        let mut results: Vec<Option<Result<AppendResult, StoreError>>> =
            requests.iter().map(|_| None).collect();
        let mut order = Vec::with_capacity(requests.len());
        let mut versions = Vec::with_capacity(requests.len());
        for (i, r) in requests.iter().enumerate() {
            match validate(&r.events, &r.options).and_then(|()| sql_expected_version(r.expected)) {
                Ok(v) => {
                    order.push(i);
                    versions.push(v);
                }
                Err(e) => results[i] = Some(Err(e)),
            }
        }
        let mut versions: Vec<(usize, Option<i64>)> = order.into_iter().zip(versions).collect();
        versions.sort_by_key(|&(i, _)| requests[i].stream);
        match versions.len() {
            0 => {}
            1 => {
                let i = versions[0].0;
                results[i] = Some(self.append_request(&requests[i]).await);
            }
            _ => self.run_batch(requests, &versions, &mut results).await,
        }
        results
            .into_iter()
            .map(|r| r.expect("every request has a result"))
            .collect()
    }

    async fn append_request(&self, r: &AppendRequest) -> Result<AppendResult, StoreError> {
        self.append(r.stream, r.expected, &r.events, &r.options)
            .await
    }

    /// The batch statement over `order` (request index, expected version),
    /// already in stream order.
    async fn run_batch(
        &self,
        requests: &[AppendRequest],
        order: &[(usize, Option<i64>)],
        results: &mut [Option<Result<AppendResult, StoreError>>],
    ) {
        let mut args = BatchArgs::default();
        for &(i, version) in order {
            args.push(&requests[i], version);
        }
        let mut conn = match self.pool().acquire().await {
            Ok(conn) => conn,
            Err(e) => {
                for &(i, _) in order {
                    results[i] = Some(Err(StoreError::Unavailable(e.to_string())));
                }
                return;
            }
        };
        let rows = sqlx::query_as::<_, Row>(BATCH_SQL)
            .bind(&args.streams)
            .bind(&args.kinds)
            .bind(&args.versions)
            .bind(&args.keys)
            .bind(&args.tenants)
            .bind(&args.counts)
            .bind(&args.columns)
            .bind(args.sent(IDS, &args.ids))
            .bind(&args.types)
            .bind(args.sent(SCHEMA_VERSIONS, &args.schema_versions))
            .bind(&args.data)
            .bind(args.sent(HEADERS, &args.headers))
            .bind(args.sent(CAUSATION, &args.causation))
            .bind(args.sent(CORRELATION, &args.correlation))
            .fetch_all(&mut *conn)
            .await;
        drop(conn);
        let rows = match rows {
            Ok(rows) => rows,
            Err(e) if e.as_database_error().is_some() => {
                // Rolled back whole: nothing of it was written.
                tracing::debug!(error = %e, appends = order.len(), "append batch failed; appending one by one");
                for &(i, _) in order {
                    results[i] = Some(self.append_request(&requests[i]).await);
                }
                return;
            }
            Err(e) => {
                for &(i, _) in order {
                    results[i] = Some(Err(StoreError::OutcomeUnknown(e.to_string())));
                }
                return;
            }
        };
        let mut stale = Vec::new();
        for (index, first, last, positions, replayed, code, message, detail) in rows {
            let Some(&(i, _)) = usize::try_from(index - 1).ok().and_then(|k| order.get(k)) else {
                continue;
            };
            let r = &requests[i];
            results[i] = Some(match code {
                None => Ok(AppendResult {
                    stream_id: r.stream,
                    first_version: first.unwrap_or_default() as u64,
                    last_version: last.unwrap_or_default() as u64,
                    positions: positions.unwrap_or_default(),
                    replayed: replayed.unwrap_or_default(),
                }),
                Some(code) => {
                    let verdict = Verdict {
                        code: &code,
                        message: message.as_deref().unwrap_or_default(),
                        detail: detail.as_deref(),
                    };
                    let tenant = r.options.tenant.as_ref().map(|t| t.as_str());
                    match verdict.judged(r.stream, r.expected, tenant) {
                        Some(StoreError::StaleTransaction { .. }) => {
                            stale.push(i);
                            continue;
                        }
                        Some(e) => Err(e),
                        None => Err(StoreError::InvalidRequest(format!(
                            "append refused with {code}: {}",
                            verdict.message
                        ))),
                    }
                }
            });
        }
        // A newer transaction appended to these streams first; alone, in a
        // fresh transaction, they go through (the single path retries).
        for i in stale {
            results[i] = Some(self.append_request(&requests[i]).await);
        }
        for &(i, _) in order {
            if results[i].is_none() {
                results[i] = Some(Err(StoreError::OutcomeUnknown(
                    "the batch returned no result for this append".into(),
                )));
            }
        }
    }
}
