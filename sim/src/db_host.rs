//! The `db` host: serves the model database over turmoil's TCP, with the
//! row lock a fenced transaction holds on its cluster and the session
//! timeouts the daemon's connections run with.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use turmoil::net::{TcpListener, TcpStream};

use crate::model_db::ModelDb;
use crate::protocol::{Caller, Reply, Request};
use crate::trace::{sim_now, Trace};

/// The port the model database listens on.
pub const DB_PORT: u16 = 5432;

/// The daemon sessions' timeouts (from `daemon_pool_config`).
#[derive(Debug, Clone, Copy)]
pub struct SessionTimeouts {
    /// How long a statement waits for a row lock.
    pub lock: Duration,
    /// How long a transaction may sit idle before the server ends it.
    pub idle_in_transaction: Duration,
}

/// Shared by one incarnation of the host: which clusters' rows are locked
/// by an open fenced transaction. A restart forgets them, as a database
/// restart ends every transaction.
#[derive(Debug, Clone, Default)]
struct Locks(Arc<Mutex<BTreeSet<String>>>);

impl Locks {
    fn held(&self, cluster: &str) -> bool {
        self.0.lock().expect("locks").contains(cluster)
    }

    fn take(&self, cluster: &str) {
        self.0.lock().expect("locks").insert(cluster.to_owned());
    }

    fn free(&self, cluster: &str) {
        self.0.lock().expect("locks").remove(cluster);
    }

    /// Waits up to `limit` for the cluster row to be free.
    async fn wait(&self, cluster: &str, limit: Duration) -> bool {
        let start = tokio::time::Instant::now();
        while self.held(cluster) {
            if start.elapsed() >= limit {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        true
    }
}

/// Runs the database host until it is crashed. `db` is the committed state,
/// kept across restarts.
pub async fn serve(
    db: Arc<Mutex<ModelDb>>,
    trace: Trace,
    timeouts: SessionTimeouts,
) -> turmoil::Result {
    let listener = TcpListener::bind(("0.0.0.0", DB_PORT)).await?;
    trace.record(sim_now(), "db", "up".to_owned());
    let locks = Locks::default();
    loop {
        let (stream, _) = listener.accept().await?;
        let session = Session {
            db: db.clone(),
            trace: trace.clone(),
            locks: locks.clone(),
            timeouts,
        };
        tokio::spawn(async move {
            let _ = session.answer(stream).await;
        });
    }
}

struct Session {
    db: Arc<Mutex<ModelDb>>,
    trace: Trace,
    locks: Locks,
    timeouts: SessionTimeouts,
}

impl Session {
    async fn answer(self, stream: TcpStream) -> std::io::Result<()> {
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        while let Some(line) = lines.next_line().await? {
            let reply = match serde_json::from_str::<Request>(&line) {
                Ok(request) => self.execute(request).await,
                Err(e) => Reply::Failed(format!("bad request: {e}")),
            };
            let mut out = serde_json::to_string(&reply).expect("replies serialize");
            out.push('\n');
            write.write_all(out.as_bytes()).await?;
        }
        Ok(())
    }

    async fn execute(&self, request: Request) -> Reply {
        match request {
            Request::FrozenFencedWrite {
                caller,
                epoch,
                freeze_us,
            } => {
                self.frozen_write(caller, epoch, Duration::from_micros(freeze_us))
                    .await
            }
            // Statements that update the cluster row wait for an open
            // fenced transaction's lock, up to the lock timeout.
            Request::TryAcquire { ref caller, .. }
            | Request::Renew { ref caller, .. }
            | Request::Release { ref caller, .. } => {
                let ignore = self.db.lock().expect("db lock").grants_ignore_locks;
                if !ignore && !self.locks.wait(&caller.cluster, self.timeouts.lock).await {
                    return Reply::Failed("canceling statement due to lock timeout".to_owned());
                }
                self.apply(|db, now| db.apply(now, request))
            }
            other => self.apply(|db, now| db.apply(now, other)),
        }
    }

    /// Applies `f` atomically at the current database time and traces the
    /// grants, writes and refusals it made.
    fn apply<T>(&self, f: impl FnOnce(&mut ModelDb, Duration) -> T) -> T {
        let now = sim_now();
        let mut db = self.db.lock().expect("db lock");
        let (grants, writes, refused) = (db.grants.len(), db.writes.len(), db.refused_writes);
        let out = f(&mut db, now);
        for g in &db.grants[grants..] {
            self.trace
                .record(now, "db", format!("grant epoch {} to {}", g.epoch, g.node));
        }
        for w in &db.writes[writes..] {
            self.trace.record(
                now,
                "db",
                format!(
                    "write by {} under epoch {} (current {})",
                    w.node, w.epoch, w.current_epoch
                ),
            );
        }
        if db.refused_writes > refused {
            self.trace
                .record(now, "db", "fence refused a write".to_owned());
        }
        out
    }

    /// The fence check takes the row lock; the client then freezes, cut off
    /// the network, and the server ends its transaction once it has been
    /// idle for the idle-in-transaction timeout.
    async fn frozen_write(&self, caller: Caller, epoch: u64, freeze: Duration) -> Reply {
        if !self.apply(|db, now| db.fence_admits(now, &caller, epoch)) {
            return Reply::Fenced;
        }
        self.locks.take(&caller.cluster);
        self.trace.record_freeze(
            &caller.node,
            sim_now(),
            format!("frozen {freeze:?} inside a transaction of epoch {epoch}"),
        );
        turmoil::hold(caller.node.as_str(), "db");
        let node = caller.node.clone();
        tokio::spawn(async move {
            tokio::time::sleep(freeze).await;
            turmoil::release(node.as_str(), "db");
        });
        let idle = self.timeouts.idle_in_transaction;
        tokio::time::sleep(freeze.min(idle)).await;
        if freeze >= idle {
            self.locks.free(&caller.cluster);
            self.trace.record(
                sim_now(),
                "db",
                format!(
                    "ended the idle transaction of {} (epoch {epoch})",
                    caller.node
                ),
            );
            return Reply::Failed(
                "terminating connection due to idle-in-transaction timeout".to_owned(),
            );
        }
        let reply = self.apply(|db, now| {
            db.commit_write(now, &caller, epoch);
            Reply::Done
        });
        self.locks.free(&caller.cluster);
        reply
    }
}
