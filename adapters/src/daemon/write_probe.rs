//! What a hot node runs until projections are declared: a write-path probe.

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::lease_store::NodeIdentity;
use super::pg_lease_store::{FenceError, PgLeaseStore};
use super::processor::Processor;
use super::write_gate::WriteGate;

/// Once per `interval` while hot, commits a stamp on the node's own row
/// through the fence, the path every projection write takes. A write the
/// fence rejects is logged and ends the work of that epoch: the lease has
/// moved on, and the lease machine will find out from its next heartbeat or
/// renewal and stand by.
#[derive(Debug, Clone)]
pub struct WriteProbe {
    store: PgLeaseStore,
    node: NodeIdentity,
    interval: Duration,
}

impl WriteProbe {
    /// A probe of `node` every `interval`.
    pub fn new(store: PgLeaseStore, node: NodeIdentity, interval: Duration) -> Self {
        WriteProbe {
            store,
            node,
            interval,
        }
    }
}

impl Processor for WriteProbe {
    fn spawn(
        &mut self,
        epoch: u64,
        gate: WriteGate,
        mut stop: watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        let probe = self.clone();
        tokio::spawn(async move {
            loop {
                if *stop.borrow() {
                    return;
                }
                // The local belief first: a node past its own deadline does
                // not even ask; the fence catches what this check misses.
                if gate.epoch_now() != Some(epoch) {
                    tracing::warn!(
                        epoch,
                        "write skipped: this node's lease ran out on its own clock"
                    );
                    return;
                }
                match probe.store.probe_fenced_write(&probe.node, epoch).await {
                    Ok(()) => {}
                    Err(FenceError::Fenced { .. }) => {
                        tracing::warn!(
                            epoch,
                            "write rejected by the fence: another node holds the lease"
                        );
                        return;
                    }
                    Err(e) => tracing::warn!(epoch, error = %e, "fenced write failed; retrying"),
                }
                tokio::select! {
                    _ = tokio::time::sleep(probe.interval) => {}
                    _ = stop.changed() => {}
                }
            }
        })
    }
}
