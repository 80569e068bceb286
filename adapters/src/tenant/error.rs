//! Errors of tenant registration and scoping.

use rillflow_core::tenant::{ScopeRefusal, TenancyMode};

use super::TenantUrlError;
use crate::MigrateError;

/// What can go wrong when adding or resolving a tenant.
#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    /// The name is not in the base schema's registry.
    #[error(
        "unknown tenant {0}; register it with `rillflow tenants add {0} --mode conjoined|schema|database`"
    )]
    Unknown(String),
    /// The tenant exists with the other mode; moving data between modes is
    /// not something a registration can do.
    #[error("tenant {name} is already registered as {existing}")]
    ModeConflict {
        /// The tenant.
        name: String,
        /// Its registered mode.
        existing: TenancyMode,
    },
    /// A schema tenant's schema name is taken by a schema that is not a
    /// rillflow store (it has tables but no migration history).
    #[error("schema {0} already exists and is not a rillflow store; pick another tenant name")]
    SchemaTaken(String),
    /// A schema tenant's name is already the name of something sessions
    /// resolve schemas by.
    #[error("tenant name {name} is also {taken_by}; pick another name for a schema tenant")]
    NameCollides {
        /// The tenant.
        name: String,
        /// What else has the name.
        taken_by: &'static str,
    },
    /// A tenant that still owns streams cannot be removed: its events are
    /// never deleted.
    #[error("tenant {name} owns {streams} streams; nothing removed (rillflow never deletes a tenant's events)")]
    HasStreams {
        /// The tenant.
        name: String,
        /// How many streams it owns.
        streams: i64,
    },
    /// `--drop-schema` given for a tenant without a schema of its own.
    #[error("tenant {0} is conjoined: it has no schema of its own to drop")]
    NoSchema(String),
    /// `--drop-schema` given for a database tenant: rillflow never drops a
    /// database, which may hold more than the tenant's store.
    #[error("tenant {0} keeps its store in a database of its own, which rillflow never drops; unregister it without --drop-schema")]
    KeepsDatabase(String),
    /// A database tenant registered without a URL.
    #[error("tenant {0}: --mode database needs --url")]
    NeedsUrl(String),
    /// The tenant's URL was refused.
    #[error("tenant {tenant}: {source}")]
    BadUrl {
        /// The tenant.
        tenant: String,
        /// Why.
        #[source]
        source: TenantUrlError,
    },
    /// A database tenant's server cannot be reached (or refused the
    /// login). The message names the tenant and its password-free URL.
    #[error("tenant {tenant}: cannot reach its database at {url}: {reason}")]
    Unreachable {
        /// The tenant.
        tenant: String,
        /// Its URL, without a password.
        url: String,
        /// The driver's words, passwords redacted.
        reason: String,
    },
    /// A database tenant's server failed a statement after the connection
    /// was made (it went away, or refused).
    #[error("tenant {tenant}: its database at {url} failed: {reason}")]
    Remote {
        /// The tenant.
        tenant: String,
        /// Its URL, without a password.
        url: String,
        /// The driver's words, passwords redacted.
        reason: String,
    },
    /// The tenant is registered at another URL: moving a store is not
    /// something a registration can do.
    #[error("tenant {name} is already registered at {registered}; remove it first to register another database")]
    UrlConflict {
        /// The tenant.
        name: String,
        /// Its registered URL.
        registered: String,
    },
    /// The URL leads to the base store itself, which would mix the
    /// tenant's streams with untenanted ones.
    #[error("tenant {0}: its URL leads to the base store itself; give it a database of its own")]
    IsBaseStore(String),
    /// The schema the URL's sessions land in holds tables that are not a
    /// rillflow store, or does not exist.
    #[error("tenant {tenant}: {problem} at {url}; give it a database of its own")]
    DatabaseTaken {
        /// The tenant.
        tenant: String,
        /// Its URL, without a password.
        url: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The operation cannot be scoped to this tenant.
    #[error(transparent)]
    Refused(#[from] ScopeRefusal),
    /// Migrating the tenant's schema failed.
    #[error("tenant {tenant}: {source}")]
    Migrate {
        /// The tenant.
        tenant: String,
        /// The failure.
        #[source]
        source: MigrateError,
    },
    /// The base schema predates tenancy.
    #[error("the base schema has no tenant registry; run `rillflow migrate` first")]
    RegistryMissing,
    /// Any other database failure.
    #[error("database error: {0}")]
    Database(sqlx::Error),
}

impl From<sqlx::Error> for TenantError {
    fn from(err: sqlx::Error) -> Self {
        let missing = err.as_database_error().is_some_and(|db| {
            db.code().as_deref() == Some("42P01") && db.message().contains("rf_tenants")
        });
        if missing {
            TenantError::RegistryMissing
        } else {
            TenantError::Database(err)
        }
    }
}
