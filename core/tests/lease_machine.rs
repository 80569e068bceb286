//! The node machine emits exactly these actions, step by step.

use std::time::Duration;

use rillflow_core::lease::machine::{Action, Input, NodeMachine, RequestFailed};
use rillflow_core::lease::{
    AcquireOutcome, ClusterView, Grant, LeaseConfig, LeaseSession, MonoTime, NodeRole, NodeView,
    PromoteRequest, RenewOutcome,
};

const SEC: Duration = Duration::from_secs(1);

fn at(secs: f64) -> MonoTime {
    MonoTime::from_origin(Duration::from_secs_f64(secs))
}

/// heartbeat 5 s, ttl 30 s, grace 5 s, margin 3 s, request timeout 5 s.
fn config() -> LeaseConfig {
    LeaseConfig::from_secs(5, 30, 5)
}

fn drain(m: &mut NodeMachine) -> Vec<Action> {
    std::iter::from_fn(|| m.poll_action()).collect()
}

fn node(name: &str, role: NodeRole, epoch: u64) -> NodeView {
    NodeView {
        name: name.into(),
        role,
        epoch,
        heartbeat_age_ms: 100,
    }
}

/// A cluster nobody has ever led, with `a` (and maybe others) cold.
fn free_view(names: &[&str]) -> ClusterView {
    ClusterView {
        cluster: "c".into(),
        epoch: 0,
        leader: None,
        lease_remaining_ms: None,
        min_cold_standbys: 1,
        timing: Default::default(),
        since_last_failover_ms: None,
        promote: None,
        demote: None,
        nodes: names.iter().map(|n| node(n, NodeRole::Cold, 0)).collect(),
        lease_session: None,
    }
}

fn held_view(leader: &str, epoch: u64, names: &[&str]) -> ClusterView {
    let mut v = free_view(names);
    v.epoch = epoch;
    v.leader = Some(leader.into());
    v.lease_remaining_ms = Some(20_000);
    for n in &mut v.nodes {
        if n.name == leader {
            n.role = NodeRole::Hot;
            n.epoch = epoch;
        }
    }
    v
}

/// Ticks every heartbeat from t = 5 s to before `until`, failing every
/// renewal the machine asks for.
fn fail_renewals_until(m: &mut NodeMachine, until: f64) {
    let mut t = 5.0;
    while t < until {
        m.handle(at(t), Input::Tick);
        for a in drain(m) {
            if let Action::Renew { req, .. } = a {
                m.handle(
                    at(t),
                    Input::Renewed {
                        req,
                        result: Err(RequestFailed),
                    },
                );
            }
        }
        t += 5.0;
    }
}

/// Drives `a` from start to hot at epoch 1 at t = 0.
fn hot_node() -> NodeMachine {
    let mut m = NodeMachine::new("a", config(), at(0.0));
    m.handle(at(0.0), Input::Tick);
    assert_eq!(
        drain(&mut m),
        vec![Action::Heartbeat {
            req: 1,
            role: NodeRole::Cold,
            epoch: 0
        }]
    );
    m.handle(
        at(0.0),
        Input::Heartbeat {
            req: 1,
            result: Ok(free_view(&["a"])),
        },
    );
    assert_eq!(drain(&mut m), vec![Action::TryAcquire { req: 2 }]);
    let grant = Grant {
        epoch: 1,
        valid_for: 30 * SEC,
    };
    m.handle(
        at(0.0),
        Input::Acquired {
            req: 2,
            result: Ok(AcquireOutcome::Granted(grant)),
        },
    );
    assert_eq!(
        drain(&mut m),
        vec![
            Action::StartProcessing { epoch: 1 },
            Action::Heartbeat {
                req: 3,
                role: NodeRole::Hot,
                epoch: 1
            }
        ]
    );
    m.handle(
        at(0.0),
        Input::Heartbeat {
            req: 3,
            result: Ok(held_view("a", 1, &["a"])),
        },
    );
    assert_eq!(drain(&mut m), vec![]);
    m
}

#[test]
fn a_lone_node_becomes_hot() {
    let m = hot_node();
    assert_eq!(m.role(), NodeRole::Hot);
    assert_eq!(m.may_write(at(1.0)), Some(1));
}

