//! What a hot node runs while it holds the lease.

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::write_gate::WriteGate;

/// Starts the work of a hot node. The returned task must end soon after
/// `stop` turns true (after finishing its current batch), and must write only
/// through the fence of `epoch`, checking `gate` before each batch.
pub trait Processor: Send {
    /// Spawns the work for `epoch`.
    fn spawn(&mut self, epoch: u64, gate: WriteGate, stop: watch::Receiver<bool>)
        -> JoinHandle<()>;
}

/// A processor that runs nothing: for nodes that only hold the lease.
#[derive(Debug, Default, Clone, Copy)]
pub struct Idle;

impl Processor for Idle {
    fn spawn(
        &mut self,
        _epoch: u64,
        _gate: WriteGate,
        mut stop: watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        tokio::spawn(async move {
            while !*stop.borrow() {
                if stop.changed().await.is_err() {
                    break;
                }
            }
        })
    }
}

/// A node chooses its work at start-up (a write probe, or projections).
impl Processor for Box<dyn Processor> {
    fn spawn(
        &mut self,
        epoch: u64,
        gate: WriteGate,
        stop: watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        (**self).spawn(epoch, gate, stop)
    }
}
