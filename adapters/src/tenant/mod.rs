//! Tenants: the registry in the base schema, and scoping a command to one.

mod error;
mod registry;
mod scope;

pub use error::TenantError;
pub use registry::{AddOutcome, RemoveOutcome, TenantInfo, TenantRegistry};
pub use scope::{schema_pool, TenantScope};
