//! How far behind the primary a standby replays, over time: phases drawn
//! from the run's seed, each with its own lag, as load, network and replay
//! conflicts make a real standby's lag wander.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::Rng;

/// The lag from each phase's start until the next phase.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayLag {
    /// Phase starts (database time) and their lag, in time order.
    phases: Vec<(Duration, Duration)>,
}

impl ReplayLag {
    /// The same lag throughout.
    pub fn constant(lag: Duration) -> ReplayLag {
        ReplayLag {
            phases: vec![(Duration::ZERO, lag)],
        }
    }

    /// Phases of 0.5 to 4 s until `until`: a third of them nearly caught up
    /// (under 20 ms), the rest 20 to 600 ms behind.
    pub fn draw(rng: &mut StdRng, until: Duration) -> ReplayLag {
        let mut phases = Vec::new();
        let mut t = Duration::ZERO;
        while t < until {
            let lag = if rng.random_bool(1.0 / 3.0) {
                rng.random_range(0..20)
            } else {
                rng.random_range(20..600)
            };
            phases.push((t, Duration::from_millis(lag)));
            t += Duration::from_millis(rng.random_range(500..4_000));
        }
        ReplayLag { phases }
    }

    /// The lag of a commit made at `at`.
    pub fn at(&self, at: Duration) -> Duration {
        self.phases
            .iter()
            .take_while(|(start, _)| *start <= at)
            .last()
            .map_or(Duration::ZERO, |(_, lag)| *lag)
    }

    /// The phases, for a failure report.
    pub fn describe(&self) -> String {
        let phases: Vec<String> = self
            .phases
            .iter()
            .map(|(at, lag)| format!("{:.1}s:{}ms", at.as_secs_f64(), lag.as_millis()))
            .collect();
        format!("standby replay lag {}\n", phases.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn each_commit_takes_the_lag_of_its_phase() {
        let lag = ReplayLag {
            phases: vec![
                (Duration::ZERO, Duration::from_millis(5)),
                (Duration::from_secs(2), Duration::from_millis(300)),
            ],
        };
        assert_eq!(lag.at(Duration::from_secs(1)), Duration::from_millis(5));
        assert_eq!(lag.at(Duration::from_secs(2)), Duration::from_millis(300));
        assert_eq!(lag.at(Duration::from_secs(9)), Duration::from_millis(300));
    }

    #[test]
    fn drawn_phases_cover_the_run_and_stay_under_600_ms() {
        let lag = ReplayLag::draw(&mut StdRng::seed_from_u64(3), Duration::from_secs(40));
        assert!(lag.phases.last().unwrap().0 < Duration::from_secs(40));
        assert!(lag
            .phases
            .iter()
            .all(|(_, l)| *l < Duration::from_millis(600)));
        assert_eq!(
            lag,
            ReplayLag::draw(&mut StdRng::seed_from_u64(3), Duration::from_secs(40))
        );
    }
}