#[test]
fn a_spurious_tick_does_nothing() {
    let mut m = hot_node();
    m.handle(at(1.0), Input::Tick);
    m.handle(at(2.5), Input::Tick);
    assert_eq!(drain(&mut m), vec![]);
    assert_eq!(m.poll_timeout(), Some(at(5.0)), "next heartbeat");
}

#[test]
fn renews_on_every_heartbeat_and_extends_from_the_send_time() {
    let mut m = hot_node();
    m.handle(at(5.0), Input::Tick);
    assert_eq!(
        drain(&mut m),
        vec![
            Action::Heartbeat {
                req: 4,
                role: NodeRole::Hot,
                epoch: 1
            },
            Action::Renew { req: 5, epoch: 1 }
        ]
    );
    // The reply comes 2 s late; validity counts from when it was sent.
    m.handle(
        at(7.0),
        Input::Renewed {
            req: 5,
            result: Ok(RenewOutcome::Renewed {
                valid_for: 30 * SEC,
            }),
        },
    );
    assert_eq!(drain(&mut m), vec![]);
    assert_eq!(m.may_write(at(31.9)), Some(1));
    assert_eq!(m.may_write(at(32.0)), None, "5 + 30 - 3 s margin");
}

#[test]
fn stops_at_its_own_deadline_when_renewals_fail() {
    let mut m = hot_node();
    fail_renewals_until(&mut m, 27.0);
    assert_eq!(m.may_write(at(26.9)), Some(1));
    m.handle(at(27.0), Input::Tick);
    let actions = drain(&mut m);
    assert_eq!(
        actions[0],
        Action::StopProcessing { epoch: 1 },
        "{actions:?}"
    );
    assert_eq!(m.role(), NodeRole::Cold);
    assert_eq!(m.may_write(at(27.0)), None);
}

/// Renewals fail until the node's own deadline passes, then it is asked to
/// stop: the database may still count its lease, so it gives epoch 1 back
/// before exiting rather than leaving standbys to wait for the expiry.
#[test]
fn a_lease_lapsed_on_the_local_clock_is_released_on_shutdown() {
    let mut m = hot_node();
    fail_renewals_until(&mut m, 27.0);
    m.handle(at(27.0), Input::Tick);
    drain(&mut m);
    assert_eq!(m.role(), NodeRole::Cold);
    m.handle(at(27.5), Input::Shutdown);
    let actions = drain(&mut m);
    let Some(Action::Release { req, epoch: 1 }) = actions.first().cloned() else {
        panic!("releases the lapsed epoch first: {actions:?}");
    };
    m.handle(at(27.6), Input::Released { req });
    assert_eq!(drain(&mut m), vec![Action::Exit]);
}

#[test]
fn a_lost_lease_stops_processing_at_once_and_stands_by() {
    let mut m = hot_node();
    m.handle(at(5.0), Input::Tick);
    drain(&mut m);
    m.handle(
        at(5.1),
        Input::Renewed {
            req: 5,
            result: Ok(RenewOutcome::Lost),
        },
    );
    let actions = drain(&mut m);
    assert_eq!(actions, vec![Action::StopProcessing { epoch: 1 }]);
    assert_eq!(m.role(), NodeRole::Cold);
    assert!(!m.is_stopped(), "losing the lease is no reason to exit");
    // A lease the database said was lost is not released on shutdown.
    m.handle(at(5.2), Input::Shutdown);
    assert_eq!(drain(&mut m), vec![Action::Exit]);
}

#[test]
fn graceful_shutdown_finishes_the_batch_releases_and_exits() {
    let mut m = hot_node();
    m.handle(at(1.0), Input::Shutdown);
    assert_eq!(drain(&mut m), vec![Action::StopProcessing { epoch: 1 }]);
    assert_eq!(
        m.may_write(at(1.5)),
        Some(1),
        "the current batch may still commit"
    );
    m.handle(at(2.0), Input::ProcessingStopped { epoch: 1 });
    assert_eq!(drain(&mut m), vec![Action::Release { req: 4, epoch: 1 }]);
    assert_eq!(m.may_write(at(2.0)), None);
    m.handle(at(2.1), Input::Released { req: 4 });
    assert_eq!(drain(&mut m), vec![Action::Exit]);
    assert!(m.is_stopped());
    assert_eq!(m.poll_timeout(), None);
}

