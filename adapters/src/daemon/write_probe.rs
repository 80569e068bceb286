//! What a hot node runs until projections are declared: a write-path probe.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::lease_store::{FencedWrites, NodeIdentity};
use super::processor::Processor;
use super::write_gate::WriteGate;

/// Once per `interval` while hot, commits a stamp on the node's own row
/// through the fence, the path every projection write takes. A write the
/// fence rejects is logged and ends the work of that epoch: the lease has
/// moved on; the lease machine hands over and stands by. The simulation runs
/// this same processor against its model database (SIM-1).
pub struct WriteProbe<S> {
    store: Arc<S>,
    node: NodeIdentity,
    interval: Duration,
}

impl<S> WriteProbe<S> {
    /// A probe of `node` every `interval`.
    pub fn new(store: Arc<S>, node: NodeIdentity, interval: Duration) -> Self {
        WriteProbe {
            store,
            node,
            interval,
        }
    }
}

impl<S: FencedWrites + 'static> Processor for WriteProbe<S> {
    fn spawn(
        &mut self,
        epoch: u64,
        gate: WriteGate,
        mut stop: watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        let (store, node, interval) = (self.store.clone(), self.node.clone(), self.interval);
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
                match store.fenced_write(&node, epoch).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(
                            epoch,
                            "write rejected by the fence: another node holds the lease"
                        );
                        return;
                    }
                    Err(e) => tracing::warn!(epoch, error = %e, "fenced write failed; retrying"),
                }
                // Biased: no random branch choice, so simulated runs repeat.
                tokio::select! {
                    biased;
                    _ = stop.changed() => {}
                    _ = tokio::time::sleep(interval) => {}
                }
            }
        })
    }
}
