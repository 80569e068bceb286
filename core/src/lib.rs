//! Pure rules of rillflow.
//!
//! Nothing in this crate performs I/O, reads a clock or draws entropy: every
//! result is a function of the arguments. The adapters crate binds these rules
//! to PostgreSQL; the simulation binds them to a model of it.

pub mod archive;
pub mod batch_replay;
pub mod cursor;
pub mod expected_version;
pub mod ident;
pub mod lease;
pub mod limits;
pub mod log_history;
pub mod ownership;
pub mod partition;
pub mod projection;
pub mod retry_policy;
pub mod tenant;

pub use batch_replay::{BatchReplay, ReplayStep};
pub use cursor::GlobalCursor;
pub use expected_version::{ExpectedVersion, ParseExpectedVersionError, VersionConflict};
pub use ident::{Identifier, IdentifierError};
pub use log_history::{LogToken, TokenError};
pub use partition::{partition_hash, partition_of, PartitionSpec, PartitionSpecError};
pub use retry_policy::{Exhausted, FailureDecision, RetryPolicy};