#[test]
fn a_cold_node_exits_at_once_on_shutdown() {
    let mut m = NodeMachine::new("b", config(), at(0.0));
    m.handle(at(0.0), Input::Tick);
    drain(&mut m);
    m.handle(at(0.1), Input::Shutdown);
    assert_eq!(drain(&mut m), vec![Action::Exit]);
}

#[test]
fn a_standby_defers_to_a_valid_lease_and_wakes_on_release() {
    let mut m = NodeMachine::new("b", config(), at(0.0));
    m.handle(at(0.0), Input::Tick);
    drain(&mut m);
    m.handle(
        at(0.0),
        Input::Heartbeat {
            req: 1,
            result: Ok(held_view("a", 3, &["a", "b"])),
        },
    );
    assert_eq!(drain(&mut m), vec![], "the lease is held");
    m.handle(at(1.0), Input::PeerReleased);
    assert_eq!(
        drain(&mut m),
        vec![Action::Heartbeat {
            req: 2,
            role: NodeRole::Cold,
            epoch: 0
        }]
    );
    let mut released = free_view(&["a", "b"]);
    released.epoch = 3;
    released.lease_remaining_ms = Some(-5);
    m.handle(
        at(1.01),
        Input::Heartbeat {
            req: 2,
            result: Ok(released),
        },
    );
    assert_eq!(
        drain(&mut m),
        vec![Action::TryAcquire { req: 3 }],
        "a release is free at once"
    );
}

#[test]
fn demote_request_hands_over_and_holds_off() {
    let mut m = hot_node();
    let mut view = held_view("a", 1, &["a", "b"]);
    view.demote = Some("a".into());
    m.handle(at(5.0), Input::Tick);
    let beat = drain(&mut m);
    assert_eq!(
        beat[0],
        Action::Heartbeat {
            req: 4,
            role: NodeRole::Hot,
            epoch: 1
        }
    );
    m.handle(
        at(5.0),
        Input::Heartbeat {
            req: 4,
            result: Ok(view),
        },
    );
    assert_eq!(drain(&mut m), vec![Action::StopProcessing { epoch: 1 }]);
    m.handle(at(5.2), Input::ProcessingStopped { epoch: 1 });
    assert_eq!(drain(&mut m), vec![Action::Release { req: 6, epoch: 1 }]);
    m.handle(at(5.3), Input::Released { req: 6 });
    assert_eq!(
        drain(&mut m),
        vec![Action::Heartbeat {
            req: 7,
            role: NodeRole::Cold,
            epoch: 1
        }]
    );
    // Nobody took the lease, but this node leaves it alone for the holdoff.
    m.handle(
        at(5.3),
        Input::Heartbeat {
            req: 7,
            result: Ok(free_view(&["a", "b"])),
        },
    );
    assert_eq!(drain(&mut m), vec![]);
    assert!(!m.is_stopped());

    // The operator promotes it back: the hold-off is no reason to leave
    // the cluster without a hot node.
    let mut promoted = free_view(&["a", "b"]);
    promoted.promote = Some(PromoteRequest {
        node: "a".into(),
        force: false,
    });
    m.handle(at(5.5), Input::PeerReleased);
    let look = drain(&mut m);
    assert_eq!(
        look,
        vec![Action::Heartbeat {
            req: 8,
            role: NodeRole::Cold,
            epoch: 1
        }]
    );
    m.handle(
        at(5.5),
        Input::Heartbeat {
            req: 8,
            result: Ok(promoted),
        },
    );
    assert_eq!(drain(&mut m), vec![Action::TryAcquire { req: 9 }]);
}

#[test]
fn replies_to_superseded_requests_are_ignored() {
    let mut m = NodeMachine::new("a", config(), at(0.0));
    m.handle(at(0.0), Input::Tick);
    drain(&mut m);
    m.handle(
        at(0.0),
        Input::Heartbeat {
            req: 1,
            result: Ok(free_view(&["a"])),
        },
    );
    assert_eq!(drain(&mut m), vec![Action::TryAcquire { req: 2 }]);
    // The acquire times out (outcome unknown) ...
    m.handle(at(5.0), Input::Tick);
    assert_eq!(m.role(), NodeRole::Cold);
    drain(&mut m);
    // ... and its late grant must not make the node act.
    let grant = Grant {
        epoch: 1,
        valid_for: 30 * SEC,
    };
    m.handle(
        at(6.0),
        Input::Acquired {
            req: 2,
            result: Ok(AcquireOutcome::Granted(grant)),
        },
    );
    assert_eq!(drain(&mut m), vec![]);
    assert_eq!(m.may_write(at(6.0)), None);
}

