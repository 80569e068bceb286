//! LEASE-3 with session-bound leases: how soon after the hot node's lease
//! session ends (its process crashed, or the database ended the session)
//! another grant must follow. Derived from the protocol, message by
//! message, so the bound is tight and a slower takeover is a finding.
//!
//! A standby that watches the leader's session (`watch_leader_sessions`)
//! is woken when the session ends, heartbeats, and asks for the lease. One
//! that cannot be watching yet (it has not seen the leader's key, or its
//! watch is still recovering from a fault) sees the ended session at its
//! next heartbeat instead. Whoever is first gets the grant, so the bound is
//! the earliest of the standbys' own bounds. LEASE-4's failover interval
//! can hold every standby back; each then asks again at its first
//! heartbeat after the interval.
//!
//! A woken standby asks only if it is the candidate (`choose_candidate`:
//! the freshest heartbeat, ties to the first name). Its own heartbeat is
//! the freshest in its own view, unless another standby's fell in the same
//! millisecond (in the model, the same 10 ms step: standbys woken by the
//! same end heartbeat together). A standby held off after it gave a lease
//! up (`demote_holdoff`, after its work stopped on its own, as a fenced
//! writer's does) does not ask, yet may win such a tie; then nobody asks
//! until the standbys' next heartbeats. While one may be held off, the
//! bound is that of a standby that is not watching, from the holdoff's
//! end if that is later.

use std::time::Duration;

use rillflow_core::lease::LeaseConfig;

use crate::client::db_conn::CALL_TIMEOUT;
use crate::harness::faults::Fault;
use crate::model::lease::records::GrantRecord;

/// The wake, in one-way messages: the closed socket (or nothing, when the
/// database ended the session itself) reaching the database and the
/// waiter's answer; or, when a wait had just timed out, that answer, a
/// new wait, and its answer.
const WAKE: u32 = 4;
/// A heartbeat on a connection of its own: connect, request, reply.
const LOOK: u32 = 3;
/// A grant on an open lease session.
const ACQUIRE: u32 = 3;
/// A grant whose lease session ended (a database restart, or a fault that
/// ended it): the try that finds it ended, a new session (connect, open,
/// answer), the try again.
const ACQUIRE_REOPENED: u32 = 9;
/// From a restart to a node watching: it listens, registers and opens its
/// session (three exchanges of three), heartbeats (its view names the
/// leader's key) and its first wait reaches the database (connect,
/// request).
const BOOT: u32 = 14;
/// A node whose own session ended learns at its next beat: its renewal
/// finds the session ended, opens another and is told `Lost` (nine), or
/// its heartbeat's view says so (three); then it heartbeats as a standby
/// and asks for the lease, on a session it may still have to open.
const OWN_RETURN: u32 = ACQUIRE_REOPENED + LOOK + LOOK;

/// What the bound is derived from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionTakeover {
    /// The nodes' heartbeat.
    pub heartbeat: Duration,
    /// The database's lock timeout: a wait on an old key ends by then.
    pub lock_timeout: Duration,
    /// LEASE-4's least time between automatic failovers.
    pub min_failover_interval: Duration,
    /// The slowest one-way message: turmoil's latency cap and a tick.
    pub one_way: Duration,
    /// How long a waiter's call may go unanswered before it fails, and the
    /// watch loop opens another after its backoff (at most a heartbeat).
    pub call_timeout: Duration,
    /// How long a release may go unanswered before the node stands by.
    pub request_timeout: Duration,
    /// How long a node that gave its lease up leaves it to others.
    pub demote_holdoff: Duration,
    /// Every node.
    pub nodes: Vec<String>,
    /// When each node asked to release a lease (the trace's record).
    pub releases: Vec<(String, Duration)>,
    /// The promotions the database recorded: whom, and when.
    pub promotions: Vec<(String, Duration)>,
}

impl SessionTakeover {
    /// For nodes running `config` with `lock_timeout`, messages taking up
    /// to `one_way`.
    pub fn new(
        config: &LeaseConfig,
        lock_timeout: Duration,
        one_way: Duration,
        nodes: &[String],
    ) -> Self {
        SessionTakeover {
            heartbeat: config.heartbeat,
            lock_timeout,
            min_failover_interval: config.min_failover_interval,
            one_way,
            call_timeout: CALL_TIMEOUT,
            request_timeout: config.request_timeout,
            demote_holdoff: config.demote_holdoff,
            nodes: nodes.to_vec(),
            releases: Vec::new(),
            promotions: Vec::new(),
        }
    }

