//! `rillflow projections ...`

pub mod cluster_status;
pub mod demote;
mod health_source;
pub mod promote;
pub mod run_loop;
