//! Dynamic partition ownership on PostgreSQL: worker registration and
//! per-partition fenced leases. The fair-share rule is
//! `rillflow_core::ownership`.

mod store;

pub use store::{OwnershipError, OwnershipView, PgOwnershipStore};
