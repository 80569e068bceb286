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
    /// Freeze the node as SIGSTOP or a long GC pause would: its next write
    /// stalls between its lease check and the write, and nothing it sends
    /// or is sent reaches the other side until it thaws.
    Freeze {
        /// The node.
        node: String,
        /// How long, in milliseconds.
        length_ms: u64,
    },
    /// End a freeze: held messages are delivered.
    Thaw(String),
    /// Freeze the node inside its next fenced transaction, holding the
    /// cluster row's lock (the database host ends such a transaction after
    /// the idle-in-transaction timeout).
    FreezeInTransaction {
        /// The node.
        node: String,
        /// How long, in milliseconds.
        length_ms: u64,
    },
    /// Stop the node gracefully (SIGTERM): finish, release, exit. A
    /// `Restart` starts it again.
    Stop(String),
    /// The database ends the node's lease sessions while it runs
    /// (`pg_terminate_backend`): their locks go, and a lease bound to one
    /// is free at once. Nothing undoes it; the node opens a new session.
    EndSession(String),
    /// Restart the database host (committed state survives; every session
    /// ends).
    CrashDb,
    /// Start the database host again.
    RestartDb,
    /// Pause the standby's replay (`pg_wal_replay_pause()`).
    PauseReplay,
    /// Resume it.
    ResumeReplay,
    /// The primary is gone for good (a `CrashDb` before it): its standby
    /// becomes the primary with what it had replayed when the primary
    /// died, losing every later commit, and a `RestartDb` at the same
    /// instant lets clients reach it.
    Promote,
    /// A client opens a transaction on the primary and writes other
    /// tables first (it takes an id and does not register as an appender)
    /// and holds it open: a standby's horizon stays behind it.
    OpenTransaction,
    /// That transaction appends one event to `stream`, if readers on the
    /// primary have not passed it, and commits.
    CommitTransaction {
        /// The stream.
        stream: u32,
    },
}

/// How long a planned freeze-in-transaction waits for the node's next write
/// before it lapses (the hot node writes every 150 ms).
pub const FREEZE_START: Duration = Duration::from_millis(500);

/// Faults in time order, all before `until`, drawn from `kinds` (the
/// numbers below; a scenario names its mix), each undone before the next
/// starts (so every fault's effect can be read off the trace). A fault that
/// ends a running node's lease session (a database restart, `EndSession`)
/// is followed by `learn` without faults when sessions bind leases
/// (`session_leases`): the time such a node has to learn it lost its
/// lease, which the one-believer check grants it (see `invariants::one_believer`).
pub fn schedule(
    rng: &mut StdRng,
    kinds: &[u32],
    session_leases: bool,
    nodes: &[String],
    until: Duration,
    learn: Duration,
) -> Vec<(Duration, Fault)> {
    let mut plan = Vec::new();
    let mut t = Duration::from_millis(rng.random_range(1_000..3_000));
    while t < until {
        let node = nodes[rng.random_range(0..nodes.len())].clone();
        // Up to 9 s: some faults outlast LEASE-3's bound (6 s at the
        // simulated timing), so takeovers are checked while faults go on.
        let length_ms = rng.random_range(200..9_000);
        let mut end = (t + Duration::from_millis(length_ms)).min(until);
        let mut promote = false;
        let (start, stop) = match kinds[rng.random_range(0..kinds.len())] {
            0 => (Fault::Crash(node.clone()), Some(Fault::Restart(node))),
            1 => (Fault::Partition(node.clone()), Some(Fault::Repair(node))),
            2 => (
                Fault::PartitionToDb(node.clone()),
                Some(Fault::Repair(node)),
            ),
            3 => (
                Fault::PartitionFromDb(node.clone()),
                Some(Fault::Repair(node)),
            ),
            4 => (Fault::Hold(node.clone()), Some(Fault::Release(node))),
            5 => (
                Fault::Freeze {
                    node: node.clone(),
                    length_ms,
                },
                Some(Fault::Thaw(node)),
            ),
            6 => (Fault::CrashDb, Some(Fault::RestartDb)),
            // The standby scenario's: replay paused up to 3 s; a lossy
            // promotion ending a database outage; a transaction held open.
            10 => {
                end = end.min(t + Duration::from_millis(3_000));
                (Fault::PauseReplay, Some(Fault::ResumeReplay))
            }
            11 => {
                promote = true;
                (Fault::CrashDb, Some(Fault::RestartDb))
            }
            12 => (
                Fault::OpenTransaction,
                Some(Fault::CommitTransaction {
                    // Past the writer's streams, so its append is never
                    // older than its stream's last writer (RF003).
                    stream: 8 + (length_ms % 4) as u32,
                }),
            ),
            8 => (Fault::Stop(node.clone()), Some(Fault::Restart(node))),
            9 => {
                end = t;
                (Fault::EndSession(node), None)
            }
            // The database host ends this freeze itself, from the moment
            // the node's write arrives (within FREEZE_START of the plan).
            _ => (Fault::FreezeInTransaction { node, length_ms }, None),
        };
        let late_start = matches!(start, Fault::FreezeInTransaction { .. });
        let ends_sessions =
            session_leases && matches!(start, Fault::CrashDb | Fault::EndSession(_));
        plan.push((t, start));
        if promote {
            // Before the restart at the same instant (the sort is stable).
            plan.push((end, Fault::Promote));
        }
        if let Some(stop) = stop {
            plan.push((end, stop));
        }
        let settle = if late_start {
            FREEZE_START
        } else if ends_sessions {
            learn
        } else {
            Duration::ZERO
        };
        t = end + settle + Duration::from_millis(rng.random_range(100..3_000));
    }
    plan.sort_by_key(|(at, _)| *at);
    plan
}

