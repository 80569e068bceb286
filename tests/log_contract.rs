//! The event log contract (`rillflow_adapters::log_contract`) against
//! Postgres, on the dual-table backend the migrations leave. The simulation
//! runs the same checks against its model database
//! (`sim/tests/log_contract.rs`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rillflow_adapters::archive::{
    ArchiveMover, ArchiveSettings, MarkOutcome, MoveFilter, MoveLimits, ReactivateOutcome,
    StreamLifecycle,
};
use rillflow_adapters::log_contract::{self, Appended, FeedEvent, LogHarness, StreamEvent};
use rillflow_adapters::{AppendOptions, AppendResult, EventStore, NewEvent, StoreError};
use rillflow_core::{ExpectedVersion, GlobalCursor};
use rillflow_testkit::TestDb;
use serde_json::json;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

fn check(name: &str) {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let mut db = TestDb::migrated().await;
        let harness = PgHarness {
            pool: db.pool().await,
        };
        log_contract::run(name, &harness).await;
    });
}

/// The store, the lifecycle and the mover on one pool. A stream number `n`
/// is the stream id `n`; an event is of type `E` with data `{"p": payload}`.
#[derive(Clone)]
struct PgHarness {
    pool: PgPool,
}

fn id(stream: u32) -> Uuid {
    Uuid::from_u128(stream.into())
}

fn events(payloads: &[u64]) -> Vec<NewEvent> {
    payloads
        .iter()
        .map(|p| NewEvent::new("E", json!({ "p": p })))
        .collect()
}

fn options(key: Option<u64>) -> AppendOptions {
    AppendOptions {
        idempotency_key: key.map(|k| format!("key-{k}")),
        ..AppendOptions::default()
    }
}

fn appended(result: Result<AppendResult, StoreError>) -> Appended {
    match result {
        Ok(r) if r.replayed => Appended::Replayed {
            first: r.first_version,
            last: r.last_version,
        },
        Ok(r) => Appended::Wrote {
            first: r.first_version,
            last: r.last_version,
        },
        Err(StoreError::WrongExpectedVersion { conflict, .. }) => Appended::Conflict {
            actual: conflict.actual,
        },
        Err(StoreError::IdempotencyConflict(_)) => Appended::KeyReused,
        Err(e) => panic!("append: {e}"),
    }
}

fn future() -> DateTime<Utc> {
    "2999-01-01T00:00:00Z".parse().expect("a date")
}

#[async_trait]
impl LogHarness for PgHarness {
    type Open = Transaction<'static, Postgres>;

    async fn append(
        &self,
        stream: u32,
        expected: ExpectedVersion,
        key: Option<u64>,
        payloads: &[u64],
    ) -> Appended {
        let store = EventStore::new(self.pool.clone());
        appended(
            store
                .append(id(stream), expected, &events(payloads), &options(key))
                .await,
        )
    }

    async fn begin_append(&self, stream: u32, payloads: &[u64]) -> (Self::Open, u64, u64) {
        let mut tx = self.pool.begin().await.expect("begin");
        let any = ExpectedVersion::Any;
        let events = events(payloads);
        let r = EventStore::append_in(&mut tx, id(stream), any, &events, &options(None))
            .await
            .expect("append_in");
        (tx, r.first_version, r.last_version)
    }

    async fn end_append(&self, open: Self::Open, commit: bool) {
        match commit {
            true => open.commit().await.expect("commit"),
            false => open.rollback().await.expect("rollback"),
        }
    }

    /// The store's own read, and which of its events are in `events_hot`.
    async fn read_stream(&self, stream: u32, include_archived: bool) -> Vec<StreamEvent> {
        let store = EventStore::new(self.pool.clone());
        let store = match include_archived {
            true => store.with_archived(),
            false => store,
        };
        let read = store
            .read_stream(id(stream), 1, 1_000)
            .await
            .expect("read_stream");
        let hot: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM events_hot WHERE stream_id = $1")
                .bind(id(stream))
                .fetch_all(&self.pool)
                .await
                .expect("hot versions");
        read.iter()
            .map(|e| StreamEvent {
                version: u64::try_from(e.version).expect("versions are positive"),
                payload: e.data["p"].as_u64().expect("a payload"),
                cold: !hot.contains(&e.version),
            })
            .collect()
    }

    /// The store's own global read, and which of its events are in
    /// `events_hot`.
    async fn read_all(
        &self,
        (tx_id, position): (u64, u64),
        limit: u32,
        include_archived: bool,
    ) -> Vec<FeedEvent> {
        let store = EventStore::new(self.pool.clone());
        let store = match include_archived {
            true => store.with_archived(),
            false => store,
        };
        let after = GlobalCursor {
            tx_id: i64::try_from(tx_id).expect("a cursor read from Postgres"),
            position: i64::try_from(position).expect("a cursor read from Postgres"),
        };
        let read = store.read_all(after, limit.into()).await.expect("read_all");
        let hot: Vec<(i64, i64)> = sqlx::query_as("SELECT tx_id, position FROM events_hot")
            .fetch_all(&self.pool)
            .await
            .expect("hot cursors");
        let unsigned = |n: i64| u64::try_from(n).expect("cursors and versions are positive");
        read.events
            .iter()
            .map(|e| FeedEvent {
                cursor: (unsigned(e.tx_id), unsigned(e.position)),
                stream: u32::try_from(e.stream_id.as_u128()).expect("a stream of the contract"),
                version: unsigned(e.version),
                payload: e.data["p"].as_u64().expect("a payload"),
                cold: !hot.contains(&(e.tx_id, e.position)),
            })
            .collect()
    }

    async fn mark(&self, stream: u32) -> bool {
        let life = StreamLifecycle::new(self.pool.clone());
        match life.mark(id(stream), "closed", "contract").await {
            Ok(MarkOutcome::Marked { .. }) => true,
            Ok(MarkOutcome::AlreadyArchived { .. }) => false,
            Err(e) => panic!("mark: {e}"),
        }
    }

    async fn reactivate(&self, stream: u32) -> bool {
        let life = StreamLifecycle::new(self.pool.clone());
        match life.reactivate(id(stream)).await {
            Ok(ReactivateOutcome::Reactivated) => true,
            Ok(ReactivateOutcome::NotArchived) => false,
            Err(e) => panic!("reactivate: {e}"),
        }
    }

    async fn set_redirect(&self, on: bool) {
        ArchiveSettings::set_redirect(&self.pool, on)
            .await
            .expect("set_redirect");
    }

    async fn move_all(&self) -> u64 {
        let filter = MoveFilter {
            tenant: None,
            before: future(),
            stream: None,
        };
        let limits = MoveLimits {
            batch_size: 100,
            max_events_per_sec: None,
        };
        ArchiveMover::new(self.pool.clone())
            .run(filter, limits, |_| {})
            .await
            .expect("move")
            .moved
    }
}

rillflow_adapters::log_contract_tests!(check);
