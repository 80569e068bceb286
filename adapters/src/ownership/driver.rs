//! The loop that runs one worker's [`PartitionOwner`] against a store.

use std::sync::Arc;

use rillflow_core::lease::MonoTime;
use rillflow_core::ownership::{Action, Input, OwnerTiming, PartitionOwner};
use tokio::sync::{mpsc, watch};

use super::contract::OwnershipStore;
use crate::daemon::TokioClock;

/// A partition this worker may run, and until when on its own clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnedPartition {
    /// The partition.
    pub partition: u32,
    /// The epoch it is held under (the fence checks it again).
    pub epoch: u64,
    /// The worker stops running it at this time on its clock.
    pub until: MonoTime,
}

/// What the driver publishes after every step.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ownership {
    /// The partition count last seen (0 before the first view).
    pub partitions: u32,
    /// Partitions held now, in key order.
    pub owned: Vec<OwnedPartition>,
    /// True once everything was released and the worker left.
    pub stopped: bool,
}

/// Told to the driver from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerSignal {
    /// A batch of `partition` was refused under `epoch`.
    Fenced {
        /// The partition.
        partition: u32,
        /// The epoch refused.
        epoch: u64,
    },
    /// Another worker released, joined, left or died: sync now.
    PeerChanged,
    /// The waiter announced the end of the watched session `key` (see
    /// [`super::announce_session_ends`]).
    PeerSessionEnded {
        /// The session that ended.
        key: i64,
    },
    /// Release everything and leave (the batches have stopped).
    Shutdown,
}

/// Runs a [`PartitionOwner`]: performs its actions on the store one at a
/// time and feeds the answers back, ticks it at its timeouts, and publishes
/// what the worker owns. Production passes [`super::PgOwnershipStore`]; the
/// simulation passes its model, so both run this loop.
pub struct OwnerDriver<S: OwnershipStore + ?Sized> {
    store: Arc<S>,
    projection: String,
    timing: OwnerTiming,
    clock: TokioClock,
    watched: Option<watch::Sender<Option<i64>>>,
}

impl<S: OwnershipStore + ?Sized> OwnerDriver<S> {
    /// A driver of `projection`'s ownership on `store`.
    pub fn new(store: Arc<S>, projection: String, timing: OwnerTiming, clock: TokioClock) -> Self {
        OwnerDriver {
            store,
            projection,
            timing,
            clock,
            watched: None,
        }
    }

    /// Publishes the peer session this worker should wait on
    /// ([`PartitionOwner::session_to_watch`]) to `targets` as soon as it
    /// changes, for [`watch_sessions`](crate::daemon::watch_sessions) to wait
    /// on and [`announce_session_ends`](super::announce_session_ends) to
    /// announce. Published after every answer, not only once the round is
    /// over: a round's renewals wait for running batches, and a peer that
    /// dies meanwhile must already be watched.
    pub fn watch_sessions(mut self, targets: watch::Sender<Option<i64>>) -> Self {
        self.watched = Some(targets);
        self
    }

    /// Drives `machine` until it stopped (after [`OwnerSignal::Shutdown`], or
    /// when every sender of `signals` is gone).
    pub async fn run(
        &self,
        mut machine: PartitionOwner,
        mut signals: mpsc::Receiver<OwnerSignal>,
        publish: watch::Sender<Ownership>,
    ) {
        loop {
            while let Some(action) = machine.poll_action() {
                if let Some(answer) = self.perform(machine.name(), action).await {
                    machine.handle(self.clock.now(), answer);
                    self.publish_watch(&machine);
                }
            }
            let _ = publish.send(snapshot(&machine, self.clock.now()));
            self.publish_watch(&machine);
            let Some(next) = machine.poll_timeout() else {
                return;
            };
            tokio::select! {
                biased;
                signal = signals.recv() => {
                    let input = match signal {
                        Some(OwnerSignal::Fenced { partition, epoch }) => {
                            Input::Fenced { partition, epoch }
                        }
                        Some(OwnerSignal::PeerChanged) => Input::PeerChanged,
                        Some(OwnerSignal::PeerSessionEnded { key }) => {
                            Input::PeerSessionEnded { key }
                        }
                        Some(OwnerSignal::Shutdown) | None => Input::Shutdown,
                    };
                    machine.handle(self.clock.now(), input);
                }
                _ = tokio::time::sleep_until(self.clock.instant(next)) => {
                    machine.handle(self.clock.now(), Input::Tick);
                }
            }
        }
    }

    fn publish_watch(&self, machine: &PartitionOwner) {
        if let Some(targets) = &self.watched {
            targets.send_if_modified(|t| {
                let next = machine.session_to_watch();
                let changed = std::mem::replace(t, next) != next;
                if changed {
                    tracing::debug!(projection = %self.projection, key = ?next, "watching a peer's session");
                }
                changed
            });
        }
    }

    /// Performs one action; the answer to feed back, if any. A call that
    /// does not answer within a heartbeat counts as failed: on a dead
    /// connection the machine must still tick and see a shutdown.
    async fn perform(&self, me: &str, action: Action) -> Option<Input> {
        let limit = self.timing.heartbeat;
        match tokio::time::timeout(limit, self.call(me, action)).await {
            Ok(answer) => answer,
            Err(_) => {
                tracing::warn!(projection = %self.projection, ?limit, "partition ownership call timed out; retrying next round");
                Some(Input::Failed)
            }
        }
    }

    async fn call(&self, me: &str, action: Action) -> Option<Input> {
        let store = &self.store;
        let projection = self.projection.as_str();
        let ttl = self.timing.ttl;
        let result =
            match action {
                Action::Sync => {
                    store
                        .sync_with_sessions(projection, me, ttl)
                        .await
                        .map(|(view, sessions)| {
                            Some(Input::Viewed {
                                partitions: view.partitions,
                                workers: view.workers,
                                holders: view.holders,
                                sessions: sessions.live,
                                ended: sessions.ended,
                            })
                        })
                }
                Action::Claim { partition } => store
                    .claim(projection, partition, me, ttl)
                    .await
                    .map(|epoch| {
                        if let Some(epoch) = epoch {
                            tracing::info!(projection, partition, epoch, "partition claimed");
                        }
                        Some(Input::Claimed { partition, epoch })
                    }),
                Action::Renew { partition, epoch } => store
                    .renew(projection, partition, epoch, ttl)
                    .await
                    .map(|held| {
                        if !held {
                            tracing::warn!(projection, partition, epoch, "partition lease lost");
                        }
                        Some(Input::Renewed {
                            partition,
                            epoch,
                            held,
                        })
                    }),
                Action::Release { partition, epoch } => {
                    store.release(projection, partition, epoch).await.map(|()| {
                        tracing::info!(projection, partition, epoch, "partition released");
                        None
                    })
                }
                Action::Leave => store.leave(projection, me).await.map(|()| None),
                Action::Announce => store.announce(projection).await.map(|()| {
                    tracing::info!(
                        projection,
                        "a worker this one watches died unannounced; told the others"
                    );
                    None
                }),
            };
        result.unwrap_or_else(|error| {
            tracing::warn!(projection, %error, "partition ownership call failed; retrying next round");
            Some(Input::Failed)
        })
    }
}

fn snapshot(machine: &PartitionOwner, now: MonoTime) -> Ownership {
    Ownership {
        partitions: machine.partitions(),
        owned: machine
            .owned_until(now)
            .into_iter()
            .map(|(partition, epoch, until)| OwnedPartition {
                partition,
                epoch,
                until,
            })
            .collect(),
        stopped: machine.is_stopped(),
    }
}
