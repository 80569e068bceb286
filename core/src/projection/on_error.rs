//! What a projection does with an event it cannot handle.

use std::fmt;
use std::str::FromStr;

/// What happens to an event once its retries are used up. Written
/// `dead_letter` or `stop` in projection files and on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Park it in the dead-letter table and go on with the next event.
    DeadLetter,
    /// Pause the projection until an operator resumes it.
    Stop,
}

/// A word that is neither `dead_letter` nor `stop`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("on_error must be \"dead_letter\" or \"stop\", not {0:?}")]
pub struct UnknownOnError(pub String);

impl FromStr for OnError {
    type Err = UnknownOnError;

    fn from_str(s: &str) -> Result<Self, UnknownOnError> {
        match s {
            "dead_letter" => Ok(OnError::DeadLetter),
            "stop" => Ok(OnError::Stop),
            other => Err(UnknownOnError(other.to_owned())),
        }
    }
}

impl fmt::Display for OnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OnError::DeadLetter => "dead_letter",
            OnError::Stop => "stop",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_it_displays() {
        for policy in [OnError::DeadLetter, OnError::Stop] {
            assert_eq!(policy.to_string().parse(), Ok(policy));
        }
        assert_eq!(
            "Stop".parse::<OnError>(),
            Err(UnknownOnError("Stop".into()))
        );
    }
}
