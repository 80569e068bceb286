//! Ownership change notices: a release, join, leave or repartition wakes
//! the projection's other workers at once instead of at their next
//! heartbeat. Missing one only costs time: every round reads the database.
//! Postgres delivers them with LISTEN/NOTIFY; the simulation's database host
//! pushes them over a connection of its own. The forwarding loop is shared.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::mpsc;

use std::sync::Arc;

use super::contract::OwnershipStore;
use super::driver::OwnerSignal;
use super::store::CHANGES_CHANNEL;

/// A source of "this projection's ownership changed" notices.
#[async_trait]
pub trait ChangeNotices: Send + Sync + 'static {
    /// A subscription.
    type Listener: Send + 'static;

    /// Subscribes; notices sent once this returns are delivered.
    async fn listen(&self) -> Result<Self::Listener, String>;

    /// The next notice: the name of the projection that changed.
    async fn next(&self, listener: &mut Self::Listener) -> Result<String, String>;
}

/// Change notices by LISTEN on `rf_partition_changes`.
#[derive(Debug, Clone)]
pub struct PgChangeNotices {
    pool: PgPool,
}

impl PgChangeNotices {
    /// Notices through a connection of `pool`'s settings.
    pub fn new(pool: PgPool) -> Self {
        PgChangeNotices { pool }
    }
}

#[async_trait]
impl ChangeNotices for PgChangeNotices {
    type Listener = PgListener;

    async fn listen(&self) -> Result<PgListener, String> {
        let mut listener = PgListener::connect_with(&self.pool)
            .await
            .map_err(|e| e.to_string())?;
        listener
            .listen(CHANGES_CHANNEL)
            .await
            .map_err(|e| e.to_string())?;
        Ok(listener)
    }

    async fn next(&self, listener: &mut PgListener) -> Result<String, String> {
        let notice = listener.recv().await.map_err(|e| e.to_string())?;
        Ok(notice.payload().to_owned())
    }
}

/// Forwards notices, starting with the subscription `first` (taken before
/// any worker synced, so nothing after its first view is missed), to the
/// driver of the projection each names as [`OwnerSignal::PeerChanged`]. A
/// lost subscription is taken again at once, then after 50 ms doubling up
/// to `retry`. Ends when every driver is gone.
pub fn forward_changes<N: ChangeNotices>(
    notices: N,
    first: N::Listener,
    drivers: BTreeMap<String, mpsc::Sender<OwnerSignal>>,
    retry: Duration,
) {
    tokio::spawn(async move {
        let mut listener = Some(first);
        let mut backoff = Duration::ZERO;
        loop {
            if let Some(mut l) = listener.take() {
                loop {
                    match notices.next(&mut l).await {
                        Ok(projection) => {
                            if let Some(driver) = drivers.get(&projection) {
                                // Full means a sync is coming anyway.
                                let _ = driver.try_send(OwnerSignal::PeerChanged);
                            }
                        }
                        Err(error) => {
                            tracing::warn!(%error, "ownership notices interrupted");
                            break;
                        }
                    }
                }
            }
            if drivers.values().all(|d| d.is_closed()) {
                return;
            }
            tokio::time::sleep(backoff).await;
            match notices.listen().await {
                Ok(l) => {
                    listener = Some(l);
                    backoff = Duration::ZERO;
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for ownership notices");
                    backoff = (backoff * 2).clamp(
                        Duration::from_millis(50),
                        retry.max(Duration::from_millis(50)),
                    );
                }
            }
        }
    });
}

/// Tells every worker of `projection` to sync, this one included, each
/// time `ends` names a peer session this worker watched that ended (fed by
/// [`watch_sessions`](crate::daemon::watch_sessions) on the targets
/// [`OwnerDriver::watch_sessions`](super::OwnerDriver::watch_sessions)
/// publishes), having first reported it to the driver as
/// [`OwnerSignal::PeerSessionEnded`], so that its machine does not announce
/// it again. Only this worker was waiting on that session, so the others
/// hear of the death from here or from their next heartbeat. Sent at once
/// rather than as one of the driver's actions, which would queue behind a
/// round whose renewals wait for running batches. Ends with `ends`.
pub fn announce_session_ends<S: OwnershipStore + ?Sized + 'static>(
    store: Arc<S>,
    projection: String,
    mut ends: mpsc::Receiver<i64>,
    driver: mpsc::Sender<OwnerSignal>,
) {
    tokio::spawn(async move {
        while let Some(key) = ends.recv().await {
            // Queued before the announcement, whose notice reaches the
            // driver through the same channel: its machine must know before
            // it syncs on that notice. Full means the driver is busy: at
            // worst it announces once more.
            let _ = driver.try_send(OwnerSignal::PeerSessionEnded { key });
            match store.announce(&projection).await {
                Ok(()) => tracing::info!(
                    projection,
                    key,
                    "a watched worker's session ended; told the others"
                ),
                // Missing it only costs time: the others find the worker
                // gone at their next heartbeat.
                Err(error) => tracing::warn!(projection, %error, "cannot announce a peer's end"),
            }
        }
    });
}