    /// The same, knowing when nodes released leases.
    pub fn with_releases(self, releases: Vec<(String, Duration)>) -> Self {
        SessionTakeover { releases, ..self }
    }

    /// The same, knowing which promotions the database recorded and when.
    pub fn with_promotions(self, promotions: Vec<(String, Duration)>) -> Self {
        SessionTakeover { promotions, ..self }
    }

    /// The node a promotion recorded before `at` still names at `at`: the
    /// latest promotion replaces any earlier one, and a grant to its node
    /// fulfils it.
    fn pending_promotion(&self, at: Duration, grants: &[GrantRecord]) -> Option<&str> {
        let (node, recorded) = self.promotions.iter().rev().find(|(_, t)| *t <= at)?;
        let fulfilled = grants
            .iter()
            .any(|g| g.node == *node && g.at > *recorded && g.at <= at);
        (!fulfilled).then_some(node.as_str())
    }

    /// Until when a standby other than `ended`, running since its last
    /// boot and not granted since, may be held off at `at` after releasing
    /// a lease (the holdoff starts when its release is answered, or given
    /// up on).
    fn held_off_until(
        &self,
        before: &[(Duration, Fault)],
        at: Duration,
        ended: &str,
        grants: &[GrantRecord],
    ) -> Option<Duration> {
        self.releases
            .iter()
            .filter(|(node, released)| {
                let booted = last(before, |f| matches!(f, Fault::Restart(n) if n == node));
                let granted_since = grants
                    .iter()
                    .any(|g| g.node == *node && g.at > *released && g.at <= at);
                node != ended
                    && *released <= at
                    && booted.is_none_or(|b| b <= *released)
                    && !granted_since
                    && !down(before, node)
            })
            .map(|(_, released)| *released + self.request_timeout + self.demote_holdoff)
            .filter(|until| *until > at)
            .max()
    }

    /// When every running node but `silenced` is held off at `faults[i]`
    /// after a lease it released (a demotion, a handoff, work that stopped
    /// on its own): the bound after which the first of them asks again, a
    /// beat after its hold-off and a grant on a session it may have to
    /// open. None when some running node is free to ask at once.
    pub fn all_held_off(
        &self,
        faults: &[(Duration, Fault)],
        i: usize,
        silenced: &str,
        grants: &[GrantRecord],
    ) -> Option<Duration> {
        let (at, before) = (faults[i].0, &faults[..i]);
        let mut earliest: Option<Duration> = None;
        for node in self.nodes.iter().filter(|n| *n != silenced) {
            if down(before, node) {
                continue;
            }
            let booted = last(before, |f| matches!(f, Fault::Restart(n) if n == node));
            let until = self
                .releases
                .iter()
                .filter(|(n, released)| {
                    n == node
                        && *released <= at
                        && booted.is_none_or(|b| b <= *released)
                        && !grants
                            .iter()
                            .any(|g| g.node == *node && g.at > *released && g.at <= at)
                })
                .map(|(_, released)| *released + self.request_timeout + self.demote_holdoff)
                .max()
                .filter(|until| *until > at)?;
            earliest = Some(earliest.map_or(until, |e| e.min(until)));
        }
        earliest.map(|until| until + self.beat() + self.msgs(LOOK + ACQUIRE_REOPENED))
    }

    fn msgs(&self, n: u32) -> Duration {
        self.one_way * n
    }

    /// A heartbeat on a clock running up to 2000 ppm slow.
    fn beat(&self) -> Duration {
        self.heartbeat + self.heartbeat / 500
    }

    /// The bound when every standby is watching with its session open:
    /// wake, look, acquire.
    pub fn tight(&self) -> Duration {
        self.msgs(WAKE + LOOK + ACQUIRE)
    }

    /// The same when the standby must replace its ended session first.
    pub fn tight_reopened(&self) -> Duration {
        self.msgs(WAKE + LOOK + ACQUIRE_REOPENED)
    }

