//! Tenancy: who a command acts for, and what each tenancy mode allows.
//!
//! Three modes share one registry (`rf_tenants` in the base schema):
//! * conjoined — the tenant's streams live in the shared tables, tagged with
//!   `rf_streams.tenant_id`; commands scoped to it see only its streams;
//! * schema — the tenant has a schema of its own holding the whole store,
//!   and a scoped command runs with that schema as its search path;
//! * database — the tenant has a database of its own, on this server or
//!   another, reached through the URL its registry row keeps.

mod mode;
mod name;
mod operation;

pub use mode::{TenancyMode, UnknownTenancyMode};
pub use name::{TenantName, TenantNameError};
pub use operation::{ScopeRefusal, TenantOperation};
