//! Ending lease sessions (sql/0017, sql/0018) from outside, as an operator
//! or a dying process would: the tests of session-bound leases.

use std::time::Duration;

use sqlx::PgPool;

/// The backend that holds the session lock `key` exclusively, if any.
pub async fn session_pid(pool: &PgPool, key: i64) -> Option<i32> {
    sqlx::query_scalar(
        "SELECT pid FROM pg_locks
          WHERE locktype = 'advisory' AND mode = 'ExclusiveLock' AND granted AND objsubid = 1
            AND classid = (($1::bigint >> 32) & 4294967295)::oid
            AND objid = ($1::bigint & 4294967295)::oid",
    )
    .bind(key)
    .fetch_optional(pool)
    .await
    .expect("read pg_locks")
}

/// Ends the backend that holds the session lock `key` and waits until it
/// is gone; returns its pid.
pub async fn end_session(pool: &PgPool, key: i64) -> i32 {
    let pid = session_pid(pool, key)
        .await
        .expect("a session holds the lease lock");
    terminate_backend(pool, pid).await;
    pid
}

/// `pg_terminate_backend(pid)`, then waits until the backend has exited
/// (its locks released). The wait is done here rather than with the
/// two-argument form, which PostgreSQL 13 lacks.
pub async fn terminate_backend(pool: &PgPool, pid: i32) {
    let signalled: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(pid)
        .fetch_one(pool)
        .await
        .expect("terminate the backend");
    assert!(signalled, "backend {pid} was signalled");
    // A backend exits within milliseconds of the signal unless it is stuck
    // in the kernel; five seconds is the bound the two-argument form used.
    for _ in 0..500 {
        let alive: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)")
                .bind(pid)
                .fetch_one(pool)
                .await
                .expect("read pg_stat_activity");
        if !alive {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("backend {pid} still runs 5 s after pg_terminate_backend");
}
