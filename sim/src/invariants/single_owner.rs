//! PROJ-4 under dynamic ownership: one owner per partition at a time.
//!
//! - Every batch commits under its partition's current lease: the lease row
//!   names the committing worker with the batch's epoch, and the
//!   projection's partition count is the one the batch ran with. (A commit
//!   after the lease ran out, before anyone claimed it, is allowed: the fence
//!   admitted it while valid and a claim waits for its lock.)
//! - No two workers have batches open at once over partitions that can
//!   hold the same stream: key `k1` of `t1` and key `k2` of `t2` share a
//!   stream exactly when `k1 ≡ k2 (mod gcd(t1, t2))`.

use std::time::Duration;

use crate::model::ownership::history::BatchCommit;

use super::Violation;

const ID: &str = "PROJ-4";

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Whether partition `a` (key, count) and partition `b` can hold the same
/// stream (by the Chinese remainder theorem some hash lands in both).
pub fn overlap(a: (u32, u32), b: (u32, u32)) -> bool {
    let g = gcd(a.1, b.1).max(1);
    a.0 % g == b.0 % g
}

fn name(c: &BatchCommit) -> String {
    format!(
        "{}'s batch of p{}/{} under epoch {}",
        c.worker, c.partition, c.total, c.epoch
    )
}

/// The earliest breach in `commits` (in commit order).
pub fn check(commits: &[BatchCommit]) -> Option<Violation> {
    let stale = commits.iter().find_map(|c| {
        let current = c.lease.as_ref().is_some_and(|(owner, epoch)| {
            owner.as_deref() == Some(c.worker.as_str()) && *epoch == c.epoch
        });
        let holder = match &c.lease {
            Some((Some(owner), epoch)) => format!("{owner} under epoch {epoch}"),
            Some((None, epoch)) => format!("nobody (last epoch {epoch})"),
            None => "nobody".to_owned(),
        };
        if !current {
            return Some(Violation {
                invariant: ID,
                at: c.at,
                detail: format!("{} committed while the lease was held by {holder}", name(c)),
            });
        }
        (c.recorded_total != c.total).then(|| Violation {
            invariant: ID,
            at: c.at,
            detail: format!(
                "{} committed while the projection had {} partitions",
                name(c),
                c.recorded_total
            ),
        })
    });
    [stale, concurrent(commits)]
        .into_iter()
        .flatten()
        .min_by_key(|v| v.at)
}

/// The first pair of overlapping batches, open at the same time, by
/// different workers.
fn concurrent(commits: &[BatchCommit]) -> Option<Violation> {
    let mut by_start: Vec<&BatchCommit> = commits.iter().collect();
    by_start.sort_by_key(|c| (c.begun_at, c.at));
    // Batches still open at the current one's start: a sweep, since
    // batches are short and few are open at once.
    let mut open: Vec<&BatchCommit> = Vec::new();
    let mut found: Option<(Duration, String)> = None;
    for c in by_start {
        open.retain(|o| o.at > c.begun_at);
        for o in &open {
            if o.worker != c.worker
                && overlap((o.partition, o.total), (c.partition, c.total))
                && found.as_ref().is_none_or(|(at, _)| c.at.min(o.at) < *at)
            {
                let detail = format!(
                    "{} ({:.3}s to {:.3}s) overlapped {} ({:.3}s to {:.3}s)",
                    name(o),
                    o.begun_at.as_secs_f64(),
                    o.at.as_secs_f64(),
                    name(c),
                    c.begun_at.as_secs_f64(),
                    c.at.as_secs_f64()
                );
                found = Some((c.at.min(o.at), detail));
            }
        }
        open.push(c);
    }
    found.map(|(at, detail)| Violation {
        invariant: ID,
        at,
        detail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(worker: &str, p: (u32, u32), epoch: u64, from_ms: u64, to_ms: u64) -> BatchCommit {
        BatchCommit {
            begun_at: Duration::from_millis(from_ms),
            at: Duration::from_millis(to_ms),
            worker: worker.to_owned(),
            partition: p.0,
            total: p.1,
            epoch,
            lease: Some((Some(worker.to_owned()), epoch)),
            recorded_total: p.1,
            read: 1,
            applied: 1,
        }
    }

    #[test]
    fn partitions_overlap_when_some_stream_lands_in_both() {
        assert!(overlap((1, 4), (1, 2)));
        assert!(!overlap((1, 4), (0, 2)));
        assert!(overlap((2, 3), (0, 2)), "hash 2");
        assert!(!overlap((0, 3), (1, 3)));
        assert!(overlap((5, 8), (0, 1)));
    }

    #[test]
    fn sequential_or_disjoint_batches_pass() {
        let ok = [
            commit("a", (0, 2), 1, 0, 10),
            commit("b", (1, 2), 1, 5, 15),
            commit("b", (0, 2), 2, 10, 20),
            commit("a", (1, 4), 3, 30, 40),
            commit("c", (0, 4), 1, 35, 45),
        ];
        assert_eq!(check(&ok), None);
    }

    #[test]
    fn a_stale_epoch_a_stale_count_and_an_overlap_are_caught() {
        let mut stale = commit("a", (0, 2), 1, 0, 10);
        stale.lease = Some((Some("b".to_owned()), 2));
        let v = check(&[stale]).unwrap();
        assert!(v.detail.contains("held by b under epoch 2"), "{v:?}");
        let mut old_count = commit("a", (0, 2), 1, 0, 10);
        old_count.recorded_total = 3;
        assert!(check(&[old_count])
            .unwrap()
            .detail
            .contains("had 3 partitions"));
        let both = [commit("a", (1, 4), 1, 0, 10), commit("b", (1, 2), 1, 5, 15)];
        let v = check(&both).unwrap();
        assert_eq!(v.at, Duration::from_millis(10));
        assert!(v.detail.contains("overlapped"), "{v:?}");
    }
}
