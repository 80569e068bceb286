//! Declarative SQL projections: the file format and its named parameters.

pub mod placeholders;
pub mod spec;

pub use placeholders::{json_path_text, rewrite, ParamSource, PlaceholderError, Statement};
pub use spec::{OnError, ProjectionFile, ProjectionSpec, SpecError, VERSION_TOKEN};
