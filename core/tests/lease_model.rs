//! A model check of the lease protocol: several node machines, a model
//! database that judges leases by its own clock, and a network that delays,
//! reorders and loses messages while nodes pause and their clocks run at
//! slightly different rates. At every step at most one node may believe it can
//! write, and that node holds the database's current epoch (LEASE-1, LEASE-2).
//! After the faults stop, some node is hot again (LEASE-3).

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;
use rillflow_core::lease::machine::{Action, Input, NodeMachine, RequestFailed};
use rillflow_core::lease::{
    AcquireOutcome, ClusterView, Grant, LeaseConfig, MonoTime, NodeRole, NodeView, RenewOutcome,
};

/// A small deterministic generator; the seed comes from proptest.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const TTL_MS: u64 = 3_000;
const GRACE_MS: u64 = 1_000;
const END_MS: u64 = 60_000;
const FAULTS_UNTIL_MS: u64 = 35_000;

fn config() -> LeaseConfig {
    LeaseConfig::from_secs(1, 3, 1)
}

#[derive(Debug, Default)]
struct Db {
    epoch: u64,
    leader: Option<usize>,
    expires: Option<u64>,
    last_failover: Option<u64>,
    heartbeat: BTreeMap<usize, (u64, NodeRole, u64)>,
}

#[derive(Debug, Clone)]
enum Event {
    /// The database executes a node's request.
    Execute { node: usize, action: Action },
    /// A node receives an input.
    Deliver { node: usize, input: Input },
    /// A node's timer may have fired.
    Wake { node: usize },
}

struct Node {
    machine: NodeMachine,
    /// Monotonic clock: origin offset and rate in parts per thousand.
    offset_ms: u64,
    rate_permille: u64,
    paused_until: u64,
    exited: bool,
}

impl Node {
    fn clock(&self, t: u64) -> MonoTime {
        MonoTime::from_origin(Duration::from_micros(
            (self.offset_ms * 1000) + t * self.rate_permille,
        ))
    }
    /// The first real time at which this node's clock reads at least `m`.
    fn real_time_of(&self, m: MonoTime) -> u64 {
        let micros = m.since_origin().as_micros() as u64;
        let local = micros.saturating_sub(self.offset_ms * 1000);
        local.div_ceil(self.rate_permille)
    }
}

struct World {
    rng: Rng,
    db: Db,
    nodes: Vec<Node>,
    queue: BTreeMap<(u64, u64), Event>,
    seq: u64,
    now: u64,
}

impl World {
    fn new(seed: u64, n: usize) -> Self {
        let mut rng = Rng(seed | 1);
        let config = config();
        let nodes = (0..n)
            .map(|i| {
                let offset_ms = rng.below(1_000_000);
                let rate_permille = 995 + rng.below(11); // ±0.5 %
                let start = MonoTime::from_origin(Duration::from_millis(offset_ms));
                let machine = NodeMachine::new(format!("n{i}"), config.clone(), start);
                Node {
                    machine,
                    offset_ms,
                    rate_permille,
                    paused_until: 0,
                    exited: false,
                }
            })
            .collect();
        let mut w = World {
            rng,
            db: Db::default(),
            nodes,
            queue: BTreeMap::new(),
            seq: 0,
            now: 0,
        };
        for i in 0..n {
            w.schedule(0, Event::Wake { node: i });
        }
        w
    }

    fn schedule(&mut self, at: u64, event: Event) {
        self.seq += 1;
        self.queue.insert((at, self.seq), event);
    }

    fn faults(&self) -> bool {
        self.now < FAULTS_UNTIL_MS
    }

    fn view(&self, t: u64) -> ClusterView {
        ClusterView {
            cluster: "c".into(),
            epoch: self.db.epoch,
            leader: self.db.leader.map(|i| format!("n{i}")),
            lease_remaining_ms: self.db.expires.map(|e| e as i64 - t as i64),
            min_cold_standbys: 1,
            timing: Default::default(),
            since_last_failover_ms: self.db.last_failover.map(|f| (t - f) as i64),
            promote: None,
            demote: None,
            nodes: self
                .db
                .heartbeat
                .iter()
                .map(|(&i, &(at, role, epoch))| NodeView {
                    name: format!("n{i}"),
                    role,
                    epoch,
                    heartbeat_age_ms: (t - at) as i64,
                })
                .collect(),
            lease_session: None,
        }
    }

