//! [`SessionWatch`] on PostgreSQL: a share lock request on the leader's
//! session key, on a connection outside the pool (a wait would otherwise
//! hold a pooled connection for most of its life).

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool};
use sqlx::Connection;

use super::lease_store::LeaseError;
use super::session_watch::SessionWatch;

/// Waits on Postgres advisory locks.
#[derive(Debug, Clone)]
pub struct PgSessionWatch {
    options: PgConnectOptions,
}

impl PgSessionWatch {
    /// Waiters on the server and with the settings of `pool`: each wait
    /// gives up after the pool's `lock_timeout` (half a heartbeat for a
    /// daemon), so a changed target is picked up soon.
    pub fn new(pool: &PgPool) -> Self {
        PgSessionWatch {
            options: (*pool.connect_options()).clone(),
        }
    }
}

#[async_trait]
impl SessionWatch for PgSessionWatch {
    type Waiter = PgConnection;

    async fn open(&self) -> Result<PgConnection, LeaseError> {
        PgConnection::connect_with(&self.options)
            .await
            .map_err(|e| LeaseError::Unavailable(format!("cannot open a session watch: {e}")))
    }

    async fn wait_ended(&self, conn: &mut PgConnection, key: i64) -> Result<bool, LeaseError> {
        // Granted only once no session holds the lock exclusively; handed
        // back at once, so it never stands in anyone's way.
        let waited = sqlx::query("SELECT pg_advisory_lock_shared($1)")
            .bind(key)
            .execute(&mut *conn)
            .await;
        match waited {
            Ok(_) => {
                sqlx::query("SELECT pg_advisory_unlock_shared($1)")
                    .bind(key)
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| LeaseError::Unavailable(e.to_string()))?;
                Ok(true)
            }
            Err(e) => match e.as_database_error().and_then(|d| d.code()).as_deref() {
                // lock_timeout, or statement_timeout: still held.
                Some("55P03") | Some("57014") => Ok(false),
                _ => Err(LeaseError::Unavailable(e.to_string())),
            },
        }
    }
}
