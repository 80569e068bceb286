//! Fair share of partitions among live workers: exact decisions for joins,
//! leaves and crashes, and a model of workers acting on it round by round.

use std::collections::BTreeMap;

use proptest::prelude::*;
use rillflow_core::ownership::{decide, quotas, Move};

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn owned(list: &[(u32, &str)]) -> BTreeMap<u32, String> {
    list.iter().map(|(p, o)| (*p, o.to_string())).collect()
}

#[test]
fn quotas_split_evenly_in_name_order() {
    let q = quotas(8, &names(&["c", "a", "b"]));
    assert_eq!(
        q.into_iter().collect::<Vec<_>>(),
        vec![("a".into(), 3), ("b".into(), 3), ("c".into(), 2)]
    );
    assert!(quotas(8, &[]).is_empty());
    assert_eq!(quotas(2, &names(&["a", "a", "b", "c"]))["c"], 0);
}

#[test]
fn a_joining_worker_gets_partitions_the_loaded_one_gives_up() {
    let workers = names(&["a", "b"]);
    let owners = owned(&[(0, "a"), (1, "a"), (2, "a"), (3, "a")]);
    assert_eq!(
        decide("a", 4, &workers, &owners),
        vec![Move::Release(3), Move::Release(2)]
    );
    assert_eq!(
        decide("b", 4, &workers, &owners),
        vec![],
        "nothing free yet"
    );
    let owners = owned(&[(0, "a"), (1, "a")]);
    assert_eq!(decide("a", 4, &workers, &owners), vec![]);
    assert_eq!(
        decide("b", 4, &workers, &owners),
        vec![Move::Claim(2), Move::Claim(3)]
    );
}

#[test]
fn a_dead_workers_partitions_are_claimed_by_the_others() {
    // c is gone; its partitions count as free.
    let workers = names(&["a", "b"]);
    let owners = owned(&[(0, "a"), (1, "b"), (2, "c"), (3, "c")]);
    assert_eq!(decide("a", 4, &workers, &owners), vec![Move::Claim(2)]);
    assert_eq!(decide("b", 4, &workers, &owners), vec![Move::Claim(2)]);
    // Both try partition 2; the database's epoch lets one win, and the
    // loser's next picture shows 3 free.
    let owners = owned(&[(0, "a"), (1, "b"), (2, "a"), (3, "c")]);
    assert_eq!(decide("b", 4, &workers, &owners), vec![Move::Claim(3)]);
    // A worker that is no longer live gives everything up.
    assert_eq!(
        decide("c", 4, &workers, &owned(&[(2, "c"), (3, "c")])),
        vec![Move::Release(3), Move::Release(2)]
    );
}

/// One round: every live worker, in the given order, looks at the database
/// and acts; a claim succeeds only if the partition is still free (the
/// epoch check), a release frees it at once.
fn round(
    partitions: u32,
    workers: &[String],
    order: &[usize],
    owners: &mut BTreeMap<u32, String>,
) -> Result<(), String> {
    let quota = quotas(partitions, workers);
    // Every live worker acts once per round, in an order drawn from `order`.
    let mut turns: Vec<usize> = (0..workers.len()).collect();
    turns.sort_by_key(|i| (order[i % order.len()], *i));
    for i in turns {
        let me = &workers[i];
        for m in decide(me, partitions, workers, owners) {
            match m {
                Move::Release(p) => {
                    let count = owners.values().filter(|o| *o == me).count() as u32;
                    if count <= quota[me] {
                        return Err(format!("{me} released {p} within its quota"));
                    }
                    owners.remove(&p);
                }
                Move::Claim(p) => {
                    let free = owners.get(&p).is_none_or(|o| !workers.contains(o));
                    if free {
                        owners.insert(p, me.clone());
                    }
                }
            }
        }
    }
    Ok(())
}

proptest! {
    /// Whatever joins, leaves and crashes happen, once membership holds
    /// still, three rounds give every partition exactly one live owner and
    /// every worker exactly its quota; nobody within its quota ever gives a
    /// partition up.
    #[test]
    fn workers_converge_to_a_fair_share(
        partitions in 1u32..24,
        changes in proptest::collection::vec(
            (proptest::collection::btree_set(0usize..6, 1..6), proptest::collection::vec(0usize..6, 6)),
            1..8,
        ),
    ) {
        let mut owners: BTreeMap<u32, String> = BTreeMap::new();
        for (members, order) in changes {
            let workers: Vec<String> = members.iter().map(|m| format!("w{m}")).collect();
            for _ in 0..3 {
                round(partitions, &workers, &order, &mut owners).map_err(TestCaseError::fail)?;
            }
            let quota = quotas(partitions, &workers);
            prop_assert_eq!(owners.len() as u32, partitions, "every partition owned");
            for o in owners.values() {
                prop_assert!(workers.contains(o), "{o} is not live");
            }
            for (w, q) in &quota {
                let n = owners.values().filter(|o| *o == w).count() as u32;
                prop_assert_eq!(n, *q, "{} owns {} of its quota {}", w, n, q);
            }
        }
    }
}
