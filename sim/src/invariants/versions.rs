//! ARCH-2 in the archive scenario: a stream's versions never restart or
//! repeat, whatever tier its events went to; every conflict the store
//! reported was a real one against the head; a key, once committed, only
//! ever replays its first result; and at the end each head's version is
//! the number of its events across tiers, no append is stored twice, and
//! nothing a writer was told failed is stored.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rillflow_core::archive::read_plan;

use crate::hosts::archive::ledger::{Fate, Intent, PER_INTENT};
use crate::model::log::events::ModelEvents;
use crate::model::log::history::{Entry, Step};
use crate::model::log::tiers::Cursor;

use super::Violation;

/// The first broken version or key rule, else the first mismatch found at
/// `end`.
pub fn check(
    events: &ModelEvents,
    intents: &BTreeMap<u64, Intent>,
    end: Duration,
) -> Option<Violation> {
    replay(events).or_else(|| at_end(events, intents, end))
}

fn replay(events: &ModelEvents) -> Option<Violation> {
    let mut versions: BTreeMap<u32, u64> = BTreeMap::new();
    let mut keys: BTreeMap<(u32, u64), (u64, u64)> = BTreeMap::new();
    for Entry { at, step } in events.history().entries() {
        let fail = |detail: String| {
            Some(Violation {
                invariant: "ARCH-2",
                at: *at,
                detail,
            })
        };
        match step {
            Step::Committed {
                stream,
                first,
                last,
                key,
                cursors,
                ..
            } => {
                let v = versions.get(stream).copied().unwrap_or(0);
                if *first != v + 1 || *last + 1 != first + cursors.len() as u64 {
                    return fail(format!(
                        "stream {stream} at version {v} got versions {first}..={last}"
                    ));
                }
                if let Some(key) = key {
                    if let Some(before) = keys.insert((*stream, *key), (*first, *last)) {
                        return fail(format!(
                            "key {key} on stream {stream} wrote versions {first}..={last} after writing {before:?}"
                        ));
                    }
                }
                versions.insert(*stream, *last);
            }
            Step::Conflict {
                stream,
                expected,
                actual,
            } => {
                let v = versions.get(stream).copied().unwrap_or(0);
                if *actual != v || expected.check(v).is_ok() {
                    return fail(format!(
                        "a conflict on stream {stream} (expected {expected}, head reported at {actual}) while its appends had reached version {v}"
                    ));
                }
            }
            Step::Replayed {
                stream,
                key,
                first,
                last,
            } => {
                let wrote = keys.get(&(*stream, *key));
                if wrote != Some(&(*first, *last)) {
                    return fail(format!(
                        "key {key} on stream {stream} replayed as {first}..={last}, but it wrote {wrote:?}"
                    ));
                }
            }
            _ => {}
        }
    }
    None
}

fn at_end(
    events: &ModelEvents,
    intents: &BTreeMap<u64, Intent>,
    end: Duration,
) -> Option<Violation> {
    let fail = |detail: String| {
        Some(Violation {
            invariant: "ARCH-2",
            at: end,
            detail,
        })
    };
    let mut appended: BTreeMap<u32, u64> = BTreeMap::new();
    for e in events.history().entries() {
        if let Step::Committed { stream, last, .. } = e.step {
            appended.insert(stream, last);
        }
    }
    let heads: BTreeMap<u32, u64> = events.heads().iter().map(|(s, h)| (s, h.version)).collect();
    if heads != appended {
        return fail(format!(
            "heads at {heads:?} while the appends wrote up to {appended:?}"
        ));
    }
    for (stream, version) in &heads {
        let stored = events.rows().stream(*stream, read_plan(true)).len() as u64;
        if stored != *version {
            return fail(format!(
                "stream {stream} at version {version} has {stored} events across tiers"
            ));
        }
    }
    let mut places: BTreeMap<u64, BTreeSet<Cursor>> = BTreeMap::new();
    for (_, row) in events.rows().all() {
        places
            .entry(row.payload)
            .or_default()
            .insert(row.event.cursor());
    }
    if let Some((payload, at)) = places.iter().find(|(_, c)| c.len() > 1) {
        return fail(format!(
            "payload {payload} of append {} is stored as {} events {at:?}: an append was written twice",
            payload / PER_INTENT,
            at.len()
        ));
    }
    for (id, intent) in intents {
        let told_none = matches!(intent.fate, Fate::Conflict { .. } | Fate::RolledBack);
        if told_none && intent.payloads.iter().any(|p| places.contains_key(p)) {
            return fail(format!(
                "append {id} to stream {} is stored although its writer was told {:?}",
                intent.stream, intent.fate
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use rillflow_core::archive::Backend;
    use rillflow_core::ExpectedVersion;

    use crate::model::log::events::{AppendRequest, Outcome};
    use crate::model::log::move_scope::MoveScope;

    use super::*;

    fn append(store: &mut ModelEvents, stream: u32, key: Option<u64>, payload: u64) -> Outcome {
        let out = store.begin(
            Duration::ZERO,
            &AppendRequest {
                stream,
                expected: ExpectedVersion::Any,
                key,
                payloads: vec![payload],
            },
        );
        if let Outcome::Started { xid, .. } = out {
            store.end(Duration::ZERO, xid, true);
        }
        out
    }

    #[test]
    fn a_store_that_keeps_its_rules_passes() {
        let mut store = ModelEvents::new(Backend::DualTable);
        append(&mut store, 1, Some(1), 8);
        append(&mut store, 1, Some(1), 8);
        store.mark(Duration::ZERO, 1);
        store.move_batch(
            Duration::from_secs(1),
            &MoveScope::before(Duration::from_secs(1), 10),
        );
        append(&mut store, 1, Some(1), 8);
        let conflict = store.begin(
            Duration::ZERO,
            &AppendRequest {
                stream: 1,
                expected: ExpectedVersion::NoStream,
                key: None,
                payloads: vec![16],
            },
        );
        assert_eq!(conflict, Outcome::Conflict { actual: 1 });
        assert_eq!(check(&store, &BTreeMap::new(), Duration::ZERO), None);
    }

    #[test]
    fn an_append_stored_twice_is_caught() {
        let mut store = ModelEvents::new(Backend::DualTable);
        append(&mut store, 1, None, 8);
        // The same payload again, as a retry without its key would write.
        append(&mut store, 1, None, 8);
        let v = check(&store, &BTreeMap::new(), Duration::from_secs(5)).expect("caught");
        assert!(v.detail.contains("written twice"), "{v:?}");
    }
}
