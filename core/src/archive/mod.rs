//! Hot/cold archiving rules.

pub mod head;
pub mod month;
pub mod move_pass;
pub mod retention;
pub mod rules;
pub mod token_bucket;

pub use head::HeadFlags;
pub use month::{MonthError, PartitionMonth};
pub use move_pass::{BatchOutcome, BatchRequest, MovePass};
pub use retention::Retention;
pub use rules::{append_target, read_plan, AppendTarget, Backend, ReadPlan, StreamState};
pub use token_bucket::TokenBucket;