    /// The database side: every judgement uses the database's time `t`.
    fn execute(&mut self, node: usize, action: Action, t: u64) -> Option<Input> {
        match action {
            Action::Heartbeat { req, role, epoch } => {
                self.db.heartbeat.insert(node, (t, role, epoch));
                Some(Input::Heartbeat {
                    req,
                    result: Ok(self.view(t)),
                })
            }
            Action::TryAcquire { req } => {
                let free = match (self.db.leader, self.db.expires) {
                    (None, _) | (_, None) => true,
                    (Some(l), _) if l == node => true,
                    (Some(_), Some(e)) => e + GRACE_MS < t,
                };
                let outcome = if free {
                    if self.db.leader.is_some_and(|l| l != node) {
                        self.db.last_failover = Some(t);
                    }
                    self.db.epoch += 1;
                    self.db.leader = Some(node);
                    self.db.expires = Some(t + TTL_MS);
                    AcquireOutcome::Granted(Grant {
                        epoch: self.db.epoch,
                        valid_for: Duration::from_millis(TTL_MS),
                    })
                } else {
                    AcquireOutcome::Denied
                };
                Some(Input::Acquired {
                    req,
                    result: Ok(outcome),
                })
            }
            Action::Renew { req, epoch } => {
                let valid = self.db.leader == Some(node)
                    && self.db.epoch == epoch
                    && self.db.expires.is_some_and(|e| e > t);
                let outcome = if valid {
                    self.db.expires = Some(t + TTL_MS);
                    RenewOutcome::Renewed {
                        valid_for: Duration::from_millis(TTL_MS),
                    }
                } else {
                    RenewOutcome::Lost
                };
                Some(Input::Renewed {
                    req,
                    result: Ok(outcome),
                })
            }
            Action::Release { req, epoch } => {
                if self.db.leader == Some(node) && self.db.epoch == epoch {
                    self.db.leader = None;
                    self.db.expires = Some(t);
                    for other in 0..self.nodes.len() {
                        if other != node {
                            let d = self.rng.below(50);
                            self.schedule(
                                t + d,
                                Event::Deliver {
                                    node: other,
                                    input: Input::PeerReleased,
                                },
                            );
                        }
                    }
                }
                Some(Input::Released { req })
            }
            other => panic!("not a database request: {other:?}"),
        }
    }

    fn perform(&mut self, node: usize, action: Action) {
        let t = self.now;
        match action {
            Action::StartProcessing { .. } => {}
            Action::StopProcessing { epoch } => {
                let d = self.rng.below(500);
                self.schedule(
                    t + d,
                    Event::Deliver {
                        node,
                        input: Input::ProcessingStopped { epoch },
                    },
                );
            }
            Action::Exit => self.nodes[node].exited = true,
            request => {
                let lost = self.faults() && self.rng.chance(10);
                if !lost {
                    let d = if self.faults() {
                        self.rng.below(400)
                    } else {
                        self.rng.below(20)
                    };
                    self.schedule(
                        t + d,
                        Event::Execute {
                            node,
                            action: request,
                        },
                    );
                } else if self.rng.chance(50) {
                    // The connection broke: the driver reports a failure.
                    let failed = match request {
                        Action::Heartbeat { req, .. } => Some(Input::Heartbeat {
                            req,
                            result: Err(RequestFailed),
                        }),
                        Action::TryAcquire { req } => Some(Input::Acquired {
                            req,
                            result: Err(RequestFailed),
                        }),
                        Action::Renew { req, .. } => Some(Input::Renewed {
                            req,
                            result: Err(RequestFailed),
                        }),
                        Action::Release { req, .. } => Some(Input::Released { req }),
                        _ => None,
                    };
                    if let Some(input) = failed {
                        self.schedule(t + 1, Event::Deliver { node, input });
                    }
                }
            }
        }
    }

