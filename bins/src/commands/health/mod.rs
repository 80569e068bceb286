//! `rillflow health ...`

pub mod score;
