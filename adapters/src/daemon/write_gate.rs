//! The node's current right to write, shared with projection workers.

use std::time::Duration;

use rillflow_core::lease::MonoTime;
use tokio::sync::watch;
use tokio::time::Instant;

/// A monotonic clock for core: tokio's instants (virtual under the
/// simulation) measured from a fixed origin.
///
/// `rate_ppm` makes the clock run fast (positive) or slow (negative) by that
/// many parts per million. Production uses 0; the simulation gives every node
/// its own rate, to show that lease decisions never depend on node clocks
/// agreeing (LEASE-2).
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    origin: Instant,
    rate_ppm: i32,
}

impl TokioClock {
    /// A clock whose origin is now.
    pub fn start() -> Self {
        TokioClock::with_rate(0)
    }

    /// A clock whose origin is now, running `rate_ppm` parts per million fast
    /// (or slow, when negative). Rates are clamped to ±10 %.
    pub fn with_rate(rate_ppm: i32) -> Self {
        TokioClock {
            origin: Instant::now(),
            rate_ppm: rate_ppm.clamp(-100_000, 100_000),
        }
    }

    fn factor(&self) -> f64 {
        1.0 + f64::from(self.rate_ppm) / 1_000_000.0
    }

    /// The current time as core sees it.
    pub fn now(&self) -> MonoTime {
        let elapsed = self.origin.elapsed();
        if self.rate_ppm == 0 {
            return MonoTime::from_origin(elapsed);
        }
        MonoTime::from_origin(elapsed.mul_f64(self.factor()))
    }

    /// The tokio instant at which this clock reads `t` (or just after).
    pub fn instant(&self, t: MonoTime) -> Instant {
        if self.rate_ppm == 0 {
            return self.origin + t.since_origin();
        }
        // Rounded up by a microsecond, so that at the returned instant
        // `now()` has surely reached `t`: a timer that woke a hair early
        // would find nothing due and wait on the same instant again.
        self.origin + t.since_origin().div_f64(self.factor()) + Duration::from_micros(1)
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

    /// The permit as last published (possibly already run out).
    pub fn permit(&self) -> Option<Permit> {
        *self.rx.borrow()
    }

    /// Waits until the permit changes.
    pub async fn changed(&mut self) -> bool {
        self.rx.changed().await.is_ok()
    }
}
