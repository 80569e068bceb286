//! Names that reach SQL as identifiers (schemas, tenants, clusters).

use std::fmt;

/// A validated SQL identifier: 1–63 bytes of lowercase ASCII letters, digits
/// and `_`, starting with a letter or `_`. Values never travel this way (they
/// are bound); only names that SQL cannot bind do.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Identifier(String);

/// A name that cannot be used as an identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentifierError {
    /// The name was empty.
    #[error("identifier is empty")]
    Empty,
    /// Postgres truncates identifiers past 63 bytes; two names would collide.
    /// (The name itself is not kept: it may be any length.)
    #[error("identifier is {0} bytes long; at most 63 are allowed")]
    TooLong(usize),
    /// Only `[a-z_][a-z0-9_]*` is accepted.
    #[error("identifier {0:?} may only contain lowercase letters, digits and '_', and must not start with a digit")]
    BadCharacter(String),
    /// Names starting with `pg_` are reserved by Postgres.
    #[error("identifier {0:?} uses the reserved prefix pg_")]
    Reserved(String),
}

impl Identifier {
    /// Validates `name`.
    pub fn parse(name: &str) -> Result<Self, IdentifierError> {
        if name.is_empty() {
            return Err(IdentifierError::Empty);
        }
        if name.len() > 63 {
            return Err(IdentifierError::TooLong(name.len()));
        }
        let mut chars = name.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
        let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !first_ok || !rest_ok {
            return Err(IdentifierError::BadCharacter(name.to_owned()));
        }
        if name.starts_with("pg_") {
            return Err(IdentifierError::Reserved(name.to_owned()));
        }
        Ok(Identifier(name.to_owned()))
    }

    /// The bare name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name double-quoted for SQL. Validation already excludes quotes;
    /// quoting keeps keywords such as `user` usable.
    pub fn quoted(&self) -> String {
        format!("\"{}\"", self.0)
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_and_rejects() {
        assert_eq!(
            Identifier::parse("tenant_1").unwrap().quoted(),
            "\"tenant_1\""
        );
        assert_eq!(Identifier::parse("user").unwrap().quoted(), "\"user\"");
        assert_eq!(Identifier::parse(""), Err(IdentifierError::Empty));
        assert!(matches!(
            Identifier::parse("1abc"),
            Err(IdentifierError::BadCharacter(_))
        ));
        assert!(matches!(
            Identifier::parse("a\"; drop"),
            Err(IdentifierError::BadCharacter(_))
        ));
        assert!(matches!(
            Identifier::parse("Tenant"),
            Err(IdentifierError::BadCharacter(_))
        ));
        assert!(matches!(
            Identifier::parse("pg_catalog"),
            Err(IdentifierError::Reserved(_))
        ));
        assert!(matches!(
            Identifier::parse(&"a".repeat(64)),
            Err(IdentifierError::TooLong(_))
        ));
    }

    proptest! {
        #[test]
        fn accepted_names_never_need_escaping(name in "\\PC{0,70}") {
            if let Ok(id) = Identifier::parse(&name) {
                prop_assert!(!id.quoted()[1..id.quoted().len() - 1].contains('"'));
                prop_assert!(id.as_str().len() <= 63);
            }
        }
    }
}
