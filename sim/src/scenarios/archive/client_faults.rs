//! Faults on the archive scenario's client hosts (writers, operator,
//! mover), drawn from the seed: crashes, lost requests, lost replies and
//! held links, one at a time. They run alongside the node faults and touch
//! no node, so the lease checks' one-fault-at-a-time reading of the node
//! schedule still holds.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::Rng;

use crate::harness::faults::Fault;

/// The mover: crashed more often than the others, since being resumable
/// after a crash at any point is what it promises.
pub const MOVER: &str = "mover";

/// Faults in time order, all before `until`, each undone before the next.
pub fn schedule(rng: &mut StdRng, clients: &[String], until: Duration) -> Vec<(Duration, Fault)> {
    let mut plan = Vec::new();
    let mut t = Duration::from_millis(rng.random_range(500..2_000));
    while t < until {
        let client = clients[rng.random_range(0..clients.len())].clone();
        let end = (t + Duration::from_millis(rng.random_range(100..3_000))).min(until);
        let (start, stop) = match rng.random_range(0..6) {
            0 => (Fault::Crash(client.clone()), Fault::Restart(client)),
            1 => (
                Fault::Crash(MOVER.to_owned()),
                Fault::Restart(MOVER.to_owned()),
            ),
            2 => (
                Fault::PartitionFromDb(client.clone()),
                Fault::Repair(client),
            ),
            3 => (Fault::PartitionToDb(client.clone()), Fault::Repair(client)),
            4 => (Fault::Partition(client.clone()), Fault::Repair(client)),
            _ => (Fault::Hold(client.clone()), Fault::Release(client)),
        };
        plan.push((t, start));
        plan.push((end, stop));
        t = end + Duration::from_millis(rng.random_range(200..2_000));
    }
    plan
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn faults_come_one_at_a_time_and_end_before_the_heal() {
        let clients = vec!["w1".to_owned(), MOVER.to_owned()];
        let until = Duration::from_secs(40);
        for seed in 0..20 {
            let plan = schedule(&mut StdRng::seed_from_u64(seed), &clients, until);
            assert!(!plan.is_empty() && plan.chunks_exact(2).remainder().is_empty());
            assert!(plan.windows(2).all(|w| w[0].0 <= w[1].0));
            assert!(plan.iter().all(|(at, _)| *at <= until));
            for pair in plan.chunks(2) {
                let undone = matches!(
                    (&pair[0].1, &pair[1].1),
                    (Fault::Crash(a), Fault::Restart(b))
                    | (Fault::PartitionFromDb(a) | Fault::PartitionToDb(a) | Fault::Partition(a), Fault::Repair(b))
                    | (Fault::Hold(a), Fault::Release(b)) if a == b
                );
                assert!(undone, "{pair:?}");
            }
        }
    }
}
