//! Shared harness of rillflow's integration tests.
//!
//! Every test gets its own database, cloned from a migrated template, on the
//! server named by `DATABASE_URL`, in a container (`RILLFLOW_TEST_PG=docker`,
//! see [`test_pg`]), or else on one throwaway cluster per checkout under
//! `target/rillflow-test-pg` (started by whichever test comes first; stop it
//! with `rillflow db stop --dir target/rillflow-test-pg`).
//! The database is dropped when the handle is dropped, so parallel tests never
//! see each other and leave nothing behind.

pub mod built_bin;
pub mod chaos;
pub mod cli_runner;
pub mod cluster_watch;
pub mod counter;
pub mod http;
pub mod lease_fixtures;
pub mod process;
pub mod projection_file;
pub mod session_locks;
pub mod standby;
pub mod stream_counts;
pub mod tenancy;
pub mod test_db;
pub mod test_pg;

pub use built_bin::rillflow_bin;
pub use cli_runner::{incomplete_line, one_line_failure, CliRunner};
pub use cluster_watch::wait_for_view;
pub use counter::Counter;
pub use http::{free_port, http_get, http_get_with, wait_for_body};
pub use process::{fast_auto_args, fast_hotcold_args, Process};
pub use projection_file::projection_file;
pub use test_db::{migration_count, TestDb};
