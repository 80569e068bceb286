//! The ownership contract (`rillflow_adapters::ownership::store_contract`)
//! against Postgres. The simulation runs the same checks against its model
//! database (`sim/tests/ownership_contract.rs`).

use std::time::Duration;

use async_trait::async_trait;
use rillflow_adapters::ownership::{
    store_contract, Fence, OwnershipError, OwnershipHarness, PgChangeNotices, PgOwnershipStore,
    RepartitionError, Repartitioner, Resize,
};
use rillflow_adapters::projection::ProjectionCatalog;
use rillflow_testkit::TestDb;
use sqlx::{PgPool, Postgres, Transaction};

fn check(name: &str) {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let mut db = TestDb::migrated().await;
        // Room for the ten concurrent claims, a listener and an open batch.
        let harness = PgHarness {
            pool: db.pool_of(14).await,
        };
        store_contract::run(name, &harness).await;
    });
}

/// Every store shares one pool; a fenced batch is a transaction of it.
struct PgHarness {
    pool: PgPool,
}

#[async_trait]
impl OwnershipHarness for PgHarness {
    type Store = PgOwnershipStore;
    type Notices = PgChangeNotices;
    type Batch = Transaction<'static, Postgres>;

    fn store(&self) -> PgOwnershipStore {
        PgOwnershipStore::new(self.pool.clone())
    }

    fn notices(&self) -> PgChangeNotices {
        PgChangeNotices::new(self.pool.clone())
    }

    async fn register(&self, projection: &str, partitions: u32) {
        let catalog = ProjectionCatalog::new(self.pool.clone());
        let count = catalog
            .register_all(projection, partitions)
            .await
            .expect("register");
        assert_eq!(count, partitions);
    }

    /// `begin_fenced` as the runner's `WriteFence::Partition` calls it; it
    /// reads no events, so the transaction stays open whatever the log holds.
    async fn begin_fenced(
        &self,
        projection: &str,
        partition: u32,
        _total: u32,
        epoch: u64,
    ) -> Fence<Self::Batch> {
        let store = self.store();
        match store.begin_fenced(projection, partition, epoch).await {
            Ok(tx) => Fence::Admitted(tx),
            Err(OwnershipError::Fenced { .. }) => Fence::Refused,
            Err(e) => panic!("begin_fenced: {e}"),
        }
    }

    async fn commit(&self, batch: Self::Batch) {
        batch.commit().await.expect("commit");
    }

    async fn repartition(&self, projection: &str, to: u32, wait: Duration) -> Resize {
        match Repartitioner::new(self.pool.clone(), wait)
            .run(projection, to)
            .await
        {
            Ok(r) => Resize::Done {
                from: r.from,
                to: r.to,
                changed: r.changed,
            },
            Err(RepartitionError::Busy(_)) => Resize::Busy,
            Err(e) => panic!("repartition: {e}"),
        }
    }
}

rillflow_adapters::ownership_contract_tests!(check);
