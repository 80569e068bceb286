//! PROJ-1, PROJ-2 and PROJ-3 for the simulated projection: nothing applied
//! twice, no commit left behind the checkpoint, streams in order (all
//! checked by the model at each commit), and after healing every committed
//! event applied (exactly once) and nothing else: after a lossy promotion
//! the read model must match the surviving log exactly.

use std::time::Duration;

use crate::model::log::event_log::ModelLog;

use super::Violation;

/// The first violation the model saw, else a final shortfall at `end`.
pub fn check(log: &ModelLog, end: Duration) -> Option<Violation> {
    if let Some(v) = log.violations.first() {
        return Some(Violation {
            invariant: v.invariant,
            at: v.at,
            detail: v.detail.clone(),
        });
    }
    let stray = log.stray();
    if stray > 0 {
        return Some(Violation {
            invariant: "PROJ-1",
            at: end,
            detail: format!("the read model holds {stray} events the log does not"),
        });
    }
    let missing = log.unapplied();
    (missing > 0).then(|| Violation {
        invariant: "PROJ-1",
        at: end,
        detail: format!(
            "{missing} of {} committed events were never applied after healing",
            log.committed()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caught_up_log_passes_and_a_behind_one_does_not() {
        let mut log = ModelLog::default();
        let xid = log.begin_append(Duration::ZERO, 1, 2).unwrap();
        log.end_append(Duration::ZERO, xid, true);
        let v = check(&log, Duration::from_secs(9)).expect("nothing applied yet");
        assert_eq!((v.invariant, v.at), ("PROJ-1", Duration::from_secs(9)));
        log.project(Duration::ZERO, 10);
        assert_eq!(check(&log, Duration::from_secs(9)), None);
    }
}
