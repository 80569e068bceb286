//! Declarative SQL projections: the projections file, its checks, and the
//! named parameters of handler SQL; and where a partition's checkpoint goes
//! after a read ([`CheckpointPlacement`]).
//!
//! Everything here is pure: the file's text goes in, a checked
//! [`ProjectionFile`] or a [`SpecError`] with a line and column comes out.
//! The adapters run the statements; [`json_path_text`] is what they bind for
//! a `:data.<path>` parameter.

mod batch_plan;
mod batch_statement;
mod checkpoint_placement;
mod file;
mod on_error;
mod param_source;
mod placeholders;
mod raw;
mod source;
mod spec;
mod spec_error;
mod sql_lex;
mod statement;

pub use batch_plan::{BatchFunction, BatchPlan};
pub use batch_statement::{
    array_type, compose, path_column, sql_type, BatchSqlError, BatchStatement, BATCH_COLUMNS,
};
pub use checkpoint_placement::CheckpointPlacement;
pub use file::ProjectionFile;
pub use on_error::{OnError, UnknownOnError};
pub use param_source::{json_path_text, ParamSource};
pub use placeholders::{scan, Placeholder, PlaceholderError};
pub use spec::{render_version, ProjectionSpec, VERSION_TOKEN};
pub use spec_error::SpecError;
pub use statement::{rewrite, Statement};
