//! Health and metrics of hot/cold clusters, projections and archiving,
//! served over HTTP.

pub mod archive_metrics;
pub mod diag;
pub mod metrics;
pub mod projection_metrics;
pub mod report;
pub mod server;

pub use server::{serve, DiagAccess, HealthSource};
