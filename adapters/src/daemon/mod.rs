//! The hot/cold daemon's side effects: lease storage and the driver loop.

pub mod contract;
pub mod driver;
pub mod lease_store;
mod pg_lease_sql;
pub mod pg_lease_store;
pub mod processor;
pub mod release_notices;
pub mod session_timeouts;
pub mod write_gate;
pub mod write_probe;

pub use driver::{Driver, DriverError, Signal};
pub use lease_store::{FencedWrites, LeaseError, LeaseStore, NodeIdentity};
pub use pg_lease_store::{check_names, FenceError, PgLeaseStore};
pub use processor::{Idle, Processor};
pub use release_notices::{forward_releases, ReleaseNotices};
pub use session_timeouts::daemon_pool_config;
pub use write_gate::{Permit, TokioClock, WriteGate};
pub use write_probe::WriteProbe;
