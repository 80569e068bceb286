//! The hot/cold lease protocol: one node at a time runs projections.

pub mod config;
pub mod failover;
pub mod health;
pub mod machine;
pub mod outcome;
pub mod score_reasons;
pub mod time;
pub mod view;

pub use config::{LeaseConfig, LeaseConfigError};
pub use failover::{FailoverRules, PromoteRefusal, StepDown};
pub use health::{ClusterHealth, HealthRules, NodeHealth};
pub use machine::{Action, Input, NodeMachine, RequestFailed, RequestId};
pub use outcome::{AcquireOutcome, Grant, RenewOutcome};
pub use score_reasons::{deductions, Deduction};
pub use time::MonoTime;
pub use view::{ClusterTiming, ClusterView, LeaseSession, NodeRole, NodeView, PromoteRequest};
