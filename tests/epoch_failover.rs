//! Issue 26, part 3, on leases: after a real lossy failover no lease epoch
//! is granted twice. The old primary granted an epoch after the standby's
//! last replayed commit; counting on from the surviving row would grant it
//! again to another node, and the fence, which compares epochs, would let
//! both write (LEASE-1). Each timeline's epochs start above the last's.

use std::time::Duration;

use rillflow_adapters::daemon::{FenceError, LeaseStore, PgLeaseStore};
use rillflow_testkit::lease_fixtures::*;
use rillflow_testkit::standby::StandbyPair;

#[tokio::test]
async fn an_epoch_lost_in_a_failover_is_never_granted_again() {
    let pair = StandbyPair::start("epoch-failover").await;
    let old = PgLeaseStore::new(pair.primary_pool().await);
    let [a, b, c] = join(&old, ["a", "b", "c"]).await;
    let first = granted(old.try_acquire(&a, TTL, GRACE).await.unwrap());
    assert_eq!(first.epoch, 1, "timeline 1 counts from 1 as before");
    pair.wait_replayed(Duration::from_secs(30)).await;
    pair.cut_off().await;
    // a's lease runs out; b takes over on the old primary only.
    tokio::time::sleep(TTL + GRACE + Duration::from_millis(100)).await;
    let lost = granted(old.try_acquire(&b, LONG, GRACE).await.unwrap());
    assert_eq!(lost.epoch, 2);
    old.begin_fenced(C, lost.epoch)
        .await
        .expect("b writes on the old primary")
        .commit()
        .await
        .unwrap();

    pair.fail_over().await;
    let new = PgLeaseStore::new(pair.standby_pool().await);
    let after = granted(new.try_acquire(&c, LONG, GRACE).await.unwrap());
    assert!(
        after.epoch >= 1 << 32,
        "timeline 2 grants above every epoch of timeline 1: {}",
        after.epoch
    );
    // b, still running with the lost epoch and reconnected to the promoted
    // server, is fenced; c writes.
    assert!(matches!(
        new.begin_fenced(C, lost.epoch).await,
        Err(FenceError::Fenced { .. })
    ));
    new.begin_fenced(C, after.epoch)
        .await
        .expect("c writes")
        .commit()
        .await
        .unwrap();
}

/// The same for partition leases: a claim the old primary granted after the
/// standby's last replayed commit is lost, and the promoted server's next
/// claim of that partition has an epoch above it.
#[tokio::test]
async fn a_partition_epoch_lost_in_a_failover_is_never_granted_again() {
    use rillflow_adapters::ownership::{OwnershipError, PgOwnershipStore};
    use rillflow_adapters::projection::ProjectionCatalog;

    let pair = StandbyPair::start("partition-epoch-failover").await;
    let primary = pair.primary_pool().await;
    ProjectionCatalog::new(primary.clone())
        .register_all("p", 2)
        .await
        .unwrap();
    let old = PgOwnershipStore::new(primary);
    let first = old.claim("p", 0, "a", TTL).await.unwrap().expect("free");
    assert_eq!(first, 1);
    pair.wait_replayed(Duration::from_secs(30)).await;
    pair.cut_off().await;
    tokio::time::sleep(TTL + Duration::from_millis(100)).await;
    let lost = old
        .claim("p", 0, "b", LONG)
        .await
        .unwrap()
        .expect("expired");
    assert_eq!(lost, 2);

    pair.fail_over().await;
    let new = PgOwnershipStore::new(pair.standby_pool().await);
    tokio::time::sleep(TTL).await;
    let after = new
        .claim("p", 0, "c", LONG)
        .await
        .unwrap()
        .expect("expired");
    assert!(after >= 1 << 32, "{after}");
    assert!(matches!(
        new.begin_fenced("p", 0, lost).await,
        Err(OwnershipError::Fenced { .. })
    ));
    new.begin_fenced("p", 0, after)
        .await
        .expect("c writes")
        .commit()
        .await
        .unwrap();
}
