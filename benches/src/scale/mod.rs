//! The scale benchmark (`src/bin/scale.rs`): one log per size, loaded
//! through real appends, then appends, reads, catch-up, operator commands,
//! the daemon's endpoints and the mover measured against it.

pub mod load;
pub mod measure;
pub mod procs;
pub mod report;
pub mod size;
