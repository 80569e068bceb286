//! Where a partition's checkpoint goes after a read: the one rule the
//! projection runner and the simulation's model of it both follow.

use crate::GlobalCursor;

/// Where a partition's checkpoint may go after a read of at most `limit`
/// events (the batch size).
///
/// A partition read returns the partition's next events below the read's
/// horizon and `passed`: the furthest event of any partition below that
/// same statement's horizon. The checkpoint never goes beyond `passed`, so
/// it never passes a transaction that is still open; that holds only when
/// `passed` comes from the same statement as the events.
///
/// Two rules, both in [`CheckpointPlacement::place`]:
/// - A read that came back short looked at everything up to `passed`, so
///   nothing of the partition lies between its last event and `passed`:
///   the checkpoint goes to `passed`, and the next read does not walk that
///   stretch again. A full batch proves nothing beyond its last event (the
///   limit cut the read there), so the checkpoint goes to that event.
/// - A read that found nothing moves the checkpoint only once `passed` is a
///   batch's worth of positions ahead. Every move is a committed write, and
///   an idle partition is polled often; moving in batch-sized steps keeps
///   its reads short however long the log grows without writing on every
///   poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointPlacement {
    limit: usize,
}

impl CheckpointPlacement {
    /// The placement for reads of at most `limit` events. A limit of 0
    /// counts as 1: a read asks for at least one event.
    pub fn new(limit: usize) -> Self {
        CheckpointPlacement {
            limit: limit.max(1),
        }
    }

    /// Most events a read asks for.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Where the checkpoint goes after a read of `read` events: `from` is
    /// the cursor of the last event read (the checkpoint when none was),
    /// `passed` how far the read looked. `from` itself when the checkpoint
    /// goes no further; it never goes backwards.
    pub fn place(
        &self,
        from: GlobalCursor,
        read: usize,
        passed: Option<GlobalCursor>,
    ) -> GlobalCursor {
        let Some(passed) = passed.filter(|p| *p > from) else {
            return from;
        };
        let short = read < self.limit;
        let moves = if read == 0 {
            // Positions are handed out before commit, so the distance in
            // positions only estimates how many events went by; that is
            // enough to decide when a write is worth it.
            let behind = passed.position.saturating_sub(from.position);
            behind >= i64::try_from(self.limit).unwrap_or(i64::MAX)
        } else {
            short
        };
        if moves {
            passed
        } else {
            from
        }
    }

    /// Where an idle partition's checkpoint goes after a read that found
    /// nothing from checkpoint `at`: Some when it moves (the batch commits
    /// the move), None when it stays (nothing to write).
    pub fn idle_move(
        &self,
        at: GlobalCursor,
        passed: Option<GlobalCursor>,
    ) -> Option<GlobalCursor> {
        let to = self.place(at, 0, passed);
        (to != at).then_some(to)
    }
}