#[test]
fn a_grant_slower_than_the_lease_is_not_used() {
    let mut m = NodeMachine::new(
        "a",
        LeaseConfig {
            request_timeout: 60 * SEC,
            ..config()
        },
        at(0.0),
    );
    m.handle(at(0.0), Input::Tick);
    drain(&mut m);
    m.handle(
        at(0.0),
        Input::Heartbeat {
            req: 1,
            result: Ok(free_view(&["a"])),
        },
    );
    drain(&mut m);
    let grant = Grant {
        epoch: 1,
        valid_for: 30 * SEC,
    };
    m.handle(
        at(28.0),
        Input::Acquired {
            req: 2,
            result: Ok(AcquireOutcome::Granted(grant)),
        },
    );
    assert_eq!(m.may_write(at(28.0)), None);
    assert!(!drain(&mut m).contains(&Action::StartProcessing { epoch: 1 }));
}

#[test]
fn superseded_leader_stops_without_releasing() {
    let mut m = hot_node();
    m.handle(at(5.0), Input::Tick);
    drain(&mut m);
    m.handle(
        at(5.0),
        Input::Heartbeat {
            req: 4,
            result: Ok(held_view("b", 2, &["a", "b"])),
        },
    );
    assert_eq!(drain(&mut m), vec![Action::StopProcessing { epoch: 1 }]);
    assert_eq!(m.role(), NodeRole::Cold);
}

#[test]
fn work_that_ends_on_its_own_hands_the_lease_over_and_holds_off() {
    let mut m = hot_node();
    m.handle(at(1.0), Input::ProcessingStopped { epoch: 1 });
    assert_eq!(drain(&mut m), vec![Action::Release { req: 4, epoch: 1 }]);
    assert_eq!(m.may_write(at(1.0)), None, "no writes while handing over");
    m.handle(at(1.1), Input::Released { req: 4 });
    assert_eq!(
        drain(&mut m),
        vec![Action::Heartbeat {
            req: 5,
            role: NodeRole::Cold,
            epoch: 1
        }]
    );
    assert!(!m.is_stopped());
    // The lease is free, but this node leaves it to others for one ttl.
    m.handle(
        at(1.2),
        Input::Heartbeat {
            req: 5,
            result: Ok(free_view(&["a"])),
        },
    );
    assert_eq!(drain(&mut m), vec![]);
    m.handle(at(31.2), Input::Tick);
    let beat = drain(&mut m);
    let Some(Action::Heartbeat { req, .. }) = beat.first().cloned() else {
        panic!("expected a heartbeat, got {beat:?}")
    };
    m.handle(
        at(31.3),
        Input::Heartbeat {
            req,
            result: Ok(free_view(&["a"])),
        },
    );
    assert_eq!(drain(&mut m), vec![Action::TryAcquire { req: req + 1 }]);
}

#[test]
fn a_batch_that_outlives_the_lease_is_abandoned() {
    let mut m = hot_node();
    m.handle(at(1.0), Input::Shutdown);
    assert_eq!(drain(&mut m), vec![Action::StopProcessing { epoch: 1 }]);
    // The work never reports back. At the lease deadline (30 s − 3 s margin)
    // the node stops waiting, releases and goes on to exit.
    assert_eq!(
        m.poll_timeout(),
        Some(at(5.0)),
        "heartbeats go on meanwhile"
    );
    m.handle(at(27.0), Input::Tick);
    assert_eq!(
        drain(&mut m),
        vec![
            Action::Release { req: 4, epoch: 1 },
            Action::Heartbeat {
                req: 5,
                role: NodeRole::Demoting,
                epoch: 1
            },
        ]
    );
    assert_eq!(m.may_write(at(27.0)), None);
    m.handle(at(27.1), Input::Released { req: 4 });
    assert_eq!(drain(&mut m), vec![Action::Exit]);
}

