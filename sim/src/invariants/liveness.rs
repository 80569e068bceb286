//! LEASE-3: once the faults are healed, some node holds a valid lease and
//! believes it may write, within the bound.

use std::time::Duration;

use crate::trace::Belief;

use super::Violation;

/// Checks at `deadline` that `leader` (the database's valid lease holder
/// then, if any) is also the node whose latest belief is that epoch.
pub fn check(
    healed_at: Duration,
    deadline: Duration,
    leader: Option<(String, u64)>,
    beliefs: &[(String, Belief)],
) -> Option<Violation> {
    let fail = |detail: String| Violation {
        invariant: "LEASE-3",
        at: deadline,
        detail,
    };
    let Some((node, epoch)) = leader else {
        return Some(fail(format!(
            "no node holds a valid lease {:.3}s after the faults healed at {:.3}s",
            (deadline - healed_at).as_secs_f64(),
            healed_at.as_secs_f64()
        )));
    };
    let latest = beliefs
        .iter()
        .rev()
        .find(|(n, _)| *n == node)
        .map(|(_, b)| *b);
    match latest {
        Some(b) if b.epoch == Some(epoch) && b.until > deadline => None,
        other => Some(fail(format!(
            "{node} holds epoch {epoch} in the database but its latest belief is {other:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn a_leader_that_believes_passes_and_anything_less_fails() {
        let beliefs = vec![(
            "a".to_owned(),
            Belief {
                at: s(21),
                epoch: Some(4),
                until: s(29),
                local: s(21),
            },
        )];
        assert_eq!(
            check(s(20), s(26), Some(("a".to_owned(), 4)), &beliefs),
            None
        );
        assert!(
            check(s(20), s(26), None, &beliefs).is_some(),
            "nobody leads"
        );
        assert!(
            check(s(20), s(26), Some(("a".to_owned(), 5)), &beliefs).is_some(),
            "a does not know"
        );
        assert!(
            check(s(20), s(30), Some(("a".to_owned(), 4)), &beliefs).is_some(),
            "a's belief ran out"
        );
    }
}
