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
//! the view it reads shows neither as live. A worker can also die before
//! its watcher has seen it (within milliseconds of joining, or while the
//! watcher's waiter opens a connection): then the worker that would have
//! watched it, [`watcher_of`], finds it dead in a view and tells the
//! others; views list workers whose session ended within their ttl.

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

/// The worker that watches (or would watch) `target` among `sessions` (live
/// workers with a session, by name): the last one before `target` in name
/// order, wrapping around; never `target` itself.
pub fn watcher_of<'a>(target: &str, sessions: &'a BTreeMap<String, i64>) -> Option<&'a str> {
    let before = sessions
        .range::<str, _>((
            std::ops::Bound::Unbounded,
            std::ops::Bound::Excluded(target),
        ))
        .next_back();
    let last = sessions
        .iter()
        .rev()
        .find(|(name, _)| name.as_str() != target);
    before.or(last).map(|(name, _)| name.as_str())
}
