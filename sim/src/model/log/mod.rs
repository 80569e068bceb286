//! The event log as the database holds it: stream heads, rows in their
//! tiers, open appends, what the store decided step by step, the archive
//! operations over the tiers, and the hot/cold scenarios' projection with
//! its checkpoint.

pub mod archive_requests;
pub mod event_log;
pub mod events;
pub mod history;
pub mod move_scope;
pub mod stream_heads;
pub mod tiers;
