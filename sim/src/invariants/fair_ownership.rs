//! Liveness of dynamic ownership: once the faults have healed, within the
//! bound (see `scenarios::ownership::settle`) and from then on, every worker is
//! live, every partition is held by a live worker, and each live worker
//! holds its fair share: ⌊P/W⌋ or ⌈P/W⌉ of the P partitions among W
//! workers. Read from the database's view, as the workers read it.

use std::collections::BTreeMap;
use std::time::Duration;

use rillflow_core::ownership::Holder;

use super::Violation;

const ID: &str = "PROJ-4 liveness";

/// Ownership as the database shows it at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Database time.
    pub at: Duration,
    /// The projection's partition count.
    pub partitions: u32,
    /// Live workers (fresh heartbeat), by name.
    pub live: Vec<String>,
    /// Unexpired leases by partition.
    pub holders: BTreeMap<u32, Holder>,
}

/// What is wrong with `snapshot` when every one of `workers` should be
/// running.
pub fn check(snapshot: &Snapshot, workers: &[String]) -> Option<Violation> {
    let fail = |detail: String| {
        Some(Violation {
            invariant: ID,
            at: snapshot.at,
            detail,
        })
    };
    if let Some(absent) = workers.iter().find(|w| !snapshot.live.contains(w)) {
        return fail(format!("{absent} is not live (live: {:?})", snapshot.live));
    }
    let p = snapshot.partitions;
    let mut shares: BTreeMap<&str, u32> = snapshot.live.iter().map(|w| (w.as_str(), 0)).collect();
    for k in 0..p {
        match snapshot.holders.get(&k) {
            Some(h) if shares.contains_key(h.worker.as_str()) => {
                *shares.get_mut(h.worker.as_str()).expect("checked") += 1;
            }
            Some(h) => {
                return fail(format!(
                    "p{k} of {p} is held by {} (epoch {}), which is not live",
                    h.worker, h.epoch
                ))
            }
            None => return fail(format!("p{k} of {p} has no owner")),
        }
    }
    let n = u32::try_from(shares.len()).unwrap_or(u32::MAX).max(1);
    let (floor, ceil) = (p / n, p.div_ceil(n));
    let unfair: Vec<String> = shares
        .iter()
        .filter(|(_, s)| **s < floor || **s > ceil)
        .map(|(w, s)| format!("{w} holds {s}"))
        .collect();
    if !unfair.is_empty() {
        return fail(format!(
            "unfair shares of {p} partitions among {n} workers (each {floor} or {ceil}): {}; all: {shares:?}",
            unfair.join(", ")
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(partitions: u32, live: &[&str], owners: &[&str]) -> Snapshot {
        Snapshot {
            at: Duration::from_secs(1),
            partitions,
            live: live.iter().map(|w| (*w).to_owned()).collect(),
            holders: owners
                .iter()
                .enumerate()
                .filter(|(_, w)| !w.is_empty())
                .map(|(k, w)| {
                    let holder = Holder {
                        worker: (*w).to_owned(),
                        epoch: 1,
                    };
                    (k as u32, holder)
                })
                .collect(),
        }
    }

    fn names(ws: &[&str]) -> Vec<String> {
        ws.iter().map(|w| (*w).to_owned()).collect()
    }

    #[test]
    fn fair_full_ownership_passes() {
        let s = snapshot(5, &["a", "b"], &["a", "a", "b", "b", "a"]);
        assert_eq!(check(&s, &names(&["a", "b"])), None);
        let few = snapshot(1, &["a", "b", "c"], &["c"]);
        assert_eq!(check(&few, &names(&["a", "b", "c"])), None);
    }

    #[test]
    fn a_gap_a_dead_owner_an_absent_worker_and_an_unfair_share_fail() {
        let w = names(&["a", "b"]);
        let gap = snapshot(3, &["a", "b"], &["a", "", "b"]);
        assert!(check(&gap, &w)
            .unwrap()
            .detail
            .contains("p1 of 3 has no owner"));
        let dead = snapshot(2, &["a", "b"], &["a", "c"]);
        assert!(check(&dead, &w).unwrap().detail.contains("not live"));
        let absent = snapshot(2, &["a"], &["a", "a"]);
        assert!(check(&absent, &w)
            .unwrap()
            .detail
            .starts_with("b is not live"));
        let unfair = snapshot(4, &["a", "b"], &["a", "a", "a", "b"]);
        assert!(check(&unfair, &w).unwrap().detail.contains("a holds 3"));
    }
}
