//! What the ownership scenario draws from its seed besides the faults: the
//! partition count it starts with, when each worker joins, and the live
//! repartitions.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::Rng;
use rillflow_core::ownership::OwnerTiming;

/// Partition counts a repartition picks from.
pub const MAX_PARTITIONS: u32 = 8;

/// The ownership scenario's plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnershipPlan {
    /// The projection's partition count at registration.
    pub initial_partitions: u32,
    /// When each worker joins (zero: at the start).
    pub starts: Vec<Duration>,
    /// Repartitions: when, and to how many partitions.
    pub repartitions: Vec<(Duration, u32)>,
    /// Heartbeat and partition lease ttl of every worker.
    pub timing: OwnerTiming,
}

impl Default for OwnershipPlan {
    fn default() -> Self {
        OwnershipPlan {
            initial_partitions: 1,
            starts: Vec::new(),
            repartitions: Vec::new(),
            timing: OwnerTiming {
                heartbeat: Duration::from_secs(1),
                ttl: Duration::from_secs(3),
            },
        }
    }
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

impl OwnershipPlan {
    /// The plan for `workers` workers whose faults end at `heal_at`.
    pub fn draw(rng: &mut StdRng, workers: usize, heal_at: Duration) -> Self {
        let heal_ms = u64::try_from(heal_at.as_millis()).unwrap_or(u64::MAX);
        let initial_partitions = rng.random_range(1..=MAX_PARTITIONS);
        // The first worker is there from the start; each other joins late
        // with probability 0.4, within the first half of the faults.
        let starts = (0..workers)
            .map(|i| {
                let late = i > 0 && rng.random_bool(0.4);
                if late {
                    ms(rng.random_range(1_000..(heal_ms / 2).max(1_001)))
                } else {
                    Duration::ZERO
                }
            })
            .collect();
        let n = rng.random_range(1..=3);
        let mut times: Vec<u64> = (0..n)
            .map(|_| rng.random_range(2_000..heal_ms.saturating_sub(2_000).max(2_001)))
            .collect();
        times.sort_unstable();
        let mut count = initial_partitions;
        let repartitions = times
            .into_iter()
            .map(|t| {
                // Always a change: a repartition to the same count does
                // nothing.
                let to = loop {
                    let to = rng.random_range(1..=MAX_PARTITIONS);
                    if to != count {
                        break to;
                    }
                };
                count = to;
                (ms(t), to)
            })
            .collect();
        OwnershipPlan {
            initial_partitions,
            starts,
            repartitions,
            ..OwnershipPlan::default()
        }
    }

    /// The plan, for a failure report.
    pub fn describe(&self) -> String {
        let starts: Vec<String> = self
            .starts
            .iter()
            .map(|s| format!("{:.3}s", s.as_secs_f64()))
            .collect();
        let resizes: Vec<String> = self
            .repartitions
            .iter()
            .map(|(at, to)| format!("{:.3}s -> {to}", at.as_secs_f64()))
            .collect();
        format!(
            "partitions {} at the start; worker starts [{}]; repartitions [{}]; heartbeat {:?}, ttl {:?}\n",
            self.initial_partitions,
            starts.join(", "),
            resizes.join(", "),
            self.timing.heartbeat,
            self.timing.ttl
        )
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn plans_change_the_count_within_range_before_the_heal() {
        let heal = Duration::from_secs(20);
        for seed in 0..50 {
            let plan = OwnershipPlan::draw(&mut StdRng::seed_from_u64(seed), 4, heal);
            assert_eq!(plan.starts.len(), 4);
            assert_eq!(plan.starts[0], Duration::ZERO);
            assert!(plan.starts.iter().all(|s| *s < heal / 2));
            assert!((1..=3).contains(&plan.repartitions.len()));
            let mut count = plan.initial_partitions;
            for (at, to) in &plan.repartitions {
                assert!(*at < heal && (1..=MAX_PARTITIONS).contains(to) && *to != count);
                count = *to;
            }
            assert!(plan.timing.validate().is_ok());
        }
    }
}
