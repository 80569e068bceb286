//! The hot/cold daemon's side effects: lease storage and the driver loop.

pub mod contract;
pub mod contract_sessions;
pub mod driver;
pub mod history_watch;
pub mod lease_session;
pub mod lease_store;
pub mod operator;
mod pg_lease_rows;
mod pg_lease_sql;
pub mod pg_lease_store;
pub mod pg_session_watch;
pub mod processor;
pub mod release_notices;
pub mod session_timeouts;
pub mod session_watch;
pub mod write_gate;
pub mod write_probe;

pub use driver::{Driver, DriverError, Signal};
pub use history_watch::HistoryWatch;
pub use lease_session::PgLeaseSession;
pub use lease_store::{FencedWrites, LeaseError, LeaseStore, NodeIdentity};
pub use operator::{ClusterAdmin, OperatorError};
pub use pg_lease_store::{check_names, FenceError, PgLeaseStore};
pub use pg_session_watch::PgSessionWatch;
pub use processor::{Idle, Processor};
pub use release_notices::{forward_releases, ReleaseNotices};
pub use session_timeouts::daemon_pool_config;
pub use session_watch::{watch_leader_sessions, watch_sessions, SessionWatch};
pub use write_gate::{Permit, TokioClock, WriteGate};
pub use write_probe::WriteProbe;
