//! Monotonic time as core sees it: a duration since an origin the caller
//! picks. Core never reads a clock; adapters turn their clock's instants
//! into `MonoTime` and the simulation turns its virtual time into it.

use std::ops::{Add, Sub};
use std::time::Duration;

/// A point on one process's monotonic clock.
///
/// Values from different processes are not comparable: nothing in core
/// compares them (LEASE-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MonoTime(Duration);

impl MonoTime {
    /// The origin of the clock.
    pub const ZERO: MonoTime = MonoTime(Duration::ZERO);

    /// The point `since` after the origin.
    pub fn from_origin(since: Duration) -> Self {
        MonoTime(since)
    }

    /// Time since the origin.
    pub fn since_origin(self) -> Duration {
        self.0
    }

    /// `self - earlier`, or zero when `earlier` is later.
    pub fn saturating_since(self, earlier: MonoTime) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}

impl Add<Duration> for MonoTime {
    type Output = MonoTime;
    fn add(self, d: Duration) -> MonoTime {
        MonoTime(self.0 + d)
    }
}

impl Sub<Duration> for MonoTime {
    type Output = MonoTime;
    fn sub(self, d: Duration) -> MonoTime {
        MonoTime(self.0.saturating_sub(d))
    }
}
