//! One view of the health snapshot: the last value read, when, and how the
//! newest attempt went.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::time::Instant;

/// What the refresher knows of one view (clusters, projections or the
/// archive counters). A failed or timed-out attempt keeps the last good
/// value: serving a slightly old figure is better than serving none, and
/// [`View::freshness`] says how old it is.
#[derive(Debug, Clone)]
pub struct View<T> {
    /// The last value read successfully, `None` until the first one.
    pub value: Option<T>,
    /// When `value` was read.
    pub read_at: Option<Instant>,
    /// Why the newest attempt failed; cleared by the next success.
    pub error: Option<String>,
    /// Attempts that failed or timed out since the refresher started.
    pub failures: u64,
    /// When the refresher started: a view never read counts its age from
    /// there, so it grows like a value that stopped being refreshed.
    pub started: Instant,
}

/// How fresh a view is at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Freshness {
    /// Age of the served value (of the refresher, when none was read yet).
    pub age: Duration,
    /// Older than the staleness bound, never read, or the newest attempt
    /// failed.
    pub stale: bool,
    /// The newest attempt's error, if it failed.
    pub error: Option<String>,
}

impl<T> View<T> {
    /// A view nothing was read into yet.
    pub fn new(started: Instant) -> Self {
        View {
            value: None,
            read_at: None,
            error: None,
            failures: 0,
            started,
        }
    }

    /// A successful read at `now`.
    pub fn record(&mut self, now: Instant, value: T) {
        self.value = Some(value);
        self.read_at = Some(now);
        self.error = None;
    }

    /// A failed or timed-out attempt: the value stays, marked by the error.
    pub fn fail(&mut self, error: String) {
        self.error = Some(error);
        self.failures += 1;
    }

    /// Freshness at `now`, with values older than `stale_after` stale.
    pub fn freshness(&self, now: Instant, stale_after: Duration) -> Freshness {
        let since = self.read_at.unwrap_or(self.started);
        let age = now.saturating_duration_since(since);
        Freshness {
            age,
            stale: self.read_at.is_none() || self.error.is_some() || age > stale_after,
            error: self.error.clone(),
        }
    }
}

impl Freshness {
    /// The view's entry in the health document's `freshness` section.
    pub fn to_json(&self) -> Value {
        json!({
            "age_ms": u64::try_from(self.age.as_millis()).unwrap_or(u64::MAX),
            "stale": self.stale,
            "error": self.error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_view_is_stale_until_read_after_a_failure_and_when_old() {
        let bound = Duration::from_secs(6);
        let mut view = View::<u32>::new(Instant::now());
        tokio::time::advance(Duration::from_secs(1)).await;
        let never = view.freshness(Instant::now(), bound);
        assert_eq!((never.age, never.stale), (Duration::from_secs(1), true));

        view.record(Instant::now(), 7);
        tokio::time::advance(Duration::from_secs(2)).await;
        let fresh = view.freshness(Instant::now(), bound);
        assert_eq!(
            fresh,
            Freshness {
                age: Duration::from_secs(2),
                stale: false,
                error: None
            }
        );

        view.fail("statement timeout".into());
        let failed = view.freshness(Instant::now(), bound);
        assert!(failed.stale);
        assert_eq!(failed.error.as_deref(), Some("statement timeout"));
        assert_eq!((view.value, view.failures), (Some(7), 1));

        view.record(Instant::now(), 8);
        assert!(!view.freshness(Instant::now(), bound).stale);
        tokio::time::advance(Duration::from_secs(7)).await;
        let old = view.freshness(Instant::now(), bound);
        assert!(old.stale && old.error.is_none(), "{old:?}");
    }
}
