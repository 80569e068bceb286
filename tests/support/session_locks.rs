//! Ending lease sessions (sql/0017, sql/0018) from outside, as an operator
//! or a dying process would: the tests of session-bound leases.

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
    let ended: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1, 5000)")
        .bind(pid)
        .fetch_one(pool)
        .await
        .expect("terminate the backend");
    assert!(ended, "backend {pid} ended");
    pid
}
