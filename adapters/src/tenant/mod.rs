//! Tenants: the registry in the base schema, and scoping a command to one.
//! A database tenant's store is on a server of its own; [`database_pool`]
//! reaches it.

mod database_registry;
mod error;
mod location;
mod registry;
mod scope;

pub use error::TenantError;
pub use location::{
    database_pool, password_variable, tenant_connect_options, TenantUrl, TenantUrlError,
};
pub use registry::{AddOutcome, RemoveOutcome, TenantInfo, TenantRegistry};
pub use scope::{schema_pool, TenantScope};
