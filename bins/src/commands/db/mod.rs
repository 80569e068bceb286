//! `rillflow db ...`

pub mod start;
pub mod stop;
pub mod url;
