//! The processes of a run, one turmoil host each: daemon nodes (hot/cold),
//! projection workers (ownership), the applications that append, the
//! operators and the archive mover. Each runs production code where there
//! is some, over the stores in [`client`](crate::client).

pub mod archive;
pub mod cluster_operator;
pub mod node;
pub mod operator;
pub mod worker;
pub mod writer;
