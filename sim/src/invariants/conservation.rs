//! ARCH-1 in the archive scenario: no archive operation loses, duplicates
//! or reorders an event.
//!
//! Checked as it happens (the store checks each stream it touches after
//! every step; readers check what they read against what writers were
//! told) and at the end: every row sits in exactly the one tier the store's
//! own steps put it in, reading each stream with archived data gives
//! versions 1..=head with the payloads writers were acknowledged for,
//! every acknowledged append is there, and the projection's read model is
//! the fold of every event once. The earliest violation is reported.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::hosts::archive::ledger::{read_problem, Fate, Intent};
use crate::model::log::event_log::ModelLog;
use crate::model::log::events::ModelEvents;
use crate::model::log::history::{Entry, Step};
use crate::model::log::tiers::{Cursor, Tier};
use crate::protocol::StreamRow;

use super::Violation;

/// The earliest loss, duplicate or misplacement, as it happened or as the
/// end state shows it; `seen` are the readers' findings.
pub fn check(
    log: &ModelLog,
    intents: &BTreeMap<u64, Intent>,
    seen: &[Violation],
    end: Duration,
) -> Option<Violation> {
    let events = log.events();
    let during = events.violations.first().map(|v| Violation {
        invariant: "ARCH-1",
        at: v.at,
        detail: v.detail.clone(),
    });
    let (replayed, replay_violation) = placements(events);
    [
        during,
        seen.first().cloned(),
        replay_violation,
        placed_as_replayed(events, &replayed, end),
        reads_at_end(events, intents, end),
        acknowledged_present(events, intents, end),
        read_model_is_the_fold(log, end),
    ]
    .into_iter()
    .flatten()
    .min_by_key(|v| v.at)
}

/// Where the store's own steps put each row, and the first step that
/// found a row elsewhere than it should have been.
fn placements(events: &ModelEvents) -> (BTreeMap<Cursor, Vec<Tier>>, Option<Violation>) {
    let mut at: BTreeMap<Cursor, Vec<Tier>> = BTreeMap::new();
    let mut first = None;
    for Entry { at: when, step } in events.history().entries() {
        let mut problem = |detail: String| {
            first.get_or_insert(Violation {
                invariant: "ARCH-1",
                at: *when,
                detail,
            });
        };
        match step {
            Step::Committed {
                target, cursors, ..
            } => {
                for c in cursors {
                    if at.insert(*c, vec![Tier::of(*target)]).is_some() {
                        problem(format!("event {c:?} was committed twice"));
                    }
                }
            }
            Step::Moved { cursors, .. } => {
                for c in cursors {
                    let tiers = at.entry(*c).or_default();
                    if *tiers != [Tier::Hot] {
                        problem(format!("moved event {c:?} from {tiers:?}"));
                    }
                    *tiers = vec![Tier::Cold];
                }
            }
            Step::Copied(cursors) => {
                for c in cursors {
                    let tiers = at.entry(*c).or_default();
                    tiers.push(Tier::Cold);
                    problem(format!(
                        "event {c:?} stored in {tiers:?} at once: copied cold, still hot"
                    ));
                }
            }
            Step::Deleted { cursors, .. } => {
                for c in cursors {
                    at.entry(*c).or_default().retain(|t| *t != Tier::Hot);
                }
            }
            _ => {}
        }
    }
    (at, first)
}

fn placed_as_replayed(
    events: &ModelEvents,
    replayed: &BTreeMap<Cursor, Vec<Tier>>,
    end: Duration,
) -> Option<Violation> {
    let mut stored: BTreeMap<Cursor, Vec<Tier>> = BTreeMap::new();
    for (tier, row) in events.rows().all() {
        stored.entry(row.event.cursor()).or_default().push(tier);
    }
    let expected: BTreeMap<Cursor, Vec<Tier>> = replayed
        .iter()
        .filter(|(_, t)| !t.is_empty())
        .map(|(c, t)| (*c, t.clone()))
        .collect();
    let wrong = stored
        .iter()
        .find(|(c, t)| t.len() != 1 || expected.get(*c) != Some(*t))
        .map(|(c, t)| (*c, t.clone(), expected.get(c).cloned()))
        .or_else(|| {
            expected
                .iter()
                .find(|(c, _)| !stored.contains_key(*c))
                .map(|(c, t)| (*c, Vec::new(), Some(t.clone())))
        });
    wrong.map(|(c, is, should)| Violation {
        invariant: "ARCH-1",
        at: end,
        detail: format!("event {c:?} is stored in {is:?}; the store's steps put it in {should:?}"),
    })
}

fn stream_rows(events: &ModelEvents, stream: u32) -> Vec<StreamRow> {
    events
        .read_stream(stream, true)
        .into_iter()
        .map(|(tier, r)| StreamRow {
            version: r.event.version,
            payload: r.payload,
            cold: tier == Tier::Cold,
        })
        .collect()
}

