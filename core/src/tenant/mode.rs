//! How a tenant's data is kept apart from the others'.

use std::fmt;
use std::str::FromStr;

/// The tenancy mode of one registered tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TenancyMode {
    /// Shared tables, streams tagged with the tenant.
    Conjoined,
    /// A schema of its own.
    Schema,
    /// A database of its own, possibly on another server; the registry
    /// row keeps its URL (never a password).
    Database,
}

/// A mode name that is not `conjoined`, `schema` or `database`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown tenancy mode {0:?}: expected conjoined, schema or database")]
pub struct UnknownTenancyMode(pub String);

impl TenancyMode {
    /// The name stored in `rf_tenants.mode`.
    pub fn as_str(self) -> &'static str {
        match self {
            TenancyMode::Conjoined => "conjoined",
            TenancyMode::Schema => "schema",
            TenancyMode::Database => "database",
        }
    }
}

impl FromStr for TenancyMode {
    type Err = UnknownTenancyMode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "conjoined" => Ok(TenancyMode::Conjoined),
            "schema" => Ok(TenancyMode::Schema),
            "database" => Ok(TenancyMode::Database),
            other => Err(UnknownTenancyMode(other.to_owned())),
        }
    }
}

impl fmt::Display for TenancyMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
