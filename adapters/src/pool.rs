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
    /// Connect options for `url` carrying this configuration's session
    /// settings, and a pinned `search_path`: [`BASE_SCHEMA`] unless the URL
    /// (its `options` parameter) or `PGOPTIONS` names one.
    pub fn connect_options(&self, url: &str) -> Result<PgConnectOptions, sqlx::Error> {
        let options = PgConnectOptions::from_str(url)?;
        // The server's default, `"$user", public`, would let a schema named
        // like the login role (a tenant's, say) silently stand in for the
        // base store.
        let chosen = options
            .get_options()
            .is_some_and(|o| o.contains("search_path"));
        let options = if chosen {
            options
        } else {
            options.options([("search_path", BASE_SCHEMA)])
        };
        Ok(self.with_settings(options))
    }

    /// Connect options for `url` with this configuration's session settings
    /// and `search_path` set to `schemas` (validated identifiers, comma
    /// separated), whatever the URL says.
    pub fn connect_options_on(
        &self,
        url: &str,
        schemas: &str,
    ) -> Result<PgConnectOptions, sqlx::Error> {
        let options = PgConnectOptions::from_str(url)?.options([("search_path", schemas)]);
        Ok(self.with_settings(options))
    }

    fn with_settings(&self, options: PgConnectOptions) -> PgConnectOptions {
        let ms = |d: Duration| d.as_millis().to_string();
        options.application_name(&self.application_name).options([
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
        ])
    }
}

/// The schema of the base store unless the connection URL names another
/// (`?options=-c%20search_path%3Dname`).
pub const BASE_SCHEMA: &str = "public";

/// The oldest PostgreSQL rillflow runs on (`server_version_num`): 13
/// brought the 64-bit transaction-id functions (`pg_current_xact_id`,
/// `pg_current_snapshot`, `pg_snapshot_xip`) that ordering and the read
/// horizon are built on.
pub const OLDEST_SERVER: u32 = 130_000;

/// Refuses a server older than [`OLDEST_SERVER`], naming its version. An
/// unknown version passes: servers report it at every connection, and one
/// that does not is left to the statements themselves.
pub fn check_server_version(version_num: Option<u32>) -> Result<(), String> {
    match version_num {
        Some(v) if v < OLDEST_SERVER => {
            // 120022 is 12.22; before 10, 90624 is 9.6.24.
            let version = if v >= 100_000 {
                format!("{}.{}", v / 10_000, v % 10_000)
            } else {
                format!("{}.{}.{}", v / 10_000, v / 100 % 100, v % 100)
            };
            Err(format!(
                "PostgreSQL {version} is not supported: rillflow needs PostgreSQL 13 or newer"
            ))
        }
        _ => Ok(()),
    }
}

/// Opens a pool to `url` and checks that the server answers and is recent
/// enough ([`check_server_version`]).
pub async fn connect(url: &str, config: &PoolConfig) -> Result<PgPool, sqlx::Error> {
    connect_with(config.connect_options(url)?, config).await
}

/// [`connect`] with connect options made by the caller (from `config`).
pub async fn connect_with(
    options: PgConnectOptions,
    config: &PoolConfig,
) -> Result<PgPool, sqlx::Error> {
    let pool = PgPoolOptions::new()
        .max_connections(config.max_connections)
        .acquire_timeout(config.acquire_timeout)
        .connect_with(options)
        .await?;
    // Once, on the connection the pool just opened: a pool talks to one
    // server. (Refusing in `after_connect` would have the pool retry until
    // its acquire timeout and report only that it timed out.)
    let version = pool.acquire().await?.server_version_num();
    check_server_version(version).map_err(|e| sqlx::Error::Configuration(e.into()))?;
    Ok(pool)
}

#[cfg(test)]
mod tests {
    use super::{check_server_version, PoolConfig};

    #[test]
    fn the_search_path_is_pinned_unless_the_url_names_one() {
        let config = PoolConfig::default();
        let options = |url: &str| {
            config
                .connect_options(url)
                .unwrap()
                .get_options()
                .unwrap_or_default()
                .to_owned()
        };
        let pinned = options("postgres://u@h/d");
        assert!(pinned.contains("-c search_path=public"), "{pinned}");
        let chosen = options("postgres://u@h/d?options=-c%20search_path%3Dledger");
        assert!(chosen.contains("search_path=ledger"), "{chosen}");
        assert!(!chosen.contains("search_path=public"), "{chosen}");
    }

    #[test]
    fn servers_before_13_are_refused_by_name() {
        assert_eq!(
            check_server_version(Some(120_022)).unwrap_err(),
            "PostgreSQL 12.22 is not supported: rillflow needs PostgreSQL 13 or newer"
        );
        assert_eq!(
            check_server_version(Some(90_624)).unwrap_err(),
            "PostgreSQL 9.6.24 is not supported: rillflow needs PostgreSQL 13 or newer"
        );
        for fine in [Some(130_000), Some(130_023), Some(180_004), None] {
            assert_eq!(check_server_version(fine), Ok(()));
        }
    }
}
