//! Which peer's session a worker waits on, so that a dead worker is noticed
//! at once (sql/0018).
//!
//! Live workers whose registration names a session form a ring in name
//! order; each waits on the next one's session, the last on the first's.
//! Every such worker is then watched by exactly one other, so each death
//! wakes one worker, which tells the rest. Waiting on every peer would cost
//! each worker a connection per peer and wake all of them for one death;
//! waiting on nobody leaves the death to be found by the ttl.
//!
//! When a watcher dies together with the worker it watched, the watcher's
//! own watcher wakes, everyone looks, and the ring closes over both gaps:
//! the view it reads shows neither as live.

use std::collections::BTreeMap;

/// The session key `me` should wait on: that of the first worker after
/// `me` in name order among `sessions` (live workers with a session, by
/// name), wrapping around; None when no other worker has one.
pub fn session_to_watch(me: &str, sessions: &BTreeMap<String, i64>) -> Option<i64> {
    let after = sessions
        .range::<str, _>((std::ops::Bound::Excluded(me), std::ops::Bound::Unbounded))
        .next();
    let first = sessions.iter().find(|(name, _)| name.as_str() != me);
    after.or(first).map(|(_, key)| *key)
}
