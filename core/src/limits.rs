//! Bounds on what a caller may name things: event types and idempotency
//! keys are stored and printed, so they must be printable and of a sane
//! length. A refusal never repeats the value: it may be megabytes long or
//! carry terminal control sequences.

use std::fmt;

/// Longest event type, in bytes.
pub const MAX_EVENT_TYPE: usize = 256;
/// Longest idempotency key, in bytes.
pub const MAX_IDEMPOTENCY_KEY: usize = 512;

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Empty or only whitespace.
    #[error("{what} must not be empty")]
    Empty {
        /// What was named.
        what: What,
    },
    /// Longer than its bound.
    #[error("{what} is {len} bytes long; at most {max} are allowed")]
    TooLong {
        /// What was named.
        what: What,
        /// Its length in bytes.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// Holds a control character (a newline, an escape, NUL...).
    #[error("{what} holds a control character (U+{code:04X}) at byte {at}")]
    Control {
        /// What was named.
        what: What,
        /// The character's code point.
        code: u32,
        /// Its byte offset.
        at: usize,
    },
}

/// The kinds of names checked here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum What {
    /// An event's type.
    EventType,
    /// An append's idempotency key.
    IdempotencyKey,
}

impl fmt::Display for What {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            What::EventType => "the event type",
            What::IdempotencyKey => "the idempotency key",
        })
    }
}

/// Checks an event type.
pub fn event_type(name: &str) -> Result<(), NameError> {
    check(What::EventType, name, MAX_EVENT_TYPE)
}

/// Checks an idempotency key.
pub fn idempotency_key(key: &str) -> Result<(), NameError> {
    check(What::IdempotencyKey, key, MAX_IDEMPOTENCY_KEY)
}

fn check(what: What, value: &str, max: usize) -> Result<(), NameError> {
    if value.trim().is_empty() {
        return Err(NameError::Empty { what });
    }
    if value.len() > max {
        return Err(NameError::TooLong {
            what,
            len: value.len(),
            max,
        });
    }
    match value.char_indices().find(|(_, c)| c.is_control()) {
        Some((at, c)) => Err(NameError::Control {
            what,
            code: u32::from(c),
            at,
        }),
        None => Ok(()),
    }
}
