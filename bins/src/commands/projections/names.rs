//! Projection names given on the command line.

use anyhow::{anyhow, Result};
use rillflow_core::Identifier;

/// Refuses a name no projection can have, before the database is touched.
/// Names only ever reach SQL as bound values; the check gives a clear error
/// instead of an empty answer for a typo like `Orders`.
pub fn check(name: &str) -> Result<&str> {
    Identifier::parse(name).map_err(|e| anyhow!("invalid projection name: {e}"))?;
    Ok(name)
}
