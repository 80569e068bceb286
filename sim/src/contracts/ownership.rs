//! The ownership contract (`rillflow_adapters::ownership::store_contract`)
//! against the model database.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rillflow_adapters::ownership::{store_contract, Fence, OwnershipHarness, Resize};

use crate::client::change_notices::SimChangeNotices;
use crate::client::db_conn::DbConn;
use crate::client::sim_ownership_store::SimOwnershipStore;
use crate::client::sim_store::micros;
use crate::contracts::in_sim;
use crate::harness::trace::Trace;
use crate::model::db::ModelDb;
use crate::protocol::{LogRequest, OwnershipRequest, Reply, Request};

/// Runs the ownership check `name`; a breach panics, as it does against
/// Postgres.
pub fn run(name: &str) {
    let check = name.to_owned();
    in_sim(name, move |db| async move {
        let harness = ModelHarness {
            db,
            streams: AtomicU32::new(0),
        };
        store_contract::run(&check, &harness).await;
    });
}

/// The model database's side: stores over the network, the projection
/// registered straight in the model (as `ProjectionCatalog` does with one
/// statement), batches as the simulated runner opens them.
struct ModelHarness {
    db: Arc<Mutex<ModelDb>>,
    /// Streams appended to so far, one per batch opened.
    streams: AtomicU32,
}

/// An open batch: its connection, which its transaction lives as long as,
/// and its transaction; None when the fence admitted it but it found
/// nothing of its partition to read (see `begin_fenced`).
type OpenBatch = Option<(DbConn, u64)>;

impl ModelHarness {
    /// Commits one event to a stream of its own.
    async fn append(&self) {
        let stream = self.streams.fetch_add(1, Ordering::SeqCst) + 1;
        let begun =
            DbConn::once(&Request::Log(LogRequest::AppendBegin { stream, events: 1 })).await;
        let Ok(Reply::AppendStarted { xid }) = begun else {
            panic!("the append starts: {begun:?}");
        };
        let ended = DbConn::once(&Request::Log(LogRequest::AppendEnd { xid, commit: true })).await;
        assert_eq!(ended, Ok(Reply::Done), "the append commits");
    }
}

#[async_trait]
impl OwnershipHarness for ModelHarness {
    type Store = SimOwnershipStore;
    type Notices = SimChangeNotices;
    type Batch = OpenBatch;

    fn store(&self) -> SimOwnershipStore {
        SimOwnershipStore::new("tester".to_owned(), Trace::default())
    }

    fn notices(&self) -> SimChangeNotices {
        SimChangeNotices
    }

    async fn register(&self, projection: &str, partitions: u32) {
        let mut db = self.db.lock().expect("db lock");
        db.ownership.projection.register(projection, partitions);
    }

    /// A model batch reads before it stays open, and ends at once when it
    /// finds nothing (`BatchIdle`): one event is appended first, which a
    /// projection of one partition always reads. With more partitions the
    /// event may fall in another, and an admitted batch is then not held
    /// open; the checks hold batches open only with one partition.
    async fn begin_fenced(
        &self,
        projection: &str,
        partition: u32,
        total: u32,
        epoch: u64,
    ) -> Fence<OpenBatch> {
        self.append().await;
        let mut conn = DbConn::connect().await.expect("connect");
        let begin = Request::Ownership(OwnershipRequest::PartitionBegin {
            projection: projection.to_owned(),
            worker: "contract".to_owned(),
            partition,
            total,
            epoch,
            limit: 10,
        });
        match conn.call(&begin).await {
            Ok(Reply::BatchOpened { txn, .. }) => Fence::Admitted(Some((conn, txn))),
            Ok(Reply::BatchIdle | Reply::BatchHeldBack) => Fence::Admitted(None),
            Ok(Reply::Fenced) => Fence::Refused,
            other => panic!("the batch of p{partition}/{total} begins: {other:?}"),
        }
    }

    async fn commit(&self, batch: OpenBatch) {
        let Some((mut conn, txn)) = batch else {
            return;
        };
        let committed = conn
            .call(&Request::Ownership(OwnershipRequest::PartitionCommit {
                txn,
            }))
            .await;
        assert!(
            matches!(committed, Ok(Reply::Batch { .. })),
            "the batch commits: {committed:?}"
        );
    }

    async fn repartition(&self, projection: &str, to: u32, wait: Duration) -> Resize {
        let request = Request::Ownership(OwnershipRequest::Repartition {
            projection: projection.to_owned(),
            to,
            wait_us: micros(wait),
        });
        match DbConn::once(&request).await {
            Ok(Reply::Resized { from, to, changed }) => Resize::Done { from, to, changed },
            Ok(Reply::Failed(e)) if e.contains("lock timeout") => Resize::Busy,
            other => panic!("the repartition to {to}: {other:?}"),
        }
    }
}
