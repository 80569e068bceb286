//! Health and metrics of hot/cold clusters and projections, served over HTTP.

pub mod metrics;
pub mod projection_metrics;
pub mod report;
pub mod server;

pub use server::{serve, HealthSource};
