//! The mover's rate limit (`archive move --max-events-per-sec`).

use std::time::Duration;

/// A token bucket that lets a caller go into debt: a batch takes all its
/// tokens at once, and the wait before it is how long the bucket needs to
/// refill the shortfall. The rate holds over any window longer than one
/// batch, and a batch larger than the burst is delayed rather than refused.
///
/// Contract: call [`TokenBucket::take`] with a non-decreasing `now` before
/// each batch, sleep for the returned duration, then run the batch.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenBucket {
    per_sec: f64,
    burst: f64,
    tokens: f64,
    last: Duration,
}

impl TokenBucket {
    /// A full bucket refilling at `per_sec` tokens a second, holding at most
    /// `burst` (at least one second's worth is sensible). `per_sec` must be
    /// positive.
    pub fn new(now: Duration, per_sec: f64, burst: f64) -> Self {
        assert!(per_sec > 0.0, "a token bucket needs a positive rate");
        let burst = burst.max(1.0);
        Self {
            per_sec,
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Takes `n` tokens at `now` and returns how long to wait before using
    /// them (zero when the bucket had enough).
    pub fn take(&mut self, now: Duration, n: u64) -> Duration {
        // A clock that steps back must not mint tokens.
        let elapsed = now.saturating_sub(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * self.per_sec).min(self.burst);
        self.tokens -= n as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            // Rounded up to the nanosecond: a wait rounded down ends a
            // fraction of a token early, and the rate is then exceeded.
            let nanos = (-self.tokens / self.per_sec * 1e9).ceil();
            Duration::from_nanos(nanos as u64)
        }
    }
}
