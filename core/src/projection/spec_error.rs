//! The error of a projections file.

/// What is wrong with a projections file, and where. Callers prefix the
/// file's path: `projections.toml: line 4, column 12: ...`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct SpecError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// What is wrong, lowercase, naming the projection and handler.
    pub message: String,
}
