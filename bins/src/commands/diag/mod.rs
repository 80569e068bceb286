//! `rillflow diag ...`

pub mod bundle;
