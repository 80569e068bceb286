//! Resuming the global log after a lossy failover: cursor tokens, whether
//! a reader's last event survived, and how far back it may safely rewind.
//!
//! # Why a position alone is not enough
//!
//! After PostgreSQL fails over to an asynchronous standby that had not
//! received the last commits, those commits are gone, and the positions and
//! transaction ids they held are handed out again to other events. A reader
//! that kept only a position resumes after whatever event now holds it and
//! silently skips the new events in between. A [`LogToken`] also holds the
//! event's id and transaction id, so the event can be recognised.
//!
//! # Why a surviving token is a safe resume point
//!
//! The read order is (transaction id, position), read only below the
//! horizon, so a reader that returned the event at key `C` had seen every
//! event with a lower key (PROJ-2). A promoted standby hands out transaction
//! ids from `N0` on, above every transaction whose commit it replayed; so
//! every event written after the failover sorts after every event that
//! survived it. If the token's event is still there with the same id and
//! transaction id, its transaction survived, every new event sorts after it,
//! and resuming after `C` skips nothing.
//!
//! # Where a diverged reader may resume
//!
//! Resuming after a key `K` skips nothing when every event now in the log
//! with a key at or below `K` is one the reader has seen: `K <= C`, and every
//! such event was written before the fork (its transaction id below `N0`).
//! The database does not say what `N0` was, so rillflow bounds it from
//! below with rows known to have been written before the fork: projection
//! checkpoints. A checkpoint's key is that of an event committed before the
//! checkpoint was written; if the checkpoint row was written before the fork
//! and survived, so did that event's transaction, whose id is therefore
//! below `N0`. Every event with a transaction id at or below it is then an
//! old one.
//!
//! A checkpoint written *after* the failover proves nothing of the kind: a
//! projection that went on on the new primary has a checkpoint among the new
//! events, possibly below the token's reissued transaction id. So every
//! checkpoint write records the WAL timeline it was made on (sql/0020), and
//! a token records the timeline it was read on. A checkpoint row also keeps
//! the key it held when its timeline last changed, so the proof from before
//! a failover outlives the projection's first batch after it. Timelines only grow along a
//! history, and a promotion starts a new one; when the token's timeline is
//! below the current one, a surviving checkpoint written on a timeline at
//! or below the token's was written before the history forked away from
//! the reader's. Any other case (unknown timelines, no failover in
//! between, a token from a later timeline than the server's) trusts no
//! checkpoint, and the reader rewinds to the start of the log: re-reading
//! is allowed, skipping is not.
//!
//! Timelines read during recovery (a standby) come from its last
//! restartpoint and may lag behind: a token then records an older timeline
//! than the one it was read on, which only trusts fewer checkpoints.
//!
//! What this cannot see: two standbys promoted from the same primary
//! without a shared WAL archive both choose the same timeline id (split
//! brain), and then timeline ids no longer name one history.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

use crate::GlobalCursor;

/// The prefix of a version-1 token.
const V1: &str = "rf1";

/// Where a reader of the global log stands: an event, recognisable after a
/// failover. Printed as `rf1.<position>.<tx_id>.<event id, 32 hex>.<timeline>`:
/// letters, digits and dots only, safe in a URL and a shell word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LogToken {
    /// The event's global position.
    pub position: i64,
    /// The id of the transaction that wrote it.
    pub tx_id: i64,
    /// The event's id.
    pub event_id: Uuid,
    /// The WAL timeline the reader was on (0: unknown). Never above the
    /// timeline the event was read on.
    pub timeline: u32,
}

impl LogToken {
    /// The event's place in the read order.
    pub fn cursor(&self) -> GlobalCursor {
        GlobalCursor::new(self.tx_id, self.position)
    }
}

impl fmt::Display for LogToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{V1}.{}.{}.{}.{}",
            self.position,
            self.tx_id,
            self.event_id.simple(),
            self.timeline
        )
    }
}

/// Why a token was refused. The messages never repeat the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not `rf<version>.…`, or a version this build does not know.
    #[error(
        "not a cursor token (expected rf1.POSITION.TX.EVENT.TIMELINE, as `events tail` prints it)"
    )]
    Unknown,
    /// The right version but a wrong part.
    #[error("cursor token is damaged: {0}")]
    Damaged(&'static str),
}

