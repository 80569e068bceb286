//! One run of the archive mover over the archived streams, batch by batch.

use uuid::Uuid;

/// Where a pass stands: which streams the next batch may take.
///
/// A pass walks archived streams in stream id order. Each batch locks the
/// streams from `from` on that hold the next `batch_size` eligible events
/// and moves those events. Eligible means older than
/// the cutoff and at or below the last position that existed when the pass
/// began, so appends racing the pass cannot keep it running: every batch
/// either moves an event out of a finite set or moves `from` strictly
/// forward, and the pass ends when a batch finds no candidate.
///
/// Contract: while [`MovePass::next_batch`] returns a request, run it and
/// feed its outcome to [`MovePass::handle`]. A crash loses nothing: a new
/// pass starts from the beginning and finds only what is still hot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovePass {
    from: Option<Uuid>,
    batch_size: u32,
    done: bool,
    moved: u64,
    batches: u64,
}

/// The next batch to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchRequest {
    /// Lowest stream id to consider (inclusive); `None` is the start.
    pub from: Option<Uuid>,
    /// At most this many events are moved.
    pub max_events: u32,
}

/// What a batch did, as the database reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchOutcome {
    /// The streams the batch locked (none: the pass is over).
    pub locked: Vec<Uuid>,
    /// Events it moved.
    pub moved: u64,
    /// The stream of the last event moved, in (stream, version) order.
    pub last_moved_stream: Option<Uuid>,
}

impl MovePass {
    /// A pass moving at most `batch_size` (≥ 1) events per batch.
    pub fn new(batch_size: u32) -> Self {
        Self {
            from: None,
            batch_size: batch_size.max(1),
            done: false,
            moved: 0,
            batches: 0,
        }
    }

    /// The next batch, or `None` once the pass is over.
    pub fn next_batch(&self) -> Option<BatchRequest> {
        (!self.done).then_some(BatchRequest {
            from: self.from,
            max_events: self.batch_size,
        })
    }

    /// Feeds back what the last requested batch did.
    pub fn handle(&mut self, outcome: &BatchOutcome) {
        let Some(last_locked) = outcome.locked.iter().max().copied() else {
            self.done = true;
            return;
        };
        self.batches += 1;
        self.moved += outcome.moved;
        let full = outcome.moved >= u64::from(self.batch_size);
        self.from = match (full, outcome.last_moved_stream) {
            // The batch hit its limit: the last stream it touched may have
            // more, so the next batch starts there. It moved events, so the
            // pass still advances.
            (true, Some(stream)) => Some(stream),
            // Everything eligible in the locked streams is moved.
            _ => match last_locked.as_u128().checked_add(1) {
                Some(next) => Some(Uuid::from_u128(next)),
                None => {
                    self.done = true;
                    None
                }
            },
        };
    }

    /// Whether the pass is over.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Events moved so far.
    pub fn moved(&self) -> u64 {
        self.moved
    }

    /// Batches that locked at least one stream so far.
    pub fn batches(&self) -> u64 {
        self.batches
    }
}
