//! Health and metrics of hot/cold clusters, served over HTTP.

pub mod metrics;
pub mod report;
pub mod server;

pub use server::{serve, HealthSource};
