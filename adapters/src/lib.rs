//! rillflow on PostgreSQL: the event store, migrations, connection pools and
//! the local throwaway clusters used by the CLI and the tests.

mod append_batch;
mod append_writer;
pub mod archive;
pub mod cluster_error;
pub mod cluster_settings;
pub mod daemon;
pub mod error;
pub mod event;
pub mod health;
pub mod local_cluster;
pub mod log_contract;
pub mod log_history;
pub mod migrate;
pub mod ownership;
pub mod pg_binaries;
pub mod pool;
pub mod projection;
pub mod replica;
pub mod secrets;
mod server_user;
pub mod store;
pub mod tenant;

pub use append_batch::AppendRequest;
pub use append_writer::{AppendWriter, Queued, WriterConfig};
pub use cluster_error::ClusterError;
pub use cluster_settings::ClusterSettings;
pub use error::StoreError;
pub use event::{AppendOptions, AppendResult, NewEvent, ReadAllBatch, RecordedEvent};
pub use local_cluster::LocalCluster;
pub use migrate::{Loss, MigrateError, Migrations};
pub use pool::{connect, connect_with, PoolConfig};
pub use store::{EventStore, PartitionRead};