impl FromStr for LogToken {
    type Err = TokenError;

    fn from_str(s: &str) -> Result<Self, TokenError> {
        let mut parts = s.split('.');
        if parts.next() != Some(V1) {
            return Err(TokenError::Unknown);
        }
        let mut next = |what| parts.next().ok_or(TokenError::Damaged(what));
        let position = number(next("no position")?, "bad position")?;
        let tx_id = number(next("no transaction id")?, "bad transaction id")?;
        let id = next("no event id")?;
        if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(TokenError::Damaged("bad event id"));
        }
        let event_id = Uuid::try_parse(id).map_err(|_| TokenError::Damaged("bad event id"))?;
        let timeline = next("no timeline")?;
        let timeline = digits(timeline)
            .and_then(|t| t.parse::<u32>().ok())
            .ok_or(TokenError::Damaged("bad timeline"))?;
        if parts.next().is_some() {
            return Err(TokenError::Damaged("too many parts"));
        }
        if position < 1 || tx_id < 1 {
            return Err(TokenError::Damaged(
                "position and transaction id start at 1",
            ));
        }
        Ok(LogToken {
            position,
            tx_id,
            event_id,
            timeline,
        })
    }
}

/// `s` when it is a plain decimal number: no sign, no spaces.
fn digits(s: &str) -> Option<&str> {
    (!s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit())).then_some(s)
}

fn number(s: &str, bad: &'static str) -> Result<i64, TokenError> {
    digits(s)
        .and_then(|d| d.parse().ok())
        .ok_or(TokenError::Damaged(bad))
}

/// What the log holds now at a token's position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtPosition {
    /// No event.
    Nothing,
    /// An event, with its transaction id and id.
    Event {
        /// Its writer's transaction id.
        tx_id: i64,
        /// Its id.
        event_id: Uuid,
    },
}

/// Whether the token's event is still where the reader saw it: the same id
/// written by the same transaction. Then its transaction survived any
/// failover and resuming after it skips nothing (see the module docs).
///
/// A client that re-appends a lost event with its own event id could in
/// principle have it land at the same position in a transaction with the
/// same id; both counters would have to repeat exactly, which this accepts.
pub fn survived(token: &LogToken, now: AtPosition) -> bool {
    now == AtPosition::Event {
        tx_id: token.tx_id,
        event_id: token.event_id,
    }
}

/// The newest timeline whose checkpoints prove, for a reader holding a
/// diverged `token`, which events came before the fork; None when no
/// checkpoint can (see the module docs). `now` is the server's timeline (0:
/// unknown).
pub fn trusted_timeline(token: &LogToken, now: u32) -> Option<u32> {
    (token.timeline >= 1 && token.timeline < now).then_some(token.timeline)
}

/// The highest key a diverged reader may resume after: the greatest event
/// in the log at or below it is the last common point. `proven_tx` is the
/// highest transaction id of the checkpoints of the [`trusted_timeline`],
/// if any; every event of a transaction at or below it came before the
/// fork. None: nothing is proven, resume from the start of the log.
pub fn rewind_bound(token: &LogToken, proven_tx: Option<i64>) -> Option<GlobalCursor> {
    let proven = GlobalCursor::new(proven_tx.filter(|tx| *tx >= 1)?, i64::MAX);
    Some(proven.min(token.cursor()))
}

