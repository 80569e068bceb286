//! What the archive scenario's clients were told: every append a writer
//! meant to make (an intent, with its payloads) and how it ended, and what
//! readers found wrong. It lives outside the client hosts, as the trace
//! does, so a client's crash loses its work in progress but not the record
//! the checks compare the store with.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::invariants::Violation;
use crate::protocol::StreamRow;

/// Payloads carry their intent: `intent * PER_INTENT + index`, so any
/// stored event names the append it came from.
pub const PER_INTENT: u64 = 8;

/// How an intent ended, as its writer was told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// No definite answer (a lost commit reply without a key to retry
    /// with, or a writer that crashed): the events may or may not exist.
    Pending,
    /// Committed (or replayed by its key) as versions `first..=last`.
    Acked {
        /// First version.
        first: u64,
        /// Last version.
        last: u64,
    },
    /// Refused: the head was at `actual`. Nothing was written.
    Conflict {
        /// The head's version.
        actual: u64,
    },
    /// The writer rolled it back. Nothing was written.
    RolledBack,
}

/// One append a writer meant to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intent {
    /// Stream.
    pub stream: u32,
    /// Its payloads, one per event.
    pub payloads: Vec<u64>,
    /// Its idempotency key (every attempt sends the same).
    pub key: Option<u64>,
    /// How it ended.
    pub fate: Fate,
}

#[derive(Debug, Default)]
struct Inner {
    next: u64,
    intents: BTreeMap<u64, Intent>,
    violations: Vec<Violation>,
    reads: usize,
    retries: usize,
}

/// The shared record.
#[derive(Debug, Clone, Default)]
pub struct Ledger(Arc<Mutex<Inner>>);

impl Ledger {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().expect("ledger lock")
    }

    /// A new intent of `n` events to `stream`, keyed or not.
    pub fn open(&self, stream: u32, n: u64, keyed: bool) -> (u64, Intent) {
        let mut inner = self.inner();
        inner.next += 1;
        let id = inner.next;
        let intent = Intent {
            stream,
            payloads: (0..n.clamp(1, PER_INTENT))
                .map(|j| id * PER_INTENT + j)
                .collect(),
            // Ids are unique across restarts, as a client's UUIDs would be.
            key: keyed.then_some(id),
            fate: Fate::Pending,
        };
        inner.intents.insert(id, intent.clone());
        (id, intent)
    }

    /// Records how intent `id` ended.
    pub fn settle(&self, id: u64, fate: Fate) {
        if let Some(intent) = self.inner().intents.get_mut(&id) {
            intent.fate = fate;
        }
    }

    /// Records what a client found wrong at `at`.
    pub fn record(&self, invariant: &'static str, at: Duration, detail: String) {
        self.inner().violations.push(Violation {
            invariant,
            at,
            detail,
        });
    }

    /// Counts a retry after a lost reply.
    pub fn retried(&self) {
        self.inner().retries += 1;
    }

    /// Checks what a reader got for `stream` at `at` against what writers
    /// were told; a problem is recorded.
    pub fn check_read(&self, at: Duration, stream: u32, rows: &[StreamRow]) {
        let mut inner = self.inner();
        inner.reads += 1;
        if let Some((invariant, detail)) = read_problem(&inner.intents, stream, rows) {
            inner.violations.push(Violation {
                invariant,
                at,
                detail: format!("a reader saw {detail}"),
            });
        }
    }

    /// Every intent, by id.
    pub fn intents(&self) -> BTreeMap<u64, Intent> {
        self.inner().intents.clone()
    }

    /// What readers found wrong, in order.
    pub fn violations(&self) -> Vec<Violation> {
        self.inner().violations.clone()
    }

    /// (reads checked, retries after lost replies).
    pub fn counts(&self) -> (usize, usize) {
        let inner = self.inner();
        (inner.reads, inner.retries)
    }
}

/// What is wrong with `rows` (a read of `stream` with archived data, by
/// version) given the intents: versions other than 1..=n once each
/// (ARCH-1), an event not where its acknowledged append put it or from no
/// append at all (ARCH-1), or one written by an append its writer was told
/// did not happen (ARCH-2).
pub fn read_problem(
    intents: &BTreeMap<u64, Intent>,
    stream: u32,
    rows: &[StreamRow],
) -> Option<(&'static str, String)> {
    let versions: Vec<u64> = rows.iter().map(|r| r.version).collect();
    if !versions.iter().copied().eq(1..=rows.len() as u64) {
        return Some((
            "ARCH-1",
            format!(
                "stream {stream} with versions {}",
                crate::model::log::events::compact(&versions)
            ),
        ));
    }
    for row in rows {
        let (id, j) = (row.payload / PER_INTENT, row.payload % PER_INTENT);
        let Some(intent) = intents
            .get(&id)
            .filter(|i| i.stream == stream && j < i.payloads.len() as u64)
        else {
            return Some((
                "ARCH-1",
                format!(
                    "stream {stream} version {} holding payload {}, which no writer sent there",
                    row.version, row.payload
                ),
            ));
        };
        match intent.fate {
            Fate::Acked { first, .. } if row.version != first + j => {
                return Some((
                    "ARCH-1",
                    format!(
                        "stream {stream} version {} holding payload {}, acknowledged as version {}",
                        row.version,
                        row.payload,
                        first + j
                    ),
                ))
            }
            Fate::Conflict { actual } => {
                return Some((
                    "ARCH-2",
                    format!(
                        "stream {stream} version {} written by append {id}, whose writer was told of a conflict at version {actual}",
                        row.version
                    ),
                ))
            }
            Fate::RolledBack => {
                return Some((
                    "ARCH-2",
                    format!(
                        "stream {stream} version {} written by append {id}, which its writer rolled back",
                        row.version
                    ),
                ))
            }
            Fate::Acked { .. } | Fate::Pending => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(version: u64, payload: u64) -> StreamRow {
        StreamRow {
            version,
            payload,
            cold: false,
        }
    }

    #[test]
    fn reads_are_judged_by_what_writers_were_told() {
        let ledger = Ledger::default();
        let (a, ia) = ledger.open(3, 2, true);
        let (b, ib) = ledger.open(3, 1, false);
        ledger.settle(a, Fate::Acked { first: 1, last: 2 });
        let good = [
            row(1, ia.payloads[0]),
            row(2, ia.payloads[1]),
            row(3, ib.payloads[0]),
        ];
        let intents = ledger.intents();
        assert_eq!(read_problem(&intents, 3, &good), None, "b is pending");
        let dup = [row(1, ia.payloads[0]), row(1, ia.payloads[0])];
        assert_eq!(read_problem(&intents, 3, &dup).map(|p| p.0), Some("ARCH-1"));
        let moved = [row(1, ia.payloads[1]), row(2, ia.payloads[0])];
        assert_eq!(
            read_problem(&intents, 3, &moved).map(|p| p.0),
            Some("ARCH-1")
        );
        assert_eq!(
            read_problem(&intents, 4, &[row(1, ia.payloads[0])]).map(|p| p.0),
            Some("ARCH-1"),
            "a payload sent to another stream"
        );
        ledger.settle(b, Fate::Conflict { actual: 2 });
        assert_eq!(
            read_problem(&ledger.intents(), 3, &good).map(|p| p.0),
            Some("ARCH-2")
        );
        ledger.check_read(Duration::from_secs(1), 3, &good);
        assert_eq!(ledger.violations().len(), 1);
        assert_eq!(ledger.counts(), (1, 0));
    }
}
