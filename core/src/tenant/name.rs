//! A tenant's name: an identifier that may also name its schema.

use std::fmt;

use crate::ident::{Identifier, IdentifierError};

/// A validated tenant name (SEC-1). A schema tenant's schema carries this
/// name, so it follows the identifier rules and may not shadow the schemas
/// every database already has.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TenantName(Identifier);

/// Why a tenant name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantNameError {
    /// Not an identifier.
    #[error("invalid tenant name: {0}")]
    Identifier(#[from] IdentifierError),
    /// A schema Postgres or the base store already uses.
    #[error("invalid tenant name: {0:?} is a reserved schema name")]
    Reserved(String),
}

/// Schemas that exist in every database (or hold the base store), so a
/// tenant named after one would share or clobber them.
const RESERVED: &[&str] = &["public", "information_schema"];

impl TenantName {
    /// Validates `name`.
    pub fn parse(name: &str) -> Result<Self, TenantNameError> {
        let id = Identifier::parse(name)?;
        if RESERVED.contains(&id.as_str()) {
            return Err(TenantNameError::Reserved(name.to_owned()));
        }
        Ok(Self(id))
    }

    /// The bare name, for binding as a value.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The name as a quoted SQL identifier (the tenant's schema).
    pub fn schema(&self) -> &Identifier {
        &self.0
    }
}

impl fmt::Display for TenantName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for TenantName {
    type Err = TenantNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}
