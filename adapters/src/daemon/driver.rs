//! The one loop that runs a node's lease machine against a lease store.
//!
//! Production runs it with the Postgres store; the simulation runs the same
//! function with a store that talks to a simulated database host (SIM-1).

use std::sync::Arc;

use rillflow_core::lease::machine::{Action, Input, NodeMachine, RequestFailed};
use rillflow_core::lease::{LeaseConfig, NodeRole};
use tokio::sync::{mpsc, watch};

use super::lease_store::{LeaseError, LeaseStore, NodeIdentity};
use super::processor::Processor;
use super::write_gate::{Permit, TokioClock, WriteGate};

/// Events from outside the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Another node released the lease (database notification).
    PeerReleased,
    /// The session the leader's lease is bound to ended.
    LeaderSessionEnded,
    /// Stop gracefully (SIGINT/SIGTERM).
    Shutdown,
}

/// Why the loop ended badly.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// Another daemon took this node's identity; two processes must not
    /// share one name.
    #[error(transparent)]
    Replaced(LeaseError),
}

enum Event {
    Input(Input),
    Fatal(LeaseError),
}

struct Running {
    epoch: u64,
    stop: watch::Sender<bool>,
}

/// Runs a node until its machine exits.
pub struct Driver<S, P> {
    store: Arc<S>,
    identity: NodeIdentity,
    config: LeaseConfig,
    processor: P,
    clock: TokioClock,
    watched: Option<watch::Sender<Option<i64>>>,
}