fn reads_at_end(
    events: &ModelEvents,
    intents: &BTreeMap<u64, Intent>,
    end: Duration,
) -> Option<Violation> {
    events.heads().iter().find_map(|(stream, head)| {
        let rows = stream_rows(events, stream);
        let problem = read_problem(intents, stream, &rows).or_else(|| {
            (rows.len() as u64 != head.version).then(|| {
                (
                    "ARCH-1",
                    format!(
                        "stream {stream} at version {} reads {} events",
                        head.version,
                        rows.len()
                    ),
                )
            })
        });
        problem.map(|(invariant, detail)| Violation {
            invariant,
            at: end,
            detail: format!("the final read found {detail}"),
        })
    })
}

fn acknowledged_present(
    events: &ModelEvents,
    intents: &BTreeMap<u64, Intent>,
    end: Duration,
) -> Option<Violation> {
    let mut streams: BTreeMap<u32, Vec<StreamRow>> = BTreeMap::new();
    intents.iter().find_map(|(id, intent)| {
        let Fate::Acked { first, last } = intent.fate else {
            return None;
        };
        let rows = streams
            .entry(intent.stream)
            .or_insert_with(|| stream_rows(events, intent.stream));
        let found: Vec<u64> = rows
            .iter()
            .filter(|r| (first..=last).contains(&r.version))
            .map(|r| r.payload)
            .collect();
        (found != intent.payloads).then(|| Violation {
            invariant: "ARCH-1",
            at: end,
            detail: format!(
                "append {id} was acknowledged as versions {first}..={last} of stream {} with payloads {:?}; they hold {found:?}",
                intent.stream, intent.payloads
            ),
        })
    })
}

fn read_model_is_the_fold(log: &ModelLog, end: Duration) -> Option<Violation> {
    let fold: BTreeMap<u32, (u64, u64)> = log
        .events()
        .heads()
        .iter()
        .map(|(s, h)| (s, (h.version, h.version)))
        .collect();
    (log.read_model() != &fold).then(|| Violation {
        invariant: "ARCH-1",
        at: end,
        detail: format!(
            "the read model (events, last version per stream) is {:?}; the streams hold {fold:?}",
            log.read_model()
        ),
    })
}

#[cfg(test)]
mod tests {
    use rillflow_core::archive::Backend;
    use rillflow_core::ExpectedVersion;

    use crate::hosts::archive::ledger::Ledger;
    use crate::model::log::events::{AppendRequest, Outcome};
    use crate::model::log::move_scope::MoveScope;

    use super::*;

    fn s(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    fn append(log: &mut ModelLog, ledger: &Ledger, stream: u32) {
        let (id, intent) = ledger.open(stream, 2, true);
        let out = log.events_mut().begin(
            s(0),
            &AppendRequest {
                stream,
                expected: ExpectedVersion::Any,
                key: intent.key,
                payloads: intent.payloads.clone(),
            },
        );
        let Outcome::Started { xid, first, last } = out else {
            panic!("{out:?}");
        };
        assert!(log.end_append(s(0), xid, true));
        ledger.settle(id, Fate::Acked { first, last });
    }

    #[test]
    fn moves_and_projections_that_keep_every_event_pass() {
        let (mut log, ledger) = (ModelLog::default(), Ledger::default());
        append(&mut log, &ledger, 1);
        log.events_mut().mark(s(1), 1);
        log.events_mut()
            .move_batch(s(1_000), &MoveScope::before(s(1_000), 1));
        append(&mut log, &ledger, 1);
        assert_eq!(log.project(s(1_000), 100), 4);
        assert_eq!(check(&log, &ledger.intents(), &[], s(9_000)), None);
    }

    #[test]
    fn a_two_step_move_is_caught_when_it_copies() {
        let mut log = ModelLog::new(ModelEvents::new(Backend::Partitioned));
        let ledger = Ledger::default();
        append(&mut log, &ledger, 1);
        log.events_mut().mark(s(1), 1);
        let scope = MoveScope::before(s(500), 10);
        let Outcome::Copied(batch) = log.events_mut().copy_batch(s(500), &scope) else {
            panic!("copied");
        };
        // The projection reads between the two halves and applies twice.
        log.project(s(600), 100);
        log.events_mut().delete_hot(s(700), &batch.cursors);
        let v = check(&log, &ledger.intents(), &[], s(9_000)).expect("caught");
        assert_eq!((v.invariant, v.at), ("ARCH-1", s(500)));
        assert!(
            log.violations.iter().any(|v| v.invariant == "PROJ-1"),
            "{:?}",
            log.violations
        );
    }

    #[test]
    fn a_lost_acknowledged_append_is_caught() {
        let (mut log, ledger) = (ModelLog::default(), Ledger::default());
        append(&mut log, &ledger, 1);
        log.project(s(1), 100);
        // Acknowledged, but never stored.
        let (id, _) = ledger.open(1, 1, false);
        ledger.settle(id, Fate::Acked { first: 3, last: 3 });
        let v = check(&log, &ledger.intents(), &[], s(9_000)).expect("caught");
        assert!(v.detail.contains(&format!("append {id}")), "{v:?}");
    }
}
