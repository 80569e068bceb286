//! Stream heads (`rf_streams`) and idempotency keys (`rf_idempotency`):
//! the only authority on a stream's version, its keys and its archive
//! state, whatever tier its events are in. Heads are never archived or
//! moved.

use std::collections::BTreeMap;

use rillflow_core::archive::{HeadFlags, StreamState};

/// One stream's head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Its version: events ever appended.
    pub version: u64,
    /// Its archive columns.
    pub flags: HeadFlags,
}

/// What an idempotency key already stands for, as `rf_idempotency` keeps
/// it since sql/0011: the stream, a digest of the request (here its
/// payloads), and the versions it wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
struct KeyUse {
    stream: u32,
    payloads: Vec<u64>,
    first: u64,
    last: u64,
}

/// An append's key against the keys recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyMatch {
    /// The key is new: append.
    New,
    /// The same request again: its first result, nothing written.
    Retry {
        /// First version it wrote.
        first: u64,
        /// Last version it wrote.
        last: u64,
    },
    /// The key stands for another request (other events, or another
    /// stream): refused, nothing written.
    Reused,
}

/// Every stream's head and the keys of its appends.
#[derive(Debug, Clone, Default)]
pub struct Heads {
    heads: BTreeMap<u32, Head>,
    /// Key → what it stands for. Keys are global, as in Postgres: a key
    /// used on one stream is refused on another.
    keys: BTreeMap<u64, KeyUse>,
}

impl Heads {
    /// The head of `stream`, if it was ever appended to.
    pub fn get(&self, stream: u32) -> Option<Head> {
        self.heads.get(&stream).copied()
    }

    /// The version of `stream` (0: no stream).
    pub fn version(&self, stream: u32) -> u64 {
        self.heads.get(&stream).map_or(0, |h| h.version)
    }

    /// The lifecycle state of `stream` (a stream not created yet is hot).
    pub fn state(&self, stream: u32) -> StreamState {
        self.heads
            .get(&stream)
            .map_or(StreamState::Hot, |h| h.flags.state())
    }

    /// What an append of `payloads` to `stream` under `key` is: new, a
    /// retry of the append that recorded the key, or a reuse of the key for
    /// something else.
    pub fn replay(&self, stream: u32, key: u64, payloads: &[u64]) -> KeyMatch {
        match self.keys.get(&key) {
            None => KeyMatch::New,
            Some(k) if k.stream == stream && k.payloads == payloads => KeyMatch::Retry {
                first: k.first,
                last: k.last,
            },
            Some(_) => KeyMatch::Reused,
        }
    }

    /// Records a committed append of `payloads` as versions `first..=last`,
    /// creating the head on the stream's first append.
    pub fn commit(
        &mut self,
        stream: u32,
        (first, last): (u64, u64),
        key: Option<u64>,
        payloads: &[u64],
    ) {
        let head = self.heads.entry(stream).or_insert(Head {
            version: 0,
            flags: HeadFlags::NEW,
        });
        head.version = last;
        if let Some(key) = key {
            let payloads = payloads.to_vec();
            let used = KeyUse {
                stream,
                payloads,
                first,
                last,
            };
            self.keys.insert(key, used);
        }
    }

    /// Changes the archive columns of `stream`; None when it has no head,
    /// else whether anything changed.
    pub fn update(&mut self, stream: u32, f: impl FnOnce(HeadFlags) -> HeadFlags) -> Option<bool> {
        let head = self.heads.get_mut(&stream)?;
        let before = head.flags;
        head.flags = f(before);
        Some(head.flags != before)
    }

    /// Every head, by stream.
    pub fn iter(&self) -> impl Iterator<Item = (u32, Head)> + '_ {
        self.heads.iter().map(|(s, h)| (*s, *h))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_carry_versions_keys_and_state() {
        let mut h = Heads::default();
        assert_eq!((h.version(1), h.state(1)), (0, StreamState::Hot));
        assert_eq!(h.update(1, HeadFlags::mark), None, "no head to mark");
        h.commit(1, (1, 2), Some(9), &[7, 8]);
        h.commit(1, (3, 3), None, &[9]);
        assert_eq!(h.version(1), 3);
        assert_eq!(
            h.replay(1, 9, &[7, 8]),
            KeyMatch::Retry { first: 1, last: 2 }
        );
        assert_eq!(h.replay(1, 9, &[7]), KeyMatch::Reused, "other events");
        assert_eq!(h.replay(2, 9, &[7, 8]), KeyMatch::Reused, "keys are global");
        assert_eq!(h.replay(1, 10, &[7, 8]), KeyMatch::New);
        assert_eq!(h.update(1, HeadFlags::mark), Some(true));
        assert_eq!(h.update(1, HeadFlags::mark), Some(false));
        assert_eq!(h.state(1), StreamState::Archived);
    }
}