    fn step(&mut self, node: usize, input: Input) {
        let n = &mut self.nodes[node];
        if n.exited {
            return;
        }
        let now = n.clock(self.now);
        n.machine.handle(now, input);
        while let Some(action) = self.nodes[node].machine.poll_action() {
            self.perform(node, action);
        }
        if let Some(next) = self.nodes[node].machine.poll_timeout() {
            let at = self.nodes[node].real_time_of(next).max(self.now + 1);
            self.schedule(at, Event::Wake { node });
        }
    }

    fn check_safety(&self) -> Result<(), String> {
        let believers: Vec<(usize, u64)> = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| !n.exited)
            .filter_map(|(i, n)| n.machine.may_write(n.clock(self.now)).map(|e| (i, e)))
            .collect();
        if believers.len() > 1 {
            return Err(format!("t={} several writers: {believers:?}", self.now));
        }
        if let Some(&(i, e)) = believers.first() {
            let current = self.db.leader == Some(i)
                && self.db.epoch == e
                && self.db.expires.is_some_and(|x| x > self.now);
            if !current {
                return Err(format!(
                    "t={} n{i} believes epoch {e} but the database has {:?}",
                    self.now, self.db
                ));
            }
        }
        Ok(())
    }

    fn run(&mut self, shutdowns: &[(u64, usize)]) -> Result<(), String> {
        for &(at, node) in shutdowns {
            self.schedule(
                at,
                Event::Deliver {
                    node,
                    input: Input::Shutdown,
                },
            );
        }
        while let Some(((t, _), event)) = self.queue.pop_first() {
            if t > END_MS {
                break;
            }
            self.now = t;
            // A paused node handles nothing until it resumes.
            let target = match &event {
                Event::Deliver { node, .. } | Event::Wake { node } => Some(*node),
                Event::Execute { .. } => None,
            };
            if let Some(node) = target {
                if self.nodes[node].paused_until > t {
                    let until = self.nodes[node].paused_until;
                    self.schedule(until, event);
                    continue;
                }
                if self.faults() && self.rng.chance(2) {
                    self.nodes[node].paused_until = t + self.rng.below(8_000);
                }
            }
            match event {
                Event::Execute { node, action } => {
                    if let Some(reply) = self.execute(node, action, t) {
                        let lost = self.faults() && self.rng.chance(10);
                        if !lost {
                            let d = if self.faults() {
                                self.rng.below(400)
                            } else {
                                self.rng.below(20)
                            };
                            self.schedule(t + d, Event::Deliver { node, input: reply });
                        }
                    }
                }
                Event::Deliver { node, input } => self.step(node, input),
                Event::Wake { node } => self.step(node, Input::Tick),
            }
            self.check_safety()?;
        }
        Ok(())
    }

    fn someone_hot(&self) -> bool {
        self.nodes
            .iter()
            .any(|n| !n.exited && n.machine.may_write(n.clock(self.now)).is_some())
    }

    fn everyone_exited(&self) -> bool {
        self.nodes.iter().all(|n| n.exited)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn at_most_one_writer_and_recovery_after_faults(
        seed in any::<u64>(),
        nodes in 2usize..5,
        shutdown in proptest::option::of((0u64..FAULTS_UNTIL_MS, 0usize..5)),
    ) {
        let mut world = World::new(seed, nodes);
        let shutdowns: Vec<(u64, usize)> = shutdown.into_iter().filter(|(_, n)| *n < nodes).collect();
        if let Err(violation) = world.run(&shutdowns) {
            panic!("seed {seed} nodes {nodes} shutdowns {shutdowns:?}: {violation}");
        }
        prop_assert!(world.everyone_exited() || world.someone_hot(),
            "seed {seed} nodes {nodes}: nobody hot {} s after the faults stopped; db {:?}",
            (END_MS - FAULTS_UNTIL_MS) / 1000, world.db);
    }
}