/// Whether a server's timeline moved from `seen` to `now` between two
/// looks: a promotion happened (0, unknown, is never a change).
pub fn timeline_changed(seen: u32, now: u32) -> bool {
    seen != 0 && now != 0 && seen != now
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(timeline: u32) -> LogToken {
        LogToken {
            position: 150,
            tx_id: 9_000,
            event_id: Uuid::from_u128(0xabc),
            timeline,
        }
    }

    #[test]
    fn prints_and_parses_back() {
        let t = token(2);
        let s = t.to_string();
        assert_eq!(s, "rf1.150.9000.00000000000000000000000000000abc.2");
        assert_eq!(s.parse::<LogToken>(), Ok(t));
        assert!(s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.'));
    }

    #[test]
    fn refuses_damaged_tokens_with_a_reason() {
        let cases = [
            ("", TokenError::Unknown),
            ("150", TokenError::Unknown),
            (
                "rf2.1.1.00000000000000000000000000000abc.1",
                TokenError::Unknown,
            ),
            ("rf1", TokenError::Damaged("no position")),
            (
                "rf1.x.1.00000000000000000000000000000abc.1",
                TokenError::Damaged("bad position"),
            ),
            (
                "rf1.-1.1.00000000000000000000000000000abc.1",
                TokenError::Damaged("bad position"),
            ),
            (
                "rf1.1.+1.00000000000000000000000000000abc.1",
                TokenError::Damaged("bad transaction id"),
            ),
            ("rf1.1.1.abc.1", TokenError::Damaged("bad event id")),
            (
                "rf1.1.1.0000000000000000000000000000-abc.1",
                TokenError::Damaged("bad event id"),
            ),
            (
                "rf1.1.1.00000000000000000000000000000abc",
                TokenError::Damaged("no timeline"),
            ),
            (
                "rf1.1.1.00000000000000000000000000000abc.99999999999",
                TokenError::Damaged("bad timeline"),
            ),
            (
                "rf1.1.1.00000000000000000000000000000abc.1.1",
                TokenError::Damaged("too many parts"),
            ),
            (
                "rf1.0.1.00000000000000000000000000000abc.1",
                TokenError::Damaged("position and transaction id start at 1"),
            ),
            (
                "rf1.99999999999999999999.1.00000000000000000000000000000abc.1",
                TokenError::Damaged("bad position"),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(input.parse::<LogToken>(), Err(want), "{input:?}");
        }
    }

    #[test]
    fn an_event_survived_only_with_the_same_id_and_transaction() {
        let t = token(1);
        let same = AtPosition::Event {
            tx_id: 9_000,
            event_id: t.event_id,
        };
        assert!(survived(&t, same));
        assert!(!survived(&t, AtPosition::Nothing));
        // The position reissued to another event, in a reissued transaction.
        assert!(!survived(
            &t,
            AtPosition::Event {
                tx_id: 9_000,
                event_id: Uuid::from_u128(1)
            }
        ));
        // The same id appended again by a client, in another transaction.
        assert!(!survived(
            &t,
            AtPosition::Event {
                tx_id: 9_001,
                event_id: t.event_id
            }
        ));
    }

    #[test]
    fn checkpoints_are_trusted_only_from_before_a_later_timeline() {
        // (token timeline, server timeline, trusted)
        let cases = [
            (1, 2, Some(1)),
            (1, 3, Some(1)),
            (2, 3, Some(2)),
            (2, 2, None), // no promotion since: nothing tells old from new
            (3, 2, None), // the server is not a descendant of the reader's history
            (0, 2, None), // the reader's timeline is unknown
            (1, 0, None), // the server's timeline is unknown
        ];
        for (reader, server, want) in cases {
            assert_eq!(
                trusted_timeline(&token(reader), server),
                want,
                "{reader} {server}"
            );
        }
    }

    #[test]
    fn a_timeline_changes_only_between_known_values() {
        assert!(timeline_changed(1, 2));
        assert!(!timeline_changed(1, 1));
        assert!(!timeline_changed(0, 2), "the first look");
        assert!(!timeline_changed(2, 0), "a look that could not tell");
    }

    #[test]
    fn the_rewind_bound_is_never_above_the_token_or_the_proof() {
        let t = token(1);
        assert_eq!(rewind_bound(&t, None), None);
        assert_eq!(rewind_bound(&t, Some(0)), None, "a checkpoint at the start");
        assert_eq!(
            rewind_bound(&t, Some(8_000)),
            Some(GlobalCursor::new(8_000, i64::MAX)),
            "every event of the checkpoint's transaction came before the fork"
        );
        assert_eq!(
            rewind_bound(&t, Some(9_500)),
            Some(t.cursor()),
            "never past what the reader had seen"
        );
    }
}