impl<S: LeaseStore + 'static, P: Processor> Driver<S, P> {
    /// A driver for `identity` on `store`.
    pub fn new(
        store: Arc<S>,
        identity: NodeIdentity,
        config: LeaseConfig,
        processor: P,
        clock: TokioClock,
    ) -> Self {
        Driver {
            store,
            identity,
            config,
            processor,
            clock,
            watched: None,
        }
    }

    /// Publishes the leader session this node should wait on (see
    /// [`watch_leader_sessions`](super::session_watch::watch_leader_sessions))
    /// to `targets` after every step.
    pub fn watch_sessions(mut self, targets: watch::Sender<Option<i64>>) -> Self {
        self.watched = Some(targets);
        self
    }

    /// Drives `machine`: performs its actions, feeds back their outcomes,
    /// wakes it at its timeouts, forwards `signals`, and publishes its write
    /// permit to `permits` after every step. Returns when the machine exits.
    pub async fn run(
        mut self,
        mut machine: NodeMachine,
        mut signals: mpsc::Receiver<Signal>,
        permits: watch::Sender<Option<Permit>>,
        gate: WriteGate,
    ) -> Result<(), DriverError> {
        let (events_tx, mut events) = mpsc::unbounded_channel::<Event>();
        let mut running: Option<Running> = None;
        let mut signals_open = true;
        let mut role = machine.role();
        loop {
            // Publish the permit before performing anything: a processor
            // started below checks it at once, and a permit that was just
            // withdrawn must be gone before the stop is announced.
            publish(&permits, &machine);
            if let Some(targets) = &self.watched {
                targets.send_if_modified(|t| {
                    let next = machine.session_to_watch();
                    std::mem::replace(t, next) != next
                });
            }
            while let Some(action) = machine.poll_action() {
                if action == Action::Exit {
                    permits.send_replace(None);
                    if let Err(e) = self.store.mark_stopped(&self.identity).await {
                        tracing::warn!(error = %e, "could not mark the node stopped; its heartbeat will age out");
                    }
                    tracing::info!(node = %self.identity.node, "node stopped");
                    return Ok(());
                }
                self.perform(action, &events_tx, &mut running, &gate);
            }
            if machine.role() != role {
                log_role_change(
                    &self.identity,
                    role,
                    machine.role(),
                    machine.write_permit().map(|p| p.0),
                );
                role = machine.role();
            }
            let wake = machine.poll_timeout().map(|t| self.clock.instant(t));
            tokio::select! {
                biased;
                Some(event) = events.recv() => match event {
                    Event::Input(input) => machine.handle(self.clock.now(), input),
                    Event::Fatal(e) => {
                        if let Some(r) = running.take() {
                            let _ = r.stop.send(true);
                        }
                        permits.send_replace(None);
                        return Err(DriverError::Replaced(e));
                    }
                },
                signal = signals.recv(), if signals_open => {
                    let input = match signal {
                        Some(Signal::PeerReleased) => Input::PeerReleased,
                        Some(Signal::LeaderSessionEnded) => Input::LeaderSessionEnded,
                        Some(Signal::Shutdown) => Input::Shutdown,
                        None => {
                            signals_open = false;
                            continue;
                        }
                    };
                    machine.handle(self.clock.now(), input);
                }
                _ = sleep_until(wake) => machine.handle(self.clock.now(), Input::Tick),
            }
        }
    }

    /// Starts one action. Requests run as their own tasks so that a slow
    /// statement never delays a renewal or the lease deadline.
    fn perform(
        &mut self,
        action: Action,
        events: &mpsc::UnboundedSender<Event>,
        running: &mut Option<Running>,
        gate: &WriteGate,
    ) {
        let store = self.store.clone();
        let id = self.identity.clone();
        let tx = events.clone();
        let (ttl, grace) = (self.config.lease_ttl, self.config.lease_grace);
        match action {
            Action::Heartbeat { req, role, epoch } => {
                tokio::spawn(async move {
                    let event = match store.heartbeat(&id, role, epoch).await {
                        Err(e @ LeaseError::Replaced { .. }) => Event::Fatal(e),
                        result => Event::Input(Input::Heartbeat {
                            req,
                            result: failed_as_unknown(result, "heartbeat"),
                        }),
                    };
                    let _ = tx.send(event);
                });
            }
            Action::TryAcquire { req } => {
                tokio::spawn(async move {
                    let result =
                        failed_as_unknown(store.try_acquire(&id, ttl, grace).await, "acquire");
                    let _ = tx.send(Event::Input(Input::Acquired { req, result }));
                });
            }
            Action::Renew { req, epoch } => {
                tokio::spawn(async move {
                    let result = failed_as_unknown(store.renew(&id, epoch, ttl).await, "renew");
                    let _ = tx.send(Event::Input(Input::Renewed { req, result }));
                });
            }
            Action::Release { req, epoch } => {
                tokio::spawn(async move {
                    let _ = failed_as_unknown(store.release(&id, epoch).await, "release");
                    let _ = tx.send(Event::Input(Input::Released { req }));
                });
            }
            Action::StartProcessing { epoch } => {
                if let Some(old) = running.take() {
                    let _ = old.stop.send(true);
                }
                let (stop, stop_rx) = watch::channel(false);
                let task = self.processor.spawn(epoch, gate.clone(), stop_rx);
                tokio::spawn(async move {
                    if let Err(e) = task.await {
                        tracing::error!(epoch, error = %e, "projection task failed");
                    }
                    let _ = tx.send(Event::Input(Input::ProcessingStopped { epoch }));
                });
                *running = Some(Running { epoch, stop });
            }
            Action::StopProcessing { epoch } => match running.take() {
                Some(r) if r.epoch == epoch => {
                    let _ = r.stop.send(true);
                }
                other => {
                    *running = other;
                    let _ = tx.send(Event::Input(Input::ProcessingStopped { epoch }));
                }
            },
            Action::Exit => unreachable!("handled by the loop"),
        }
    }
}

fn publish(permits: &watch::Sender<Option<Permit>>, machine: &NodeMachine) {
    permits.send_replace(
        machine
            .write_permit()
            .map(|(epoch, until)| Permit { epoch, until }),
    );
}

fn failed_as_unknown<T>(result: Result<T, LeaseError>, what: &str) -> Result<T, RequestFailed> {
    result.map_err(|e| {
        tracing::warn!(error = %e, "{what} failed");
        RequestFailed
    })
}

async fn sleep_until(wake: Option<tokio::time::Instant>) {
    match wake {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn log_role_change(id: &NodeIdentity, from: NodeRole, to: NodeRole, epoch: Option<u64>) {
    match to {
        NodeRole::Hot => {
            tracing::info!(cluster = %id.cluster, node = %id.node, epoch, "promoted to hot")
        }
        _ => {
            tracing::info!(cluster = %id.cluster, node = %id.node, from = from.as_str(), to = to.as_str(), "role changed")
        }
    }
}