fn bound(mut v: ClusterView, key: i64, alive: bool) -> ClusterView {
    v.lease_session = Some(LeaseSession { key, alive });
    v
}

#[test]
fn a_standby_watches_the_leaders_session_and_looks_when_it_ends() {
    let mut m = NodeMachine::new("b", config(), at(0.0));
    m.handle(at(0.0), Input::Tick);
    drain(&mut m);
    assert_eq!(m.session_to_watch(), None, "nothing seen yet");
    m.handle(
        at(0.0),
        Input::Heartbeat {
            req: 1,
            result: Ok(bound(held_view("a", 3, &["a", "b"]), 7, true)),
        },
    );
    assert_eq!(drain(&mut m), vec![], "the lease is held");
    assert_eq!(m.session_to_watch(), Some(7));

    m.handle(at(1.0), Input::LeaderSessionEnded);
    assert_eq!(
        drain(&mut m),
        vec![Action::Heartbeat {
            req: 2,
            role: NodeRole::Cold,
            epoch: 0
        }]
    );
    m.handle(
        at(1.01),
        Input::Heartbeat {
            req: 2,
            result: Ok(bound(held_view("a", 3, &["a", "b"]), 7, false)),
        },
    );
    assert_eq!(
        drain(&mut m),
        vec![Action::TryAcquire { req: 3 }],
        "an ended session frees the lease at once"
    );
    assert_eq!(m.session_to_watch(), None, "nothing left to wait on");
}

#[test]
fn a_leader_watches_nobody_and_steps_down_when_its_session_ended() {
    let mut m = hot_node();
    m.handle(at(5.0), Input::Tick);
    drain(&mut m);
    m.handle(
        at(5.0),
        Input::Heartbeat {
            req: 4,
            result: Ok(bound(held_view("a", 1, &["a", "b"]), 9, true)),
        },
    );
    assert_eq!(drain(&mut m), vec![]);
    assert_eq!(m.session_to_watch(), None, "its own session");
    m.handle(at(10.0), Input::Tick);
    drain(&mut m);
    m.handle(
        at(10.0),
        Input::Heartbeat {
            req: 6,
            result: Ok(bound(held_view("a", 1, &["a", "b"]), 9, false)),
        },
    );
    assert_eq!(
        drain(&mut m),
        vec![
            Action::StopProcessing { epoch: 1 },
            // 7 is the renewal sent with the beat at 10 s.
            Action::Heartbeat {
                req: 8,
                role: NodeRole::Cold,
                epoch: 1
            }
        ]
    );
    assert_eq!(m.role(), NodeRole::Cold);
    assert_eq!(m.may_write(at(10.0)), None);
    // A shutdown now gives the lease back rather than leaving it bound.
    m.handle(at(10.5), Input::Shutdown);
    assert!(matches!(
        drain(&mut m).as_slice(),
        [Action::Release { epoch: 1, .. }]
    ));
}

/// A frozen node wakes with every timer due: its work may stop on its own
/// (its permit lapsed) before the machine sees its deadline. That is a
/// lapse, not a failed work: it stands by without a holdoff, so a release
/// right after is taken at once.
#[test]
fn work_stopped_by_a_lapsed_permit_leaves_no_holdoff() {
    let mut m = hot_node();
    // Frozen from 0 s to 40 s: the lease (30 s − margin) lapsed meanwhile.
    m.handle(at(40.0), Input::ProcessingStopped { epoch: 1 });
    let actions = drain(&mut m);
    assert!(
        !actions.iter().any(|a| matches!(a, Action::Release { .. })),
        "{actions:?}"
    );
    assert_eq!(m.role(), NodeRole::Cold);
    let hb = actions
        .iter()
        .find_map(|a| match a {
            Action::Heartbeat { req, .. } => Some(*req),
            _ => None,
        })
        .expect("it reports cold at once");
    m.handle(at(40.1), Input::PeerReleased);
    drain(&mut m);
    let mut released = free_view(&["a", "b"]);
    released.epoch = 2;
    released.lease_remaining_ms = Some(-5);
    m.handle(
        at(40.2),
        Input::Heartbeat {
            req: hb + 1,
            result: Ok(released),
        },
    );
    assert!(matches!(
        drain(&mut m).as_slice(),
        [Action::TryAcquire { .. }]
    ));
}
