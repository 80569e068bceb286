//! How the slow path goes back over a batch that failed: which events to
//! try next, as a run or alone. Pure: the runner performs each step and
//! reports how it went.

use std::ops::Range;

/// The next thing to try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayStep {
    /// Apply these events (indices into the batch's handled events) as one
    /// run, in a savepoint.
    Run(Range<usize>),
    /// Apply this event alone, in a savepoint: a failure is its own.
    Alone(usize),
    /// Every event is done.
    Done,
}

/// Plans the replay of `n` handled events after a batch failed.
///
/// Calling contract: ask [`BatchReplay::step`], perform it, report it with
/// exactly one of the `run_*` or `alone_*` methods, repeat until
/// [`ReplayStep::Done`] (or until the runner stops: a retry or stop policy,
/// a spent budget). [`BatchReplay::done`] counts the events applied or
/// passed so far.
///
/// A run that fails at index k > 0 means the events before k applied: they
/// go as one run, then event k alone. A failure at index 0 may be a guess
/// (a set-based statement cannot tell which event broke it): that event
/// goes alone, and if it goes through, the planner is *guessing* from then
/// on and halves each failing run until the failing event is alone, so an
/// unattributed failure costs O(log n) attempts. Every step either applies
/// or passes an event, or tries a strictly shorter run, so it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchReplay {
    n: usize,
    /// Events before it are done.
    next: usize,
    /// End of the next attempt; `next` or `next + 1` means alone.
    end: usize,
    /// End of the shortest run known to fail, holding a failing event at or
    /// after `next`.
    bad_end: Option<usize>,
    guessing: bool,
    /// The event alone now was blamed by a failure at index 0.
    blamed_first: bool,
    one_by_one: bool,
}

impl BatchReplay {
    /// A replay of `n` events. `suspect`: the index of an event that failed
    /// before (the fast path's failure, or a scheduled retry): the events
    /// before it go first as one run, then it alone.
    pub fn new(n: usize, suspect: Option<usize>) -> Self {
        let end = suspect.filter(|s| *s < n).unwrap_or(n);
        BatchReplay {
            n,
            next: 0,
            end,
            bad_end: (end < n).then_some(end + 1),
            guessing: false,
            blamed_first: end == 0,
            one_by_one: false,
        }
    }

    /// A replay that tries every event alone (after a batch ran out of its
    /// time budget: the first event gets a whole budget to itself).
    pub fn one_by_one(n: usize) -> Self {
        BatchReplay {
            one_by_one: true,
            ..BatchReplay::new(n, None)
        }
    }

    /// Events done (applied or passed), all before the next step's.
    pub fn done(&self) -> usize {
        self.next
    }

    /// What to try next.
    pub fn step(&self) -> ReplayStep {
        if self.next >= self.n {
            ReplayStep::Done
        } else if self.one_by_one || self.end <= self.next + 1 {
            ReplayStep::Alone(self.next)
        } else {
            ReplayStep::Run(self.next..self.end)
        }
    }

    /// The run applied.
    pub fn run_applied(&mut self) {
        self.next = self.end;
        self.end = self.after();
    }

    /// The run failed, blaming its event at `index`.
    pub fn run_failed(&mut self, index: usize) {
        let len = self.end - self.next;
        if index > 0 && index < len {
            self.bad_end = Some(self.next + index + 1);
            self.end = self.next + index;
        } else if self.guessing {
            self.bad_end = Some(self.end);
            self.end = self.next + len / 2;
        } else {
            self.bad_end = Some(self.next + 1);
            self.end = self.next;
            self.blamed_first = true;
        }
    }

    /// The event alone applied.
    pub fn alone_applied(&mut self) {
        self.next += 1;
        self.guessing |= self.blamed_first;
        self.blamed_first = false;
        self.end = self.after();
    }

    /// The event alone failed and is passed (dead-lettered).
    pub fn alone_passed(&mut self) {
        self.next += 1;
        self.blamed_first = false;
        self.bad_end = None;
        self.end = self.n;
    }

    /// After `next` moved: the rest of a run known to fail, halved when
    /// guessing, else the blamed event alone; or everything left.
    fn after(&mut self) -> usize {
        match self.bad_end {
            Some(b) if self.next < b && self.guessing => self.next + (b - self.next) / 2,
            Some(b) if self.next < b => self.next,
            _ => {
                self.bad_end = None;
                self.n
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Replays `n` events where `poison` always fail and a run reports the
    /// index of its first poison event (`exact`) or 0; returns the steps.
    fn replay(mut r: BatchReplay, poison: &[usize], exact: bool) -> Vec<ReplayStep> {
        let mut steps = Vec::new();
        loop {
            let step = r.step();
            steps.push(step.clone());
            match step {
                ReplayStep::Done => return steps,
                ReplayStep::Alone(i) if poison.contains(&i) => r.alone_passed(),
                ReplayStep::Alone(_) => r.alone_applied(),
                ReplayStep::Run(range) => match range.clone().find(|i| poison.contains(i)) {
                    None => r.run_applied(),
                    Some(p) => r.run_failed(if exact { p - range.start } else { 0 }),
                },
            }
            assert!(steps.len() < 1000, "no end: {steps:?}");
        }
    }

    use ReplayStep::{Alone, Done, Run};

    #[test]
    fn an_exact_failure_costs_a_run_before_and_one_after() {
        assert_eq!(
            replay(BatchReplay::new(500, Some(302)), &[302], true),
            [Run(0..302), Alone(302), Run(303..500), Done]
        );
        // Without a suspect, the first run finds it.
        assert_eq!(
            replay(BatchReplay::new(10, None), &[4, 7], true),
            [
                Run(0..10),
                Run(0..4),
                Alone(4),
                Run(5..10),
                Run(5..7),
                Alone(7),
                Run(8..10),
                Done
            ]
        );
        // A scheduled retry is the first event.
        assert_eq!(
            replay(BatchReplay::new(5, Some(0)), &[0], true),
            [Alone(0), Run(1..5), Done]
        );
    }

    #[test]
    fn an_unattributed_failure_is_found_by_halving() {
        let steps = replay(BatchReplay::new(400, Some(0)), &[277], false);
        assert_eq!(steps[..2], [Alone(0), Run(1..400)]);
        assert!(steps.contains(&Alone(277)), "{steps:?}");
        assert!(
            steps.len() <= 2 + 2 * 9 + 2,
            "{} steps: {steps:?}",
            steps.len()
        );
        assert_eq!(steps[steps.len() - 2..], [Run(278..400), Done]);
    }

    #[test]
    fn a_transient_failure_goes_alone_then_the_rest_as_one_run() {
        // The suspect goes through alone: nothing known to fail remains.
        assert_eq!(
            replay(BatchReplay::new(6, Some(3)), &[], true),
            [Run(0..3), Alone(3), Run(4..6), Done]
        );
    }

    #[test]
    fn one_by_one_tries_every_event_alone() {
        assert_eq!(
            replay(BatchReplay::one_by_one(3), &[1], true),
            [Alone(0), Alone(1), Alone(2), Done]
        );
    }

    #[test]
    fn every_plan_ends_with_each_event_applied_or_passed_once() {
        for n in 0..40 {
            for p in 0..n {
                for exact in [true, false] {
                    for suspect in [None, Some(0), Some(p)] {
                        let steps = replay(BatchReplay::new(n, suspect), &[p], exact);
                        let alone: Vec<&ReplayStep> =
                            steps.iter().filter(|s| **s == Alone(p)).collect();
                        assert_eq!(alone.len(), 1, "n {n} p {p} {steps:?}");
                    }
                }
            }
        }
    }
}
