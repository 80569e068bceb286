//! How long events have been held back by an open transaction, for the
//! workers' wait before they look again (`WorkerTiming::held_back_wait`).

use std::time::Duration;

use tokio::time::Instant;

/// How long the current hold has lasted: events held back round after
/// round with nothing applied in between.
#[derive(Debug, Default)]
pub(crate) struct Hold {
    since: Option<Instant>,
}

impl Hold {
    /// After a round of batches at `now`: how long events have been held
    /// back, or None when nothing is (a round that applied events ends a
    /// hold, so the next one is timed from its own start).
    pub(crate) fn after_round(&mut self, now: Instant, busy: bool, held: bool) -> Option<Duration> {
        if busy || !held {
            self.since = None;
            return None;
        }
        let since = *self.since.get_or_insert(now);
        Some(now.duration_since(since))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Hold;

    #[test]
    fn a_hold_is_timed_from_its_own_start() {
        let t0 = tokio::time::Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut hold = Hold::default();
        assert_eq!(hold.after_round(at(0), false, true), Some(Duration::ZERO));
        assert_eq!(
            hold.after_round(at(300), false, true),
            Some(Duration::from_millis(300))
        );
        // Events applied: that hold is over.
        assert_eq!(hold.after_round(at(400), true, true), None);
        assert_eq!(
            hold.after_round(at(5000), false, true),
            Some(Duration::ZERO)
        );
        assert_eq!(hold.after_round(at(5020), false, false), None);
        assert_eq!(
            hold.after_round(at(9000), false, true),
            Some(Duration::ZERO)
        );
    }
}