/// When a fault held something: the host it acted on (`db` for the
/// database), and from when to when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InForce {
    /// The node, or `db`.
    pub host: String,
    /// The fault began.
    pub from: Duration,
    /// It was undone (at the latest, the heal).
    pub until: Duration,
    /// Whether it kept the node's heartbeats from the database: a crash,
    /// a stop, a partition of the way there, a held link or a freeze.
    pub silences: bool,
}

/// Every fault of `faults` as the time it was in force, each ended by the
/// fault that undoes it or the heal at `heal_at`. A session ended by the
/// database lasts an instant; a freeze inside a transaction at most its
/// length after it was planned to start.
pub fn in_force(faults: &[(Duration, Fault)], heal_at: Duration) -> Vec<InForce> {
    let mut out = Vec::new();
    for (i, (at, fault)) in faults.iter().enumerate() {
        let undone_by = |undo: &dyn Fn(&Fault) -> bool| {
            faults[i + 1..]
                .iter()
                .find(|(_, f)| undo(f))
                .map_or(heal_at, |(t, _)| *t)
                .min(heal_at)
        };
        let (host, until, silences) = match fault {
            Fault::Crash(n) | Fault::Stop(n) => (
                n.as_str(),
                undone_by(&|f| matches!(f, Fault::Restart(m) if m == n)),
                true,
            ),
            Fault::Partition(n) | Fault::PartitionToDb(n) | Fault::PartitionFromDb(n) => (
                n.as_str(),
                undone_by(&|f| matches!(f, Fault::Repair(m) if m == n)),
                !matches!(fault, Fault::PartitionFromDb(_)),
            ),
            Fault::Hold(n) => (
                n.as_str(),
                undone_by(&|f| matches!(f, Fault::Release(m) if m == n)),
                true,
            ),
            Fault::Freeze { node, .. } => (
                node.as_str(),
                undone_by(&|f| matches!(f, Fault::Thaw(m) if m == node)),
                true,
            ),
            Fault::FreezeInTransaction { node, length_ms } => (
                node.as_str(),
                (*at + FREEZE_START + Duration::from_millis(*length_ms)).min(heal_at),
                false,
            ),
            Fault::EndSession(n) => (n.as_str(), *at, false),
            Fault::CrashDb => ("db", undone_by(&|f| matches!(f, Fault::RestartDb)), false),
            // A promotion is judged as the database outage it ends; replay
            // and transactions on the database touch no node.
            Fault::Restart(_)
            | Fault::Repair(_)
            | Fault::Release(_)
            | Fault::Thaw(_)
            | Fault::RestartDb
            | Fault::PauseReplay
            | Fault::ResumeReplay
            | Fault::Promote
            | Fault::OpenTransaction
            | Fault::CommitTransaction { .. } => continue,
        };
        out.push(InForce {
            host: host.to_owned(),
            from: *at,
            until,
            silences,
        });
    }
    out
}
