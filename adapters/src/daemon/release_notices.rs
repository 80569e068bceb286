//! Release notifications: a graceful release wakes the standbys at once
//! instead of at their next heartbeat (LEASE-3's one-second handoff).
//! Postgres delivers them with LISTEN/NOTIFY; the simulation's database host
//! pushes them over its own connection. The forwarding loop is shared.

use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;

use super::driver::Signal;
use super::lease_store::LeaseError;

/// A source of "this cluster's leader released its lease" notices.
#[async_trait]
pub trait ReleaseNotices: Send + Sync + 'static {
    /// A subscription.
    type Listener: Send + 'static;

    /// Subscribes; notices sent from now on are delivered.
    async fn listen(&self) -> Result<Self::Listener, LeaseError>;

    /// The next notice: the name of the cluster whose leader released.
    async fn next(&self, listener: &mut Self::Listener) -> Result<String, LeaseError>;
}

/// Forwards notices for `cluster` to the driver as [`Signal::PeerReleased`],
/// starting with the subscription `first` (taken before the node joined, so
/// nothing is missed). A lost subscription is taken again at once, then
/// after 50 ms, doubling up to `retry` while the database stays away: a
/// release right after a database restart should still wake the standbys.
/// Missing a notice only costs time: the next heartbeat sees the free lease
/// anyway.
pub fn forward_releases<N: ReleaseNotices>(
    notices: N,
    first: N::Listener,
    cluster: String,
    signals: mpsc::Sender<Signal>,
    retry: Duration,
) {
    tokio::spawn(async move {
        let mut listener = Some(first);
        let mut backoff = Duration::ZERO;
        loop {
            if let Some(mut l) = listener.take() {
                loop {
                    match notices.next(&mut l).await {
                        Ok(released) if released == cluster => {
                            if signals.send(Signal::PeerReleased).await.is_err() {
                                return;
                            }
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "release notifications interrupted");
                            break;
                        }
                    }
                }
            }
            if signals.is_closed() {
                return;
            }
            tokio::time::sleep(backoff).await;
            match notices.listen().await {
                Ok(l) => {
                    listener = Some(l);
                    backoff = Duration::ZERO;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for releases");
                    backoff = (backoff * 2).clamp(
                        Duration::from_millis(50),
                        retry.max(Duration::from_millis(50)),
                    );
                }
            }
        }
    });
}
