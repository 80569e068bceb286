//! The hot node's work in the simulation: fenced writes, as often as a busy
//! projection would commit batches.

use std::time::Duration;

use rillflow_adapters::daemon::{NodeIdentity, Processor, WriteGate};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::sim_store::SimLeaseStore;

/// Commits a fenced write every `interval` while its epoch's permit holds.
#[derive(Debug, Clone)]
pub struct SimWriter {
    /// The store.
    pub store: SimLeaseStore,
    /// The node.
    pub node: NodeIdentity,
    /// Time between writes.
    pub interval: Duration,
}

impl Processor for SimWriter {
    fn spawn(
        &mut self,
        epoch: u64,
        gate: WriteGate,
        mut stop: watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            while !*stop.borrow() {
                if gate.epoch_now() != Some(epoch) {
                    return;
                }
                // Refused by the fence: the lease moved on; stop, as the
                // real writer does. A lost reply is retried next round.
                if let Ok(false) = me.store.fenced_write(&me.node, epoch).await {
                    return;
                }
                tokio::select! {
                    _ = tokio::time::sleep(me.interval) => {}
                    _ = stop.changed() => {}
                }
            }
        })
    }
}
