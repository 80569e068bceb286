//! The fault schedule of a run, drawn from its seed.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::Rng;

/// One fault, applied at a simulated time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Kill the node's process.
    Crash(String),
    /// Start a crashed node again (a new incarnation under the same name).
    Restart(String),
    /// Cut the node off from the database, both ways.
    Partition(String),
    /// Cut only the node → database direction (requests vanish, nothing
    /// comes back).
    PartitionToDb(String),
    /// Cut only the database → node direction (requests land, replies are
    /// lost).
    PartitionFromDb(String),
    /// Heal the node's links to the database.
    Repair(String),
    /// Hold the node's messages to and from the database (delivered later).
    Hold(String),
    /// Deliver what was held.
    Release(String),
    /// Restart the database host (committed state survives).
    CrashDb,
    /// Start the database host again.
    RestartDb,
}

/// Faults in time order, all before `until`, and each undone before it.
pub fn schedule(rng: &mut StdRng, nodes: &[String], until: Duration) -> Vec<(Duration, Fault)> {
    let mut plan = Vec::new();
    let mut t = Duration::from_millis(rng.random_range(1_000..3_000));
    while t < until {
        let node = nodes[rng.random_range(0..nodes.len())].clone();
        let length = Duration::from_millis(rng.random_range(200..6_000));
        let end = (t + length).min(until);
        let (start, stop) = match rng.random_range(0..10) {
            0..=1 => (Fault::Crash(node.clone()), Fault::Restart(node)),
            2..=3 => (Fault::Partition(node.clone()), Fault::Repair(node)),
            4 => (Fault::PartitionToDb(node.clone()), Fault::Repair(node)),
            5 => (Fault::PartitionFromDb(node.clone()), Fault::Repair(node)),
            6..=8 => (Fault::Hold(node.clone()), Fault::Release(node)),
            _ => (Fault::CrashDb, Fault::RestartDb),
        };
        plan.push((t, start));
        plan.push((end, stop));
        t = end + Duration::from_millis(rng.random_range(100..3_000));
    }
    plan.sort_by_key(|(at, _)| *at);
    plan
}
