//! Graceful leave: a worker asked to stop (SIGTERM) stops its batches
//! within the bound, its running batch's timeout plus a poll, so that it
//! releases its partitions and leaves. Until it does, its driver keeps
//! heartbeating and claiming, and the other workers count it in their
//! shares. Not judged when the process was killed or restarted first.

use std::time::Duration;

use crate::harness::faults::Fault;
use crate::hosts::worker::StopRecord;

use super::Violation;

/// The first stop whose batches had not stopped `bound` after it was
/// asked for (by `end` at the latest), unless `faults` killed or restarted
/// the worker before then.
pub fn check(
    stops: &[(String, StopRecord)],
    faults: &[(Duration, Fault)],
    bound: Duration,
    end: Duration,
) -> Option<Violation> {
    stops.iter().find_map(|(worker, r)| {
        let deadline = r.asked + bound;
        if deadline > end || r.batches_stopped.is_some_and(|t| t <= deadline) {
            return None;
        }
        let killed = faults.iter().any(|(at, f)| {
            matches!(f, Fault::Crash(w) | Fault::Restart(w) if w == worker)
                && *at >= r.asked
                && *at <= deadline
        });
        (!killed).then(|| Violation {
            invariant: "PROJ-4 liveness",
            at: deadline,
            detail: format!(
                "{worker} was asked to stop at {:.3}s and its batches had not stopped {:.3}s later ({})",
                r.asked.as_secs_f64(),
                bound.as_secs_f64(),
                r.batches_stopped.map_or("never".to_owned(), |t| format!(
                    "they stopped at {:.3}s",
                    t.as_secs_f64()
                ))
            ),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    fn stop(asked: u64, stopped: Option<u64>) -> (String, StopRecord) {
        let record = StopRecord {
            asked: s(asked),
            batches_stopped: stopped.map(s),
            left: None,
        };
        ("n1".to_owned(), record)
    }

    #[test]
    fn a_prompt_stop_passes_and_a_hung_one_fails_unless_killed() {
        let bound = s(3);
        assert_eq!(check(&[stop(1, Some(2))], &[], bound, s(30)), None);
        let hung = check(&[stop(1, Some(9))], &[], bound, s(30)).unwrap();
        assert_eq!(hung.at, s(4));
        assert!(hung.detail.contains("stopped at 9.000s"), "{hung:?}");
        assert!(check(&[stop(1, None)], &[], bound, s(30)).is_some());
        let restarted = [(s(3), Fault::Restart("n1".to_owned()))];
        assert_eq!(check(&[stop(1, None)], &restarted, bound, s(30)), None);
        assert_eq!(check(&[stop(29, None)], &[], bound, s(30)), None, "not due");
    }
}
