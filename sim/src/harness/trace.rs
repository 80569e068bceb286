//! The run's domain events in simulated time, and their hash.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One thing that happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceEvent {
    /// Simulated time.
    pub at: Duration,
    /// Who (a node, `db` or `faults`).
    pub who: String,
    /// What, with its epoch and times.
    pub what: String,
}

/// A node's belief that it may write, from `at` until `until` (simulated
/// time), or that it may not (`epoch` None) from `at` on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Belief {
    /// When the belief was published.
    pub at: Duration,
    /// The epoch believed in, if any.
    pub epoch: Option<u64>,
    /// When it runs out on the node's own clock, in simulated time.
    pub until: Duration,
    /// The node's own clock reading when it was published.
    pub local: Duration,
}

/// The shared, append-only trace of a run.
#[derive(Debug, Clone, Default)]
pub struct Trace {
    events: Arc<Mutex<Vec<TraceEvent>>>,
    beliefs: Arc<Mutex<Vec<(String, Belief)>>>,
    freezes: Arc<Mutex<Vec<(String, Duration)>>>,
    releases: Arc<Mutex<Vec<(String, Duration)>>>,
}

impl Trace {
    /// Appends an event.
    pub fn record(&self, at: Duration, who: &str, what: String) {
        self.events.lock().expect("trace lock").push(TraceEvent {
            at,
            who: who.to_owned(),
            what,
        });
    }

    /// Records a node's belief (and an event describing it).
    pub fn record_belief(&self, node: &str, belief: Belief) {
        let local = belief.local.as_secs_f64();
        let what = match belief.epoch {
            Some(epoch) => format!(
                "believes epoch {epoch} until {:.6} (local clock {local:.6})",
                belief.until.as_secs_f64()
            ),
            None => format!("believes nothing (local clock {local:.6})"),
        };
        self.record(belief.at, node, what);
        self.beliefs
            .lock()
            .expect("trace lock")
            .push((node.to_owned(), belief));
    }

    /// Records that `node` froze inside a transaction at `at`.
    pub fn record_freeze(&self, node: &str, at: Duration, what: String) {
        self.record(at, node, what);
        self.freezes
            .lock()
            .expect("trace lock")
            .push((node.to_owned(), at));
    }

    /// Records that `node` asked to release its lease at `at`.
    pub fn record_release(&self, node: &str, at: Duration, what: String) {
        self.record(at, node, what);
        self.releases
            .lock()
            .expect("trace lock")
            .push((node.to_owned(), at));
    }

    /// When each node asked to release its lease.
    pub fn releases(&self) -> Vec<(String, Duration)> {
        self.releases.lock().expect("trace lock").clone()
    }

    /// When each freeze inside a transaction began.
    pub fn freezes(&self) -> Vec<(String, Duration)> {
        self.freezes.lock().expect("trace lock").clone()
    }

    /// Every belief recorded, in order.
    pub fn beliefs(&self) -> Vec<(String, Belief)> {
        self.beliefs.lock().expect("trace lock").clone()
    }

    /// A copy of every event so far.
    pub fn events(&self) -> Vec<TraceEvent> {
        self.events.lock().expect("trace lock").clone()
    }

    /// One line per event.
    pub fn render(events: &[TraceEvent]) -> String {
        let mut out = String::new();
        for e in events {
            let _ = writeln!(out, "{:>10.3}s {:<6} {}", e.at.as_secs_f64(), e.who, e.what);
        }
        out
    }

    /// FNV-1a over the rendered trace: the same seed must give the same
    /// hash on every run and machine (SIM-2).
    pub fn hash(events: &[TraceEvent]) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in Self::render(events).bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h
    }
}

/// Simulated time now (zero outside a simulation step).
pub fn sim_now() -> Duration {
    turmoil::sim_elapsed().unwrap_or_default()
}
