//! The scenarios a run can be: which faults it draws and which hosts it
//! starts. `chaos`, `crashes`, `network`, `pauses`, `db-restarts`, `locks`
//! and `sessions` are hot/cold runs with different fault mixes;
//! `projections` and `archive` add writers and a projection to them;
//! `ownership` runs partitioned workers instead of hot/cold nodes;
//! `operator` adds an operator promoting and demoting nodes; `standby`
//! reads the projection's events from a lagging standby and promotes it.

/// Which faults a run draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Every kind of fault.
    Chaos,
    /// Node crashes, graceful stops, and restarts.
    Crashes,
    /// Partitions, one-way partitions (lost replies) and held links.
    Network,
    /// Nodes frozen, with a write stalled between its lease check and the
    /// write.
    Pauses,
    /// Database restarts.
    DbRestarts,
    /// Writers frozen inside their fenced transaction, holding its lock.
    Locks,
    /// Nodes run a projection while a writer appends (commits out of
    /// order, rollbacks), under every fault but the in-transaction freeze
    /// (batches are atomic in the model).
    Projections,
    /// Projections while writers append with expected versions and keys,
    /// an operator marks, reactivates and switches the redirect, and a
    /// mover moves events cold; the clients crash and lose replies too
    /// (see `client_faults`).
    Archive,
    /// What ends lease sessions: node crashes, the database ending a
    /// node's session while it runs, database restarts.
    Sessions,
    /// Workers share a partitioned projection through per-partition
    /// leases (the production `OwnerDriver` and `OwnedWorker`) while a
    /// writer appends and an operator repartitions; workers join late,
    /// leave, crash, freeze (also inside a batch, holding its locks) and
    /// lose their links, and the database restarts.
    Ownership,
    /// `projections` with the nodes reading events from a hot standby
    /// whose replay lags (seeded, varying) and pauses, while checkpoints
    /// stay on the primary; clients hold transactions open on the
    /// primary, and some database outages end in a lossy promotion of the
    /// standby.
    Standby,
    /// An operator promotes (some with `--force`, some naming dead or
    /// lagging nodes, which must be refused) and demotes at seeded times,
    /// while nodes crash, stop, freeze, lose their links and their lease
    /// sessions.
    Operator,
}

impl Scenario {
    /// Every scenario, by name.
    pub const ALL: [(&'static str, Scenario); 12] = [
        ("chaos", Scenario::Chaos),
        ("crashes", Scenario::Crashes),
        ("network", Scenario::Network),
        ("pauses", Scenario::Pauses),
        ("db-restarts", Scenario::DbRestarts),
        ("locks", Scenario::Locks),
        ("projections", Scenario::Projections),
        ("archive", Scenario::Archive),
        ("sessions", Scenario::Sessions),
        ("ownership", Scenario::Ownership),
        ("operator", Scenario::Operator),
        ("standby", Scenario::Standby),
    ];

    /// The scenario called `name`.
    pub fn parse(name: &str) -> Option<Scenario> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, s)| *s == self)
            .map_or("?", |(n, _)| *n)
    }

    /// Whether the nodes run the projection while writers append.
    pub fn projects(self) -> bool {
        matches!(
            self,
            Scenario::Projections | Scenario::Archive | Scenario::Standby
        )
    }

    /// Whether the database has a hot standby the nodes read events from.
    pub fn reads_standby(self) -> bool {
        self == Scenario::Standby
    }

    /// The fault kinds it draws from (see [`schedule`](crate::harness::faults::schedule)).
    pub fn kinds(self) -> &'static [u32] {
        match self {
            Scenario::Chaos => &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
            Scenario::Crashes => &[0, 8],
            Scenario::Network => &[1, 2, 3, 4],
            Scenario::Pauses => &[5],
            Scenario::DbRestarts => &[6],
            Scenario::Locks => &[7],
            Scenario::Projections | Scenario::Archive => &[0, 1, 2, 3, 4, 5, 6, 8, 9],
            Scenario::Sessions => &[0, 6, 9],
            // Partition leases are not bound to sessions.
            Scenario::Ownership => &[0, 1, 2, 3, 4, 5, 6, 7, 8],
            Scenario::Operator => &[0, 1, 2, 3, 5, 8, 9],
            // Database restarts and lossy promotions alike.
            Scenario::Standby => &[0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 11, 12, 12],
        }
    }

    /// Whether the nodes' leases are bound to lease sessions (the hot/cold
    /// scenarios, as `projections run-loop` binds them by default).
    pub fn session_leases(self) -> bool {
        self != Scenario::Ownership
    }
}