    /// The latest a grant must follow the end of `ended`'s lease session
    /// at `faults[i]` (its crash, or `EndSession`): the earliest of the
    /// other nodes' bounds and, when it keeps running, its own.
    pub fn deadline(
        &self,
        faults: &[(Duration, Fault)],
        i: usize,
        ended: &str,
        grants: &[GrantRecord],
    ) -> Option<Duration> {
        let (at, fault) = &faults[i];
        let at = *at;
        let before = &faults[..i];
        let interval_end = grants
            .iter()
            .rev()
            .find(|g| g.failover && g.at <= at)
            .map(|g| g.at + self.min_failover_interval)
            .filter(|end| *end > at);
        // Asks at `noticed` at the latest; when that may fall before the
        // interval's end, it is refused and asks again at its first beat
        // after it.
        let then = |noticed: Duration| match interval_end {
            Some(end) => noticed.max(end + self.beat()),
            None => noticed,
        };
        let leader_granted = grants
            .iter()
            .rev()
            .find(|g| g.node == ended && g.at <= at)
            .map_or(Duration::ZERO, |g| g.at);
        // A standby learns the leader's key from its next heartbeat's view,
        // and waits on it once a wait on an older key has ended.
        let key_seen =
            leader_granted + self.beat() + self.msgs(LOOK) + self.lock_timeout + self.msgs(3);
        let db_back =
            last(before, |f| *f == Fault::RestartDb).map(|t| t + self.heartbeat + self.msgs(2));
        let held_off = self.held_off_until(before, at, ended, grants);
        // While a promotion names a live node, the other standbys leave
        // the lease to it (`should_try_acquire`): the bound is that node's
        // own. One that is down stays live in their views for a ttl, and
        // they wait that out: no session bound then.
        let promoted = self.pending_promotion(at, grants).filter(|p| *p != ended);
        if promoted.is_some_and(|p| down(before, p)) {
            return None;
        }
        let mut best: Option<Duration> = None;
        for node in self
            .nodes
            .iter()
            .filter(|n| *n != ended && promoted.is_none_or(|p| p == n.as_str()))
        {
            if down(before, node) {
                continue;
            }
            let booted = last(before, |f| matches!(f, Fault::Restart(n) if n == node));
            let link_back = last(
                before,
                |f| matches!(f, Fault::Repair(n) | Fault::Release(n) | Fault::Thaw(n) if n == node),
            )
            .map(|t| t + self.call_timeout + self.heartbeat + self.msgs(2));
            let ready = [
                Some(booted.unwrap_or(Duration::ZERO) + self.msgs(BOOT)),
                Some(key_seen),
                db_back,
                link_back,
            ]
            .into_iter()
            .flatten()
            .max()
            .expect("some");
            let noticed = match held_off {
                Some(until) => until + self.beat(),
                None if at >= ready => at + self.msgs(WAKE),
                None => at + self.beat(),
            };
            let last_opened = booted.into_iter().chain(
                grants
                    .iter()
                    .filter(|g| g.node == *node && g.at <= at)
                    .map(|g| g.at),
            );
            let opened = last_opened.max().unwrap_or(Duration::ZERO);
            let session_ended = before.iter().any(|(t, f)| {
                *t >= opened
                    && match f {
                        Fault::CrashDb => true,
                        Fault::EndSession(n) => n == node,
                        _ => false,
                    }
            });
            let acquire = if session_ended {
                ACQUIRE_REOPENED
            } else {
                ACQUIRE
            };
            let own = then(noticed) + self.msgs(LOOK + acquire);
            best = Some(best.map_or(own, |b| b.min(own)));
        }
        if matches!(fault, Fault::EndSession(_)) && promoted.is_none() {
            let own = then(at + self.beat()) + self.msgs(OWN_RETURN);
            best = Some(best.map_or(own, |b| b.min(own)));
        }
        best
    }
}

/// The time of the last fault in `faults` that `matches`.
fn last(faults: &[(Duration, Fault)], matches: impl Fn(&Fault) -> bool) -> Option<Duration> {
    faults
        .iter()
        .rev()
        .find(|(_, f)| matches(f))
        .map(|(t, _)| *t)
}

