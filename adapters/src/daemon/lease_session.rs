//! The database session a daemon's lease is bound to (sql/0017).
//!
//! One connection of its own, outside the pool, on which the daemon holds an
//! exclusive session-level advisory lock under a key drawn at random when the
//! session opens. Grants, renewals and releases run on it, so a grant can
//! record the key and a renewal can check that it still runs on the session
//! that holds it. When the process dies the kernel closes the socket, the
//! backend exits, the lock goes with it, and the lease is free at once.
//!
//! A session that breaks is replaced by a new one with a new key: a lease
//! bound to the old key is not renewed on it (the renewal reports the lease
//! lost) and the node stands by, then competes again like everyone else.

use rand::Rng;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgConnection, PgPool, PgRow};
use sqlx::query::Query;
use sqlx::{Connection, Postgres};
use tokio::sync::{Mutex, MutexGuard};

/// The high half of every lease session key: "rfLS". The low half is drawn
/// at random. Advisory keys share one space per database; a foreign
/// application that happened to hold the same key would make our try-lock
/// fail, and we would draw again.
const KEY_PREFIX: i64 = 0x7266_4c53;

/// How many keys to try before giving up on a session lock.
const DRAWS: usize = 8;

struct Held {
    conn: PgConnection,
    key: i64,
    /// The server process of `conn`, which holds the lock.
    pid: i32,
}

/// A lease session: opened on first use, reopened after it breaks.
pub struct PgLeaseSession {
    options: PgConnectOptions,
    held: Mutex<Option<Held>>,
}

impl std::fmt::Debug for PgLeaseSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgLeaseSession").finish_non_exhaustive()
    }
}

/// Exclusive use of the open session until dropped.
struct SessionGuard<'a>(MutexGuard<'a, Option<Held>>);

impl SessionGuard<'_> {
    /// The session's connection.
    fn conn(&mut self) -> &mut PgConnection {
        &mut self.0.as_mut().expect("a guard holds an open session").conn
    }

    /// The key of the lock this session holds.
    fn key(&self) -> i64 {
        self.0.as_ref().expect("a guard holds an open session").key
    }

    /// The server process that holds it.
    fn pid(&self) -> i32 {
        self.0.as_ref().expect("a guard holds an open session").pid
    }

    /// Drops the session after `err` when the connection cannot be trusted
    /// any more (and says so); the next use opens a new one under a new key.
    fn after_error(mut self, err: &sqlx::Error) -> bool {
        let broken = breaks_session(err);
        if broken {
            tracing::warn!(error = %err, "the lease session broke; its leases are lost");
            *self.0 = None;
        }
        broken
    }
}

impl PgLeaseSession {
    /// A session on the server and with the settings (timeouts,
    /// search_path) of `pool`.
    pub fn new(pool: &PgPool) -> Self {
        PgLeaseSession {
            options: (*pool.connect_options()).clone(),
            held: Mutex::new(None),
        }
    }

    /// The open session, opening one (and taking its lock) when there is
    /// none.
    async fn open(&self) -> Result<SessionGuard<'_>, sqlx::Error> {
        let mut held = self.held.lock().await;
        if held.is_none() {
            let mut conn = PgConnection::connect_with(&self.options).await?;
            let (key, pid) = take_lock(&mut conn).await?;
            tracing::debug!(key, pid, "lease session opened");
            *held = Some(Held { conn, key, pid });
        }
        Ok(SessionGuard(held))
    }

    /// Runs the statement `make` builds for the session's key and server
    /// process id on the session and returns its rows. A session found
    /// broken is replaced once, under a new key, and the statement run again
    /// there: callers pass statements that are safe to repeat and that judge
    /// a lease bound to the old key as not theirs (a grant to ourselves again
    /// takes a new epoch; a renewal on a new session finds a bound lease
    /// lost, which is what the node must learn).
    ///
    /// The process id lets a statement check that it runs where the lock is
    /// held (`pg_backend_pid() = pid`, which a transaction pooler can break)
    /// without reading pg_locks, which takes every lock-manager partition:
    /// a worker renews each of its partitions every round.
    pub(crate) async fn fetch_all<'q>(
        &self,
        make: impl Fn(i64, i32) -> Query<'q, Postgres, PgArguments>,
    ) -> Result<Vec<PgRow>, sqlx::Error> {
        let mut retried = false;
        loop {
            let mut s = self.open().await?;
            let (key, pid) = (s.key(), s.pid());
            match make(key, pid).fetch_all(s.conn()).await {
                Err(e) => {
                    if s.after_error(&e) && !retried {
                        retried = true;
                        continue;
                    }
                    return Err(e);
                }
                ok => return ok,
            }
        }
    }

    /// The key of the open session's lock; None when no session is open.
    pub async fn key(&self) -> Option<i64> {
        self.held.lock().await.as_ref().map(|h| h.key)
    }

    /// [`fetch_all`](Self::fetch_all) of a statement that returns at most
    /// one row.
    pub(super) async fn fetch_optional<'q>(
        &self,
        query: impl Fn(i64) -> Query<'q, Postgres, PgArguments>,
    ) -> Result<Option<PgRow>, sqlx::Error> {
        Ok(self
            .fetch_all(|key, _| query(key))
            .await?
            .into_iter()
            .next())
    }

    /// Closes the session, which frees its lock at once (a clean stop):
    /// peers waiting on it learn now, not when the process exits.
    pub async fn close(&self) {
        if let Some(held) = self.held.lock().await.take() {
            let _ = held.conn.close().await;
        }
    }

    /// Opens the session now if it is not open.
    pub async fn connect(&self) -> Result<(), sqlx::Error> {
        self.open().await.map(drop)
    }
}

/// Takes an exclusive session lock under a fresh random key; the key and
/// the server process that holds it.
async fn take_lock(conn: &mut PgConnection) -> Result<(i64, i32), sqlx::Error> {
    for _ in 0..DRAWS {
        let low: u32 = rand::rng().random();
        let key = (KEY_PREFIX << 32) | i64::from(low);
        let (taken, pid): (bool, i32) =
            sqlx::query_as("SELECT pg_try_advisory_lock($1), pg_backend_pid()")
                .bind(key)
                .fetch_one(&mut *conn)
                .await?;
        if taken {
            return Ok((key, pid));
        }
    }
    Err(sqlx::Error::Protocol(
        "no free advisory lock key for the lease session".to_owned(),
    ))
}

/// Whether the connection is gone or unusable after `err`: anything but an
/// error the server reported on a live session, and the server's own
/// "terminating connection" errors.
fn breaks_session(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|code| code.starts_with("57P") || code.starts_with("08")),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_carry_the_prefix_in_their_high_half() {
        let key = (KEY_PREFIX << 32) | i64::from(u32::MAX);
        assert_eq!(key >> 32, KEY_PREFIX);
        assert_eq!(key & 0xffff_ffff, i64::from(u32::MAX));
        assert!(key > 0);
    }

    #[test]
    fn only_broken_connections_drop_the_session() {
        assert!(breaks_session(&sqlx::Error::PoolTimedOut));
        assert!(breaks_session(&sqlx::Error::Io(std::io::Error::other(
            "reset"
        ))));
    }
}
