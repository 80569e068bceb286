//! Waking standbys the moment the leader's lease session ends, and
//! partition owners the moment a peer's does.
//!
//! The leader holds an exclusive lock that names its lease session (sql/0017);
//! a standby waits for a share of that lock. The wait returns when the lock
//! goes, which is when the leader's backend exits: its process died (the
//! kernel closes the socket), the server ended the session, or the leader
//! closed it on a clean stop. Postgres wakes waiters the moment a lock is
//! released, so a standby learns of a dead leader within milliseconds and
//! looks at the lease at once instead of at its next heartbeat. Postgres
//! waits on a connection of its own; the simulation's database host answers
//! the same request. The forwarding loop is shared.

use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{mpsc, watch};

use super::driver::Signal;
use super::lease_store::LeaseError;

/// Waits for session locks to be released.
#[async_trait]
pub trait SessionWatch: Send + Sync + 'static {
    /// What one wait runs on (a connection of its own).
    type Waiter: Send + 'static;

    /// Opens a waiter.
    async fn open(&self) -> Result<Self::Waiter, LeaseError>;

    /// Waits a bounded while (the implementation's own limit, well under a
    /// heartbeat) for no session to hold the lock `key`. Ok(true): nobody
    /// holds it any more; Ok(false): it was still held when the wait ended.
    async fn wait_ended(&self, waiter: &mut Self::Waiter, key: i64) -> Result<bool, LeaseError>;
}

/// Waits, over and over, on the session lock `targets` names (the machine's
/// [`session_to_watch`](rillflow_core::lease::NodeMachine::session_to_watch),
/// published by the driver) and sends [`Signal::LeaderSessionEnded`] once per
/// key when it goes. See [`watch_sessions`].
pub fn watch_leader_sessions<W: SessionWatch>(
    watch: W,
    targets: watch::Receiver<Option<i64>>,
    signals: mpsc::Sender<Signal>,
    retry: Duration,
) {
    watch_sessions(
        watch,
        targets,
        signals,
        |_| Signal::LeaderSessionEnded,
        retry,
    );
}

/// Waits, over and over, on the session lock `targets` names and sends
/// `ended(key)` once per key when it goes: a standby waiting on its leader, or a
/// partition owner on its peer in the watch ring
/// ([`rillflow_core::ownership::session_to_watch`]). A wait under way is
/// called off when the target changes. A broken waiter is opened again
/// after 50 ms, doubling up to `retry`. Missing an end only costs time: the
/// lease still expires.
pub fn watch_sessions<W: SessionWatch, M: Send + 'static>(
    watch: W,
    mut targets: watch::Receiver<Option<i64>>,
    signals: mpsc::Sender<M>,
    ended_signal: impl Fn(i64) -> M + Send + 'static,
    retry: Duration,
) {
    tokio::spawn(async move {
        let mut waiter: Option<W::Waiter> = None;
        let mut ended: Option<i64> = None;
        let mut waiting: Option<i64> = None;
        let mut backoff = Duration::from_millis(50);
        loop {
            if signals.is_closed() {
                return;
            }
            let target = *targets.borrow_and_update();
            let Some(key) = target.filter(|k| ended != Some(*k)) else {
                // Nothing (new) to wait on: sleep until the target changes.
                if targets.changed().await.is_err() {
                    return;
                }
                continue;
            };
            let w = match waiter.as_mut() {
                Some(w) => w,
                None => match watch.open().await {
                    Ok(w) => waiter.insert(w),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot watch a lease session");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(retry.max(Duration::from_millis(50)));
                        continue;
                    }
                },
            };
            if waiting.replace(key) != Some(key) {
                tracing::debug!(key, "waiting on a lease session");
            }
            // A new target calls the wait off: the session it waits on
            // may be alive for long, while the new one may already be gone.
            // A wait cannot be withdrawn on its connection, so that waiter
            // is dropped and the next wait opens another.
            let waited = tokio::select! {
                biased;
                waited = watch.wait_ended(w, key) => Ok(waited),
                changed = targets.changed() => Err(changed.is_ok()),
            };
            let waited = match waited {
                Ok(waited) => waited,
                Err(retarget) => {
                    waiter = None;
                    if retarget {
                        continue;
                    }
                    // The driver is gone.
                    return;
                }
            };
            match waited {
                Ok(true) => {
                    backoff = Duration::from_millis(50);
                    ended = Some(key);
                    tracing::info!(key, "a watched lease session ended");
                    if signals.send(ended_signal(key)).await.is_err() {
                        return;
                    }
                }
                Ok(false) => backoff = Duration::from_millis(50),
                Err(e) => {
                    tracing::warn!(error = %e, "watching a lease session failed");
                    waiter = None;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(retry.max(Duration::from_millis(50)));
                }
            }
        }
    });
}