/// Whether `node` is crashed or stopped after `faults`.
fn down(faults: &[(Duration, Fault)], node: &str) -> bool {
    faults
        .iter()
        .rev()
        .find_map(|(_, f)| match f {
            Fault::Crash(n) | Fault::Stop(n) if n == node => Some(true),
            Fault::Restart(n) if n == node => Some(false),
            _ => None,
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn a_standby_held_off_after_its_release_may_win_the_tie_of_a_wake() {
        let t = timing().with_releases(vec![("b".to_owned(), ms(8_000))]);
        let faults = [(ms(10_000), Fault::Crash("a".into()))];
        // b (held off until 8 + 1 + 3 s) may be the candidate of every
        // view until then; nobody may ask before the next beats after it.
        let d = t.deadline(&faults, 0, "a", &[grant(0, "a", false)]);
        assert_eq!(d, Some(ms(12_000 + 1_002 + 180)));
        // Not once the holdoff is over, nor for a restarted node.
        let faults = [(ms(13_000), Fault::Crash("a".into()))];
        let d = t.deadline(&faults, 0, "a", &[grant(0, "a", false)]);
        assert_eq!(d, Some(ms(13_300)));
        let faults = [
            (ms(9_000), Fault::Crash("b".into())),
            (ms(9_300), Fault::Restart("b".into())),
            (ms(10_000), Fault::Crash("a".into())),
        ];
        let d = t.deadline(&faults, 2, "a", &[grant(0, "a", false)]);
        assert_eq!(d, Some(ms(10_300)));
    }

    fn timing() -> SessionTakeover {
        SessionTakeover::new(
            &LeaseConfig::from_secs(1, 3, 1),
            ms(500),
            ms(30),
            &["a".to_owned(), "b".to_owned()],
        )
    }

    fn grant(at: u64, node: &str, failover: bool) -> GrantRecord {
        GrantRecord {
            at: ms(at),
            node: node.to_owned(),
            epoch: 1,
            failover,
            promoted: false,
        }
    }

    #[test]
    fn a_watched_crash_gets_the_tight_bound() {
        let t = timing();
        assert_eq!(t.tight(), ms(300));
        let faults = [(ms(10_000), Fault::Crash("a".into()))];
        let d = t.deadline(&faults, 0, "a", &[grant(0, "a", false)]);
        assert_eq!(d, Some(ms(10_300)));
    }

    #[test]
    fn a_standby_that_cannot_be_watching_yet_looks_at_its_next_beat() {
        let t = timing();
        // b restarted 200 ms before the crash: still booting.
        let faults = [
            (ms(9_000), Fault::Crash("b".into())),
            (ms(9_800), Fault::Restart("b".into())),
            (ms(10_000), Fault::Crash("a".into())),
        ];
        let d = t.deadline(&faults, 2, "a", &[grant(0, "a", false)]);
        assert_eq!(d, Some(ms(10_000 + 1_002 + 180)));
        // a was granted just before: b has not seen its key.
        let faults = [(ms(10_000), Fault::Crash("a".into()))];
        let d = t.deadline(&faults, 0, "a", &[grant(9_500, "a", false)]);
        assert_eq!(d, Some(ms(10_000 + 1_002 + 180)));
    }

    #[test]
    fn the_failover_interval_holds_everyone_back_to_their_next_beat() {
        let t = timing();
        let faults = [(ms(10_000), Fault::Crash("a".into()))];
        let grants = [grant(8_000, "a", true)];
        // The interval ends at 11 s; b, woken at once, asks again at its
        // first beat after it.
        let d = t.deadline(&faults, 0, "a", &grants);
        assert_eq!(d, Some(ms(11_000 + 1_002 + 180)));
        // A node whose own session ended may learn before the interval's
        // end, though its beat may come after it: refused, it asks again
        // a beat later.
        let alone = SessionTakeover {
            nodes: vec!["a".to_owned()],
            ..timing()
        };
        let faults = [(ms(10_500), Fault::EndSession("a".into()))];
        let d = alone.deadline(&faults, 0, "a", &grants);
        assert_eq!(d, Some(ms(11_000 + 1_002 + 30 * 15)));
    }

    #[test]
    fn a_standby_whose_session_ended_pays_for_a_new_one() {
        let t = timing();
        let faults = [
            (ms(5_000), Fault::CrashDb),
            (ms(5_500), Fault::RestartDb),
            (ms(10_000), Fault::Crash("a".into())),
        ];
        let d = t.deadline(&faults, 2, "a", &[grant(6_000, "a", false)]);
        assert_eq!(d, Some(ms(10_000 + 30 * (4 + 3 + 9))));
    }

    #[test]
    fn a_node_whose_session_ended_may_take_the_lease_back_itself() {
        let t = SessionTakeover {
            nodes: vec!["a".to_owned()],
            ..timing()
        };
        let faults = [(ms(10_000), Fault::EndSession("a".into()))];
        let d = t.deadline(&faults, 0, "a", &[grant(0, "a", false)]);
        assert_eq!(d, Some(ms(10_000 + 1_002 + 30 * 15)));
        // Nobody to take over after a crash of the only node.
        let faults = [(ms(10_000), Fault::Crash("a".into()))];
        assert_eq!(t.deadline(&faults, 0, "a", &[grant(0, "a", false)]), None);
    }
}
