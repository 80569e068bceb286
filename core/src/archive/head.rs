//! A stream head's archive columns and how the archive operations change
//! them. The head (`rf_streams`) is the one authority on a stream's
//! lifecycle, whatever tier its events sit in; [`append_target`] takes the
//! [`StreamState`] these columns give.
//!
//! [`append_target`]: super::append_target

use super::{Retention, StreamState};

/// The archive columns of one stream head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HeadFlags {
    /// `archived_at` is set.
    pub archived: bool,
    /// `retention_class`.
    pub retention: Retention,
    /// `reactivated_at` is set.
    pub reactivated: bool,
}

impl HeadFlags {
    /// A stream as its first append creates it.
    pub const NEW: HeadFlags = HeadFlags {
        archived: false,
        retention: Retention::Hot,
        reactivated: false,
    };

    /// The lifecycle state these columns describe. Being archived now wins
    /// over an earlier reactivation: a stream marked again is archived.
    pub fn state(self) -> StreamState {
        match (self.archived, self.retention, self.reactivated) {
            (true, Retention::Cold, _) => StreamState::Cold,
            (true, Retention::Hot, _) => StreamState::Archived,
            (false, _, true) => StreamState::Reactivated,
            (false, _, false) => StreamState::Hot,
        }
    }

    /// After `archive mark`: archived; its events stay where they are until
    /// the mover takes them.
    #[must_use]
    pub fn mark(self) -> HeadFlags {
        HeadFlags {
            archived: true,
            ..self
        }
    }

    /// After `archive reactivate`: not archived and hot again, so new events
    /// land hot; events already moved stay cold.
    #[must_use]
    pub fn reactivate(self) -> HeadFlags {
        HeadFlags {
            archived: false,
            retention: Retention::Hot,
            reactivated: true,
        }
    }

    /// After a move batch took the last hot event of an archived stream.
    #[must_use]
    pub fn moved_cold(self) -> HeadFlags {
        HeadFlags {
            retention: Retention::Cold,
            ..self
        }
    }
}
