//! What the database answered to lease requests.

use std::time::Duration;

/// A lease the database granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// The fencing epoch of this grant; every grant gets a larger one.
    pub epoch: u64,
    /// How long the lease is valid, measured by the database from the
    /// moment it executed the grant.
    pub valid_for: Duration,
}

/// Answer to an acquire request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcquireOutcome {
    /// This node is now the leader.
    Granted(Grant),
    /// Someone else holds a valid lease (or its grace period runs).
    Denied,
}

/// Answer to a renew request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenewOutcome {
    /// The lease now runs for `valid_for` from when the database executed it.
    Renewed {
        /// Validity from the database's execution of the renewal.
        valid_for: Duration,
    },
    /// The lease expired or was taken over; this node is no longer leader.
    Lost,
}
