//! The node's current right to write, shared with projection workers.

use std::time::Duration;

use rillflow_core::lease::MonoTime;
use tokio::sync::watch;
use tokio::time::Instant;

/// A monotonic clock for core: tokio's instants (virtual under the
/// simulation) measured from a fixed origin.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    origin: Instant,
}

impl TokioClock {
    /// A clock whose origin is now.
    pub fn start() -> Self {
        TokioClock {
            origin: Instant::now(),
        }
    }

    /// The current time as core sees it.
    pub fn now(&self) -> MonoTime {
        MonoTime::from_origin(self.origin.elapsed())
    }

    /// The tokio instant of a core time.
    pub fn instant(&self, t: MonoTime) -> Instant {
        self.origin + t.since_origin()
    }
}

/// The epoch a node may write under and until when (its own clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permit {
    /// The fencing epoch.
    pub epoch: u64,
    /// Local time at which the node stops believing it holds the lease.
    pub until: MonoTime,
}

/// Published by the driver after every step; read by writers before every
/// batch. The database fence re-checks whatever this lets through.
#[derive(Debug, Clone)]
pub struct WriteGate {
    clock: TokioClock,
    rx: watch::Receiver<Option<Permit>>,
}

impl WriteGate {
    /// A gate and the sender the driver publishes to.
    pub fn new(clock: TokioClock) -> (watch::Sender<Option<Permit>>, WriteGate) {
        let (tx, rx) = watch::channel(None);
        (tx, WriteGate { clock, rx })
    }

    /// The epoch to write under right now, if any.
    pub fn epoch_now(&self) -> Option<u64> {
        let now = self.clock.now();
        (*self.rx.borrow())
            .filter(|p| now < p.until)
            .map(|p| p.epoch)
    }

    /// How long the current permit still runs.
    pub fn remaining(&self) -> Option<Duration> {
        let now = self.clock.now();
        (*self.rx.borrow())
            .map(|p| p.until.saturating_since(now))
            .filter(|d| !d.is_zero())
    }

    /// Waits until the permit changes.
    pub async fn changed(&mut self) -> bool {
        self.rx.changed().await.is_ok()
    }
}
