//! The global read order of the event log.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A point in the global order: the writing transaction's id, then the
/// event's position.
///
/// Positions are handed out before commit, so by themselves they commit out of
/// order. Transaction ids below the reader's horizon (the oldest open
/// transaction that may still append, see `rf_read_horizon()`) are final, so
/// ordering by (tx_id, position) and reading only below that horizon never
/// passes an event that is still being committed (PROJ-2). The derived `Ord`
/// compares `tx_id` first, which is the order readers rely on.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct GlobalCursor {
    /// `xid8` of the transaction that wrote the event.
    pub tx_id: i64,
    /// Position from the global sequence.
    pub position: i64,
}

impl GlobalCursor {
    /// Before every event.
    pub const START: GlobalCursor = GlobalCursor {
        tx_id: 0,
        position: 0,
    };

    /// A cursor at an event.
    pub fn new(tx_id: i64, position: i64) -> Self {
        GlobalCursor { tx_id, position }
    }
}

impl fmt::Display for GlobalCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.tx_id, self.position)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_by_transaction_then_position() {
        // A late-committing transaction with a low position sorts after an
        // earlier transaction's higher position.
        let early_tx = GlobalCursor::new(10, 7);
        let late_tx = GlobalCursor::new(11, 3);
        assert!(early_tx < late_tx);
        assert!(GlobalCursor::new(10, 3) < GlobalCursor::new(10, 4));
        assert!(GlobalCursor::START < GlobalCursor::new(1, 1));
    }
}
