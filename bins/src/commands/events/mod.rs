//! `rillflow events ...`

pub mod append;
mod append_file;
mod load_line;
pub mod read;
mod resume;
pub mod tail;
