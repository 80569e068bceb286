//! ARCH-4 in the archive scenario: every append landed where
//! `append_target` puts it for its stream's state at the time, that state
//! replayed from the store's own decisions (marks, reactivations, redirect
//! switches, moves) rather than read off its heads; and a stream's
//! retention turned cold exactly when a move left it archived with no hot
//! events, since that is what sends a partitioned stream's appends cold.

use std::collections::{BTreeMap, BTreeSet};

use rillflow_core::archive::{append_target, Backend, HeadFlags, Retention};

use crate::model::log::history::{Entry, History, Step};
use crate::model::log::tiers::{Cursor, Tier};

use super::Violation;

#[derive(Debug, Clone, Copy)]
struct Replayed {
    flags: HeadFlags,
    hot: usize,
}

/// The first append routed against the rule, or the first retention
/// change that does not follow the moves.
pub fn check(backend: Backend, history: &History) -> Option<Violation> {
    let mut streams: BTreeMap<u32, Replayed> = BTreeMap::new();
    let mut stream_of: BTreeMap<Cursor, u32> = BTreeMap::new();
    let mut redirect = false;
    for Entry { at, step } in history.entries() {
        let fail = |detail: String| {
            Some(Violation {
                invariant: "ARCH-4",
                at: *at,
                detail,
            })
        };
        match step {
            Step::Committed {
                stream,
                target,
                cursors,
                ..
            } => {
                let s = streams.entry(*stream).or_insert(Replayed {
                    flags: HeadFlags::NEW,
                    hot: 0,
                });
                let state = s.flags.state();
                let want = append_target(backend, redirect, state);
                if *target != want {
                    return fail(format!(
                        "an append to stream {stream} ({state:?}, redirect {redirect}, {backend}) went to {target:?}; the rule says {want:?}"
                    ));
                }
                if Tier::of(*target) == Tier::Hot {
                    s.hot += cursors.len();
                }
                stream_of.extend(cursors.iter().map(|c| (*c, *stream)));
            }
            Step::Marked(stream) | Step::Reactivated(stream) => {
                let Some(s) = streams.get_mut(stream) else {
                    return fail(format!("stream {stream} changed before it existed"));
                };
                s.flags = if matches!(step, Step::Marked(_)) {
                    s.flags.mark()
                } else {
                    s.flags.reactivate()
                };
            }
            Step::Redirect(on) => redirect = *on,
            Step::Moved { cursors, cold } | Step::Deleted { cursors, cold } => {
                let mut touched = BTreeSet::new();
                for c in cursors {
                    let Some(stream) = stream_of.get(c) else {
                        return fail(format!("moved {c:?}, which was never appended"));
                    };
                    touched.insert(*stream);
                    let s = streams
                        .get_mut(stream)
                        .expect("appended streams are replayed");
                    s.hot = s.hot.saturating_sub(1);
                }
                for stream in touched {
                    let s = streams
                        .get_mut(&stream)
                        .expect("appended streams are replayed");
                    if !s.flags.archived {
                        return fail(format!(
                            "moved events of stream {stream}, which is not archived"
                        ));
                    }
                    let due = s.hot == 0 && s.flags.retention == Retention::Hot;
                    let made = cold.contains(&stream);
                    if due != made {
                        return fail(format!(
                            "a move left stream {stream} with {} hot events and {} its retention cold",
                            s.hot,
                            if made { "made" } else { "did not make" }
                        ));
                    }
                    if made {
                        s.flags = s.flags.moved_cold();
                    }
                }
            }
            Step::Copied(_) | Step::Conflict { .. } | Step::Replayed { .. } => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rillflow_core::archive::AppendTarget;

    use super::*;

    fn committed(stream: u32, position: u64, target: AppendTarget) -> Step {
        Step::Committed {
            stream,
            first: position,
            last: position,
            key: None,
            target,
            cursors: vec![(position, position)],
        }
    }

    fn history(steps: Vec<Step>) -> History {
        let mut h = History::default();
        for (i, s) in steps.into_iter().enumerate() {
            h.push(Duration::from_millis(i as u64), s);
        }
        h
    }

    #[test]
    fn a_cold_partitioned_stream_grows_cold_and_a_reactivated_one_hot() {
        let good = history(vec![
            committed(1, 1, AppendTarget::Hot),
            Step::Marked(1),
            Step::Moved {
                cursors: vec![(1, 1)],
                cold: vec![1],
            },
            committed(1, 2, AppendTarget::ColdPartition),
            Step::Reactivated(1),
            committed(1, 3, AppendTarget::Hot),
        ]);
        assert_eq!(check(Backend::Partitioned, &good), None);
        let v = check(Backend::DualTable, &good).expect("dual-table ignores retention");
        assert_eq!((v.invariant, v.at), ("ARCH-4", Duration::from_millis(3)));
    }

    #[test]
    fn redirect_sends_archived_appends_to_the_archive_table() {
        let steps = |target| {
            history(vec![
                committed(1, 1, AppendTarget::Hot),
                Step::Marked(1),
                Step::Redirect(true),
                committed(1, 2, target),
            ])
        };
        assert_eq!(
            check(Backend::DualTable, &steps(AppendTarget::ArchiveTable)),
            None
        );
        assert!(check(Backend::DualTable, &steps(AppendTarget::Hot)).is_some());
    }

    #[test]
    fn retention_turns_cold_exactly_when_the_last_hot_event_moves() {
        let moves = |cold: Vec<u32>| {
            history(vec![
                committed(1, 1, AppendTarget::Hot),
                committed(1, 2, AppendTarget::Hot),
                Step::Marked(1),
                Step::Moved {
                    cursors: vec![(1, 1)],
                    cold,
                },
            ])
        };
        assert_eq!(check(Backend::Partitioned, &moves(vec![])), None);
        assert!(check(Backend::Partitioned, &moves(vec![1])).is_some());
        let unmarked = history(vec![
            committed(1, 1, AppendTarget::Hot),
            Step::Moved {
                cursors: vec![(1, 1)],
                cold: vec![],
            },
        ]);
        assert!(check(Backend::DualTable, &unmarked).is_some());
    }
}
