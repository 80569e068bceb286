//! Connection pools with the timeouts every rillflow session runs under.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

/// Pool size and the server-side timeouts set on every connection.
///
/// The timeouts keep one stuck peer from stalling everyone else: a statement
/// waiting on a row lock gives up after `lock_timeout`, and a session that
/// froze inside a transaction is cut off after `idle_in_transaction_timeout`,
/// which also releases its locks and lets readers' horizon move on.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Most connections the pool opens.
    pub max_connections: u32,
    /// How long to wait for a free connection or a new one.
    pub acquire_timeout: Duration,
    /// `statement_timeout`.
    pub statement_timeout: Duration,
    /// `lock_timeout`.
    pub lock_timeout: Duration,
    /// `idle_in_transaction_session_timeout`.
    pub idle_in_transaction_timeout: Duration,
    /// `application_name`, shown in `pg_stat_activity`.
    pub application_name: String,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(10),
            statement_timeout: Duration::from_secs(30),
            lock_timeout: Duration::from_secs(10),
            idle_in_transaction_timeout: Duration::from_secs(60),
            application_name: "rillflow".to_owned(),
        }
    }
}

impl PoolConfig {
    /// Connect options for `url` carrying this configuration's session settings.
    pub fn connect_options(&self, url: &str) -> Result<PgConnectOptions, sqlx::Error> {
        let ms = |d: Duration| d.as_millis().to_string();
        Ok(PgConnectOptions::from_str(url)?
            .application_name(&self.application_name)
            .options([
                ("statement_timeout", ms(self.statement_timeout)),
                ("lock_timeout", ms(self.lock_timeout)),
                (
                    "idle_in_transaction_session_timeout",
                    ms(self.idle_in_transaction_timeout),
                ),
                // Every statement here is short and indexed. The planner's
                // row guesses for status queries (generate_series, lateral
                // counts) can cross the JIT threshold, and compiling then
                // costs half a second, longer than a daemon's statement
                // timeout at a one-second heartbeat.
                ("jit", "off".to_owned()),
            ]))
    }
}

/// Opens a pool to `url` and checks that the server answers.
pub async fn connect(url: &str, config: &PoolConfig) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(config.max_connections)
        .acquire_timeout(config.acquire_timeout)
        .connect_with(config.connect_options(url)?)
        .await
}
