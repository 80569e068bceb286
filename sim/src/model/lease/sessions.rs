//! The model's lease sessions (sql/0017): database sessions that hold an
//! exclusive advisory lock under a key, as a daemon's `PgLeaseSession` does.
//!
//! A session lives as long as its connection to the `db` host: it ends when
//! the connection ends on the database's side (the client's process died
//! and its socket closed, or the client closed it), when the database
//! restarts (every session ends), or when the database ends it
//! (`pg_terminate_backend`, a fault). A frozen or partitioned client keeps
//! its session: nothing reaches the server to end it.
//!
//! Keys are handed out from a counter that survives restarts, so a key is
//! never held by two sessions, not even one after the other: a lease bound
//! to the key of a session that ended stays free for good. (Postgres keys
//! are drawn at random; a collision there would only make a dead holder's
//! lease wait for its ttl.)

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::Notify;

/// The high half of every key, as in `PgLeaseSession` ("rfLS").
const KEY_PREFIX: i64 = 0x7266_4c53;

/// One open session.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Open {
    key: i64,
    node: String,
}

/// The lease sessions of the database.
#[derive(Clone, Default)]
pub struct LeaseSessions {
    drawn: u32,
    next_id: u64,
    open: BTreeMap<u64, Open>,
    /// Woken whenever a session ends, so waiters on its lock look again.
    ended: Arc<Notify>,
}

impl std::fmt::Debug for LeaseSessions {
    // The notifier has no state worth showing, and state fingerprints
    // (tests/model_check.rs) must not depend on it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseSessions")
            .field("drawn", &self.drawn)
            .field("open", &self.open)
            .finish()
    }
}

impl LeaseSessions {
    /// Opens a session for `node` and takes its lock under a fresh key:
    /// (session id, key).
    pub fn open(&mut self, node: &str) -> (u64, i64) {
        self.drawn += 1;
        self.next_id += 1;
        let key = (KEY_PREFIX << 32) | i64::from(self.drawn);
        self.open.insert(
            self.next_id,
            Open {
                key,
                node: node.to_owned(),
            },
        );
        (self.next_id, key)
    }

    /// Ends session `id` (its connection ended, or the server ended it);
    /// its lock goes with it. Returns the key it held, None if it had ended.
    pub fn end(&mut self, id: u64) -> Option<i64> {
        let gone = self.open.remove(&id)?;
        self.ended.notify_waiters();
        Some(gone.key)
    }

    /// Ends the session that holds `key` (`pg_terminate_backend` of the
    /// backend `pg_locks` names); false when none does.
    pub fn end_key(&mut self, key: i64) -> bool {
        let id = self
            .open
            .iter()
            .find(|(_, s)| s.key == key)
            .map(|(id, _)| *id);
        id.and_then(|id| self.end(id)).is_some()
    }

    /// Ends every session of `node` (`pg_terminate_backend` of its lease
    /// backends); returns their keys.
    pub fn end_node(&mut self, node: &str) -> Vec<i64> {
        let ids: Vec<u64> = self
            .open
            .iter()
            .filter(|(_, s)| s.node == node)
            .map(|(id, _)| *id)
            .collect();
        ids.into_iter().filter_map(|id| self.end(id)).collect()
    }

    /// Ends every session: the database restarted.
    pub fn end_all(&mut self) {
        if !self.open.is_empty() {
            self.open.clear();
            self.ended.notify_waiters();
        }
    }

    /// Whether session `id` is open.
    pub fn is_open(&self, id: u64) -> bool {
        self.open.contains_key(&id)
    }

    /// The key session `id` holds, while it is open.
    pub fn key_of(&self, id: u64) -> Option<i64> {
        self.open.get(&id).map(|s| s.key)
    }

    /// Whether some session holds the lock `key` (`rf_session_lock_held`).
    pub fn held(&self, key: i64) -> bool {
        self.open.values().any(|s| s.key == key)
    }

    /// Woken whenever a session ends. Take a `notified()` before looking,
    /// so an end between the look and the wait is not missed.
    pub fn ends(&self) -> Arc<Notify> {
        self.ended.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_never_reused_and_go_with_their_session() {
        let mut s = LeaseSessions::default();
        let (a, ka) = s.open("a");
        let (b, kb) = s.open("b");
        assert_ne!(ka, kb);
        assert_eq!(ka >> 32, KEY_PREFIX);
        assert!(s.held(ka) && s.held(kb));
        assert_eq!(s.end(a), Some(ka));
        assert_eq!(s.end(a), None, "ends once");
        assert!(!s.held(ka) && s.is_open(b));
        s.end_all();
        let (_, kc) = s.open("a");
        assert!(kc != ka && kc != kb, "a restart draws on");
    }

    #[test]
    fn ending_a_node_ends_only_its_sessions() {
        let mut s = LeaseSessions::default();
        let (_, ka1) = s.open("a");
        let (_, kb) = s.open("b");
        let (_, ka2) = s.open("a");
        assert_eq!(s.end_node("a"), vec![ka1, ka2]);
        assert!(s.held(kb) && !s.held(ka1) && !s.held(ka2));
    }
}
