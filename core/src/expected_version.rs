//! What a writer believes about a stream before appending to it.

use std::fmt;
use std::str::FromStr;

/// The optimistic-concurrency expectation of one append.
///
/// Stream versions start at 1; a stream that has never been written has
/// version 0, which is what [`ExpectedVersion::NoStream`] expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExpectedVersion {
    /// Append whatever the stream's version is.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream must already exist (version ≥ 1).
    Exists,
    /// The stream must be at exactly this version (0 means "does not exist").
    Exact(u64),
}

/// The expectation did not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("wrong expected version: expected {expected}, stream is at version {actual}")]
pub struct VersionConflict {
    /// What the writer expected.
    pub expected: ExpectedVersion,
    /// The stream's version when the append was checked.
    pub actual: u64,
}

/// Text that names no expectation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid expected version {0:?}: use a number, `any`, `no-stream` or `exists`")]
pub struct ParseExpectedVersionError(pub String);

impl ExpectedVersion {
    /// Checks the expectation against the stream's current version.
    pub fn check(self, actual: u64) -> Result<(), VersionConflict> {
        let holds = match self {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => actual == 0,
            ExpectedVersion::Exists => actual > 0,
            ExpectedVersion::Exact(n) => actual == n,
        };
        if holds {
            Ok(())
        } else {
            Err(VersionConflict {
                expected: self,
                actual,
            })
        }
    }

    /// The name `rf_append` uses for this kind of expectation.
    pub fn sql_kind(self) -> &'static str {
        match self {
            ExpectedVersion::Any => "any",
            ExpectedVersion::NoStream => "no_stream",
            ExpectedVersion::Exists => "exists",
            ExpectedVersion::Exact(_) => "exact",
        }
    }

    /// The version argument for `rf_append`, present only for exact expectations.
    pub fn sql_version(self) -> Option<u64> {
        match self {
            ExpectedVersion::Exact(n) => Some(n),
            _ => None,
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedVersion::Any => f.write_str("any"),
            ExpectedVersion::NoStream => f.write_str("no-stream"),
            ExpectedVersion::Exists => f.write_str("exists"),
            ExpectedVersion::Exact(n) => write!(f, "{n}"),
        }
    }
}

impl FromStr for ExpectedVersion {
    type Err = ParseExpectedVersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "any" => Ok(ExpectedVersion::Any),
            "no-stream" | "no_stream" => Ok(ExpectedVersion::NoStream),
            "exists" | "stream-exists" => Ok(ExpectedVersion::Exists),
            _ => s
                .parse::<u64>()
                .ok()
                // Versions are stored as bigint; larger numbers can never match.
                .filter(|n| *n <= i64::MAX as u64)
                .map(ExpectedVersion::Exact)
                .ok_or_else(|| ParseExpectedVersionError(s.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_follow_the_table() {
        let cases = [
            (ExpectedVersion::Any, 0, true),
            (ExpectedVersion::Any, 7, true),
            (ExpectedVersion::NoStream, 0, true),
            (ExpectedVersion::NoStream, 1, false),
            (ExpectedVersion::Exists, 0, false),
            (ExpectedVersion::Exists, 3, true),
            (ExpectedVersion::Exact(0), 0, true),
            (ExpectedVersion::Exact(2), 2, true),
            (ExpectedVersion::Exact(2), 3, false),
        ];
        for (expected, actual, holds) in cases {
            assert_eq!(
                expected.check(actual).is_ok(),
                holds,
                "{expected} at {actual}"
            );
        }
        assert_eq!(
            ExpectedVersion::Exact(2).check(5),
            Err(VersionConflict {
                expected: ExpectedVersion::Exact(2),
                actual: 5
            })
        );
    }

    #[test]
    fn parses_cli_spellings() {
        assert_eq!("any".parse(), Ok(ExpectedVersion::Any));
        assert_eq!("no-stream".parse(), Ok(ExpectedVersion::NoStream));
        assert_eq!("exists".parse(), Ok(ExpectedVersion::Exists));
        assert_eq!("12".parse(), Ok(ExpectedVersion::Exact(12)));
        assert!("-1".parse::<ExpectedVersion>().is_err());
        assert!("soon".parse::<ExpectedVersion>().is_err());
        assert!("18446744073709551615".parse::<ExpectedVersion>().is_err());
    }

    #[test]
    fn display_round_trips() {
        for v in [
            ExpectedVersion::Any,
            ExpectedVersion::NoStream,
            ExpectedVersion::Exists,
            ExpectedVersion::Exact(9),
        ] {
            assert_eq!(v.to_string().parse(), Ok(v));
        }
    }
}
