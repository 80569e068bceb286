//! Hot/cold archiving rules.

pub mod rules;

pub use rules::{append_target, read_plan, AppendTarget, Backend, ReadPlan, StreamState};
