//! The hot/cold lease protocol: one node at a time runs projections.

pub mod config;
pub mod outcome;
pub mod time;
pub mod view;

pub use config::{LeaseConfig, LeaseConfigError};
pub use outcome::{AcquireOutcome, Grant, RenewOutcome};
pub use time::MonoTime;
pub use view::{ClusterView, NodeRole, NodeView, PromoteRequest};
