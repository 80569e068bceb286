//! How far a standby's replay is behind its primary.

use std::fmt;

use serde::Serialize;

/// A WAL position (an LSN) as bytes from the start of the WAL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct WalPosition(pub u64);

impl fmt::Display for WalPosition {
    /// Postgres's own notation, `HI/LO` in hex, as `pg_lsn` prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

/// A standby's replay lag, measured against the primary's current WAL
/// position.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ReplicaLag {
    /// WAL the primary has written that the standby has not replayed yet.
    pub bytes: u64,
    /// How old the newest replayed commit is, by the standby's clock, while
    /// anything is left to replay; 0 when caught up (an idle primary's
    /// newest commit may be old without the standby lagging at all).
    pub seconds: f64,
    /// Whether replay is paused (`pg_wal_replay_pause()`): the lag then
    /// only grows until an operator resumes it.
    pub paused: bool,
    /// False when the read server is not in recovery: it is the primary
    /// itself, and there is no lag.
    pub standby: bool,
}

impl ReplicaLag {
    /// No lag: reads go to the primary.
    pub const NONE: ReplicaLag = ReplicaLag {
        bytes: 0,
        seconds: 0.0,
        paused: false,
        standby: false,
    };
}

impl fmt::Display for ReplicaLag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.standby {
            return f.write_str("none (reads from a primary)");
        }
        write!(f, "{} bytes, {:.1} s", self.bytes, self.seconds)?;
        if self.paused {
            f.write_str(", replay paused")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{ReplicaLag, WalPosition};

    #[test]
    fn positions_print_as_pg_lsn_does() {
        assert_eq!(WalPosition(0).to_string(), "0/0");
        assert_eq!(WalPosition(0x1_6B37_4D48).to_string(), "1/6B374D48");
    }

    #[test]
    fn lag_says_when_there_is_no_standby() {
        assert_eq!(ReplicaLag::NONE.to_string(), "none (reads from a primary)");
        let lag = ReplicaLag {
            bytes: 8192,
            seconds: 1.25,
            paused: true,
            standby: true,
        };
        assert_eq!(lag.to_string(), "8192 bytes, 1.2 s, replay paused");
    }
}
