//! `rillflow projections ...`

pub mod cluster_status;
pub mod declared;
pub mod demote;
pub mod dlq_delete;
pub mod dlq_list;
pub mod dlq_requeue;
pub mod handler_role_create;
pub mod handler_role_list;
mod handler_session;
mod health_source;
pub mod list;
pub mod metrics;
mod names;
pub mod owners;
pub mod pause;
pub mod promote;
pub mod rebuild;
pub mod repartition;
pub mod reset_checkpoint;
pub mod resume;
mod run_auto;
pub mod run_loop;
pub mod run_once;
pub mod status;
