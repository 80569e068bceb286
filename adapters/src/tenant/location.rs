//! Where a database tenant's store is: its URL as the registry keeps it,
//! and the pool a command opens on it.
//!
//! The registry never holds a password. A URL that carries one is refused,
//! and the password is taken, when the tenant is reached, from the
//! environment of the process that reaches it: `RILLFLOW_TENANT_<NAME>_PASSWORD`
//! first, else what libpq clients read (`PGPASSWORD`, then the pgpass file
//! named by `PGPASSFILE` or `~/.pgpass`, matched on host, port, database
//! and user).

use std::fmt;
use std::str::FromStr;

use rillflow_core::tenant::TenantName;
use sqlx::postgres::PgConnectOptions;
use sqlx::PgPool;

use super::TenantError;
use crate::pool::{connect_with, PoolConfig};
use crate::secrets::redact_secrets;

/// A checked `postgres://` URL without a password: safe to store and print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantUrl(String);

/// Why a tenant URL was refused. No message quotes the URL, which may carry
/// the very password it is refused for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantUrlError {
    /// Not a URL, or not one for PostgreSQL.
    #[error("the tenant URL is not a postgres:// URL")]
    NotPostgres,
    /// It names no database, and a connection would land in whatever
    /// database is named like the login role.
    #[error("the tenant URL names no database (postgres://user@host:port/DATABASE)")]
    NoDatabase,
    /// It carries a password, which the registry never stores.
    #[error("the tenant URL carries a password, which rillflow never stores; leave it out and set {variable}, PGPASSWORD or a pgpass entry instead")]
    Password {
        /// The environment variable the tenant's password can come from.
        variable: String,
    },
    /// The driver refused it (a bad port, sslmode, ...).
    #[error("the tenant URL is not usable: {0}")]
    Invalid(String),
}

/// Query parameters whose value is a secret.
const SECRET_PARAMS: &[&str] = &["password", "sslpassword"];

impl TenantUrl {
    /// Checks `text` as `name`'s URL.
    pub fn parse(name: &TenantName, text: &str) -> Result<Self, TenantUrlError> {
        let url = url::Url::parse(text).map_err(|_| TenantUrlError::NotPostgres)?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err(TenantUrlError::NotPostgres);
        }
        let secret_param = url
            .query_pairs()
            .any(|(k, _)| SECRET_PARAMS.iter().any(|s| k.eq_ignore_ascii_case(s)));
        if url.password().is_some() || userinfo_has_password(text) || secret_param {
            return Err(TenantUrlError::Password {
                variable: password_variable(name),
            });
        }
        let no_database = url.path().trim_start_matches('/').is_empty()
            && !url.query_pairs().any(|(k, _)| k == "dbname");
        if no_database {
            return Err(TenantUrlError::NoDatabase);
        }
        // The driver's own checks (port, sslmode, ...); its messages may
        // quote parts of the URL, which holds no secret by now.
        PgConnectOptions::from_str(text)
            .map_err(|e| TenantUrlError::Invalid(redact_secrets(&e.to_string())))?;
        Ok(Self(text.to_owned()))
    }

    /// The URL as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Holds no password by construction; redacted anyway, since a row
        // could have been written by hand before the table's CHECK existed.
        f.write_str(&redact_secrets(&self.0))
    }
}

/// Whether the URL's userinfo has a `:` (a password, even an empty one):
/// the rule sql/0021's CHECK applies to the stored text.
fn userinfo_has_password(text: &str) -> bool {
    let Some((_, rest)) = text.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    authority
        .rsplit_once('@')
        .is_some_and(|(userinfo, _)| userinfo.contains(':'))
}

/// The environment variable `name`'s password is read from:
/// `RILLFLOW_TENANT_<NAME>_PASSWORD` (tenant names are lowercase letters,
/// digits and `_`, so the result is a valid variable name).
pub fn password_variable(name: &TenantName) -> String {
    format!(
        "RILLFLOW_TENANT_{}_PASSWORD",
        name.as_str().to_ascii_uppercase()
    )
}

/// Connect options for `name`'s store at `url`: the session settings of
/// `config` (the daemon's lease-derived timeouts included), the
/// `search_path` pinned to `public` unless the URL's `options` name a
/// schema (as for the base store: the server's default `"$user", public`
/// would let a schema named like the login role stand in for the store),
/// and the password from the environment.
pub fn tenant_connect_options(
    name: &TenantName,
    url: &TenantUrl,
    config: &PoolConfig,
) -> Result<PgConnectOptions, sqlx::Error> {
    let options = config.connect_options(url.as_str())?;
    Ok(match std::env::var(password_variable(name)) {
        Ok(password) if !password.is_empty() => options.password(&password),
        _ => options,
    })
}

/// A pool on `name`'s store at `url`, sized and timed like the base pool
/// (`config`). Failing to connect names the tenant and its URL (never a
/// password), so one tenant's server being down reads as exactly that.
pub async fn database_pool(
    name: &TenantName,
    url: &TenantUrl,
    config: &PoolConfig,
) -> Result<PgPool, TenantError> {
    let unreachable = |source: sqlx::Error| TenantError::Unreachable {
        tenant: name.to_string(),
        url: url.to_string(),
        reason: redact_secrets(&source.to_string()),
    };
    let options = tenant_connect_options(name, url, config).map_err(unreachable)?;
    connect_with(options, config).await.map_err(unreachable)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<TenantUrl, TenantUrlError> {
        TenantUrl::parse(&TenantName::parse("acme").unwrap(), text)
    }

    #[test]
    fn urls_with_a_password_are_refused_without_quoting_it() {
        for text in [
            "postgres://app:s3cret@db:5432/acme",
            "postgres://app:@db/acme",
            "postgresql://app@db/acme?password=s3cret",
            "postgres://app@db/acme?sslmode=require&PASSWORD=s3cret",
            "postgres://app@db/acme?sslpassword=s3cret",
        ] {
            let err = parse(text).unwrap_err();
            assert_eq!(
                err,
                TenantUrlError::Password {
                    variable: "RILLFLOW_TENANT_ACME_PASSWORD".into()
                },
                "{text}"
            );
            assert!(!err.to_string().contains("s3cret"));
        }
    }

    #[test]
    fn other_bad_urls_are_refused() {
        assert_eq!(parse("db:5432/acme"), Err(TenantUrlError::NotPostgres));
        assert_eq!(
            parse("mysql://app@db/acme"),
            Err(TenantUrlError::NotPostgres)
        );
        assert_eq!(
            parse("host=db dbname=acme"),
            Err(TenantUrlError::NotPostgres)
        );
        assert_eq!(
            parse("postgres://app@db:5432"),
            Err(TenantUrlError::NoDatabase)
        );
        assert!(matches!(
            parse("postgres://app@db/acme?sslmode=sometimes"),
            Err(TenantUrlError::Invalid(_))
        ));
    }

    #[test]
    fn good_urls_are_kept_as_given() {
        for text in [
            "postgres://app@db:5432/acme",
            "postgresql://app@[::1]:5433/acme?sslmode=require",
            "postgres://app@db/acme?options=-c%20search_path%3Dledger",
            "postgres://db/?dbname=acme&user=app",
        ] {
            assert_eq!(parse(text).unwrap().as_str(), text);
        }
    }
}
