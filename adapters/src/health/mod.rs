//! Health and metrics of hot/cold clusters, projections and archiving,
//! served over HTTP from a snapshot kept current in the background.

pub mod archive_metrics;
pub mod diag;
pub mod freshness_metrics;
pub mod metrics;
pub mod projection_metrics;
pub mod replies;
pub mod report;
pub mod server;
pub mod snapshot;
pub mod view;

#[cfg(test)]
mod server_tests;

pub use server::{serve, DiagAccess, HealthSource};
pub use snapshot::{HealthSnapshot, RefreshConfig};
