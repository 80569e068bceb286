//! An application host of the archive scenario: writers appending to a
//! small set of streams with random expected versions, most with
//! idempotency keys, holding their transactions open for a while and
//! rolling some back; retrying keyed appends whose outcome a lost reply
//! left unknown; resending some acknowledged appends later, as an
//! at-least-once client does, when their events may have moved cold; and
//! reading streams back with archived data.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rillflow_core::ExpectedVersion;

use crate::client::db_conn::DbConn;
use crate::harness::trace::{sim_now, Trace};
use crate::hosts::archive::append_attempt::{attempt, resend, Attempt};
use crate::hosts::archive::ledger::{Fate, Intent, Ledger};
use crate::protocol::{ArchiveRequest, Reply, Request};

/// Concurrent writers per host.
const WRITERS: u64 = 1;
/// Streams the scenario uses (writers and the archivist alike).
pub const STREAMS: u32 = 10;
/// The first few take most appends, so their appends race; the others see
/// a few a second, so the mover can empty them of hot events and make them
/// cold while they still get appends now and then.
const BUSY_STREAMS: u32 = 3;

/// What one writer host runs with.
#[derive(Debug, Clone)]
pub struct WriterSpec {
    /// Host name.
    pub name: String,
    /// Seed of its choices.
    pub seed: u64,
    /// No new appends from here on (unknown outcomes are still resolved).
    pub stop_at: Duration,
    /// Incarnations so far: a restarted host draws new choices.
    pub boots: Arc<AtomicU64>,
}

/// An acknowledged keyed append to send again at `due`.
struct Resend {
    due: Duration,
    id: u64,
    intent: Intent,
    acked: (u64, u64),
}

struct Writer {
    rng: StdRng,
    who: String,
    ledger: Ledger,
    trace: Trace,
    known: BTreeMap<u32, u64>,
    resends: Vec<Resend>,
}

/// Runs the writers until the host is crashed.
pub async fn run(spec: WriterSpec, ledger: Ledger, trace: Trace) -> turmoil::Result {
    let boot = spec.boots.fetch_add(1, Ordering::SeqCst);
    for w in 0..WRITERS {
        let salt = (w + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (boot << 40);
        let mut writer = Writer {
            rng: StdRng::seed_from_u64(spec.seed ^ salt),
            who: format!("{}.{w}", spec.name),
            ledger: ledger.clone(),
            trace: trace.clone(),
            known: BTreeMap::new(),
            resends: Vec::new(),
        };
        let stop_at = spec.stop_at;
        tokio::spawn(async move {
            while sim_now() < stop_at {
                writer.step().await;
                let gap = writer.rng.random_range(20..80);
                tokio::time::sleep(Duration::from_millis(gap)).await;
            }
        });
    }
    std::future::pending::<()>().await;
    Ok(())
}

/// Mostly what the writer last saw, so some appends win races and some
/// lose them; sometimes a stale version or a kind that cannot hold.
fn pick_expected(rng: &mut StdRng, known: u64) -> ExpectedVersion {
    match rng.random_range(0..10) {
        0..=3 => ExpectedVersion::Any,
        4 => ExpectedVersion::NoStream,
        5 => ExpectedVersion::Exists,
        6 => ExpectedVersion::Exact(known.saturating_sub(1)),
        _ => ExpectedVersion::Exact(known),
    }
}

impl Writer {
    async fn step(&mut self) {
        let now = sim_now();
        if let Some(i) = self.resends.iter().position(|r| r.due <= now) {
            let r = self.resends.swap_remove(i);
            self.resend(r).await;
        } else if self.rng.random_bool(0.1) {
            self.read_back().await;
        } else {
            self.write_one().await;
        }
    }

    async fn write_one(&mut self) {
        let rng = &mut self.rng;
        let stream = if rng.random_bool(0.8) {
            rng.random_range(0..BUSY_STREAMS)
        } else {
            rng.random_range(BUSY_STREAMS..STREAMS)
        };
        let expected = pick_expected(rng, self.known.get(&stream).copied().unwrap_or(0));
        let (id, intent) = self
            .ledger
            .open(stream, rng.random_range(1..=3), rng.random_bool(0.7));
        let commit = rng.random_bool(0.9);
        let hold = Duration::from_millis(rng.random_range(0..80));
        let fate = loop {
            let backoff = Duration::from_millis(self.rng.random_range(50..300));
            match attempt(&intent, expected, commit, hold).await {
                Attempt::Settled(fate) => break fate,
                Attempt::NotCommitted(why) => {
                    self.note(format!("append {id} not made ({why}); again"));
                }
                Attempt::Unknown(why) if intent.key.is_some() => {
                    self.note(format!(
                        "append {id} outcome unknown ({why}); retrying with its key"
                    ));
                }
                Attempt::Unknown(why) => {
                    self.note(format!(
                        "append {id} outcome unknown ({why}); no key, left as it is"
                    ));
                    return;
                }
            }
            self.ledger.retried();
            tokio::time::sleep(backoff).await;
        };
        match fate {
            Fate::Acked { first, last } => {
                self.known.insert(stream, last);
                if intent.key.is_some() && self.rng.random_bool(0.2) {
                    let later = Duration::from_millis(self.rng.random_range(300..3_000));
                    self.resends.push(Resend {
                        due: sim_now() + later,
                        id,
                        intent: intent.clone(),
                        acked: (first, last),
                    });
                }
            }
            Fate::Conflict { actual } => {
                self.known.insert(stream, actual);
            }
            Fate::RolledBack | Fate::Pending => {}
        }
        self.ledger.settle(id, fate);
    }

    /// Sends an acknowledged keyed append again: it must replay its first
    /// result and write nothing, wherever its events are by now.
    async fn resend(&mut self, r: Resend) {
        if let Some(problem) = resend(&r.intent, r.acked).await {
            self.ledger.record(
                "ARCH-2",
                sim_now(),
                format!("a resend of acknowledged append {} {problem}", r.id),
            );
        }
    }

    /// Reads a stream with archived data and checks it against the ledger.
    async fn read_back(&mut self) {
        let stream = self.rng.random_range(0..STREAMS);
        let request = Request::Archive(ArchiveRequest::ReadStream {
            stream,
            include_archived: true,
        });
        if let Ok(Reply::Stream { events }) = DbConn::once(&request).await {
            self.ledger.check_read(sim_now(), stream, &events);
            self.known.insert(stream, events.len() as u64);
        }
    }

    fn note(&self, what: String) {
        self.trace.record(sim_now(), &self.who, what);
    }
}
