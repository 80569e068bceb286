//! The protections a run can be told to do without, to show that the
//! checks catch what each one prevents: a check that never fails proves
//! nothing. The names are those of `--without`.

use std::fmt;

use clap::ValueEnum;

/// A protection switched off for a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, ValueEnum)]
pub enum Without {
    /// The lease fence: writes commit whatever their epoch (LEASE-1).
    Fence,
    /// The idle-in-transaction timeout: the database never ends a frozen
    /// client's transaction, so its lock stalls failover (LEASE-3).
    IdleTimeout,
    /// The reader's horizon: batches ignore open appends (PROJ-2).
    Horizon,
    /// The refusal of an append that readers passed (RF007, PROJ-2).
    FloorCheck,
    /// The mover's single-transaction move: copy and delete in two
    /// (ARCH-1).
    AtomicMove,
    /// The partition lease fence: batches commit without checking their
    /// lease (PROJ-4).
    PartitionFence,
    /// The checkpoints a repartition carries: new partitions start at the
    /// lowest checkpoint (PROJ-1).
    Carry,
    /// Leases bound to the holder's session: a crashed node's lease waits
    /// for its ttl, while the checks still expect the tight bound (LEASE-3).
    SessionLeases,
    /// The standby's xmin horizon: standby reads pass transactions still
    /// open on the primary, as an in-progress list would (PROJ-2).
    StandbyXmin,
    /// The timeline's epoch floor: after a lossy promotion grants count on
    /// from the surviving row, and an epoch is granted twice (LEASE-1).
    EpochFloor,
}

impl fmt::Display for Without {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = self
            .to_possible_value()
            .expect("every protection has a name");
        f.write_str(value.get_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names the CLI, CI and the README have always used.
    #[test]
    fn protections_keep_their_names() {
        let names: Vec<String> = Without::value_variants()
            .iter()
            .map(|w| w.to_string())
            .collect();
        assert_eq!(
            names,
            [
                "fence",
                "idle-timeout",
                "horizon",
                "floor-check",
                "atomic-move",
                "partition-fence",
                "carry",
                "session-leases",
                "standby-xmin",
                "epoch-floor"
            ]
        );
    }
}
