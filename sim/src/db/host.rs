//! The `db` host: serves the model database over turmoil's TCP, with the
//! row lock a fenced transaction holds on its cluster and the session
//! timeouts the daemon's connections run with.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::sync::mpsc;
use turmoil::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use turmoil::net::{TcpListener, TcpStream};

use crate::model::log::archive_requests;
use crate::db::sessions;
use crate::model::log::history::Step;
use crate::model::db::ModelDb;
use crate::model::ownership::requests::ModelOwnership;
use crate::protocol::{Caller, Reply, Request};
use crate::trace::{sim_now, Trace};

pub(crate) async fn send(write: &mut OwnedWriteHalf, reply: &Reply) -> std::io::Result<()> {
    let mut out = serde_json::to_string(reply).expect("replies serialize");
    out.push('\n');
    write.write_all(out.as_bytes()).await
}

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
    // A restart ended every open transaction, appends and batches
    // included, and every session with the locks it held.
    {
        let mut db = db.lock().expect("db lock");
        db.log.abort_open();
        db.ownership.abort_open();
        db.sessions.end_all();
    }
    trace.record(sim_now(), "db", "up".to_owned());
    let locks = Locks::default();
    let listeners = Listeners::default();
    let changes = Listeners::default();
    loop {
        let (stream, _) = listener.accept().await?;
        let session = Session {
            db: db.clone(),
            trace: trace.clone(),
            locks: locks.clone(),
            listeners: listeners.clone(),
            changes: changes.clone(),
            timeouts,
        };
        tokio::spawn(async move {
            let _ = session.answer(stream).await;
        });
    }
}

/// The connections subscribed to one channel of notices (LISTEN), per
/// incarnation: release notices, or ownership changes.
#[derive(Debug, Clone, Default)]
struct Listeners(Arc<Mutex<Vec<mpsc::UnboundedSender<Reply>>>>);

impl Listeners {
    fn add(&self) -> mpsc::UnboundedReceiver<Reply> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.0.lock().expect("listeners").push(tx);
        rx
    }

    /// Delivers a notice to every live subscription (NOTIFY).
    fn notify(&self, notice: &Reply) {
        self.0
            .lock()
            .expect("listeners")
            .retain(|tx| tx.send(notice.clone()).is_ok());
    }
}

/// A transaction bound to a connection: it ends with the connection, or
/// when the server ends it for sitting idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpenTx {
    /// An append, by transaction id.
    Append(u64),
    /// A partition batch, by transaction.
    Batch(u64),
}

struct Session {
    db: Arc<Mutex<ModelDb>>,
    trace: Trace,
    locks: Locks,
    listeners: Listeners,
    changes: Listeners,
    timeouts: SessionTimeouts,
}

impl Session {
    async fn answer(self, stream: TcpStream) -> std::io::Result<()> {
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        // A transaction begun on this connection and not ended yet, which
        // ends with the connection, as a session's does.
        let mut open = None;
        let served = self.serve(&mut lines, &mut write, &mut open).await;
        let ended = match open {
            Some(OpenTx::Append(xid)) => self
                .apply(|db, now| db.log.end_append(now, xid, false))
                .then(|| format!("rolled back append {xid}: its session ended")),
            Some(OpenTx::Batch(txn)) => self
                .apply(|db, _| db.ownership.abort(txn))
                .then(|| format!("rolled back batch {txn}: its session ended")),
            None => None,
        };
        if let Some(what) = ended {
            self.trace.record(sim_now(), "db", what);
        }
        served
    }

    async fn serve(
        &self,
        lines: &mut Lines<BufReader<OwnedReadHalf>>,
        write: &mut OwnedWriteHalf,
        open: &mut Option<OpenTx>,
    ) -> std::io::Result<()> {
        loop {
            let next = match open {
                // The server ends a transaction left idle, whatever the
                // client is doing (frozen, cut off, gone).
                Some(_) => {
                    match tokio::time::timeout(self.timeouts.idle_in_transaction, lines.next_line())
                        .await
                    {
                        Ok(next) => next?,
                        Err(_) => return Ok(()),
                    }
                }
                None => lines.next_line().await?,
            };
            let Some(line) = next else {
                return Ok(());
            };
            let reply = match serde_json::from_str::<Request>(&line) {
                Ok(Request::OpenSession { node }) => {
                    // From here on this connection only holds the session.
                    return sessions::hold(&self.db, &self.trace, &node, lines, write).await;
                }
                Ok(request @ (Request::Listen | Request::ListenChanges)) => {
                    // From here on this connection only carries notices.
                    let channel = match request {
                        Request::Listen => &self.listeners,
                        _ => &self.changes,
                    };
                    let mut notices = channel.add();
                    send(write, &Reply::Done).await?;
                    while let Some(notice) = notices.recv().await {
                        send(write, &notice).await?;
                    }
                    return Ok(());
                }
                Ok(request) => {
                    let ends = match &request {
                        Request::AppendEnd { xid, .. } => Some(OpenTx::Append(*xid)),
                        Request::PartitionCommit { txn } => Some(OpenTx::Batch(*txn)),
                        _ => None,
                    };
                    let reply = self.execute(request).await;
                    match reply {
                        Reply::Appended { xid, .. } => *open = Some(OpenTx::Append(xid)),
                        Reply::BatchOpened { txn, .. } => *open = Some(OpenTx::Batch(txn)),
                        _ => {}
                    }
                    if ends.is_some() && ends == *open {
                        *open = None;
                    }
                    reply
                }
                Err(e) => Reply::Failed(format!("bad request: {e}")),
            };
            send(write, &reply).await?;
        }
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
                if !self.locks.wait(&caller.cluster, self.timeouts.lock).await {
                    return lock_timeout();
                }
                let released = match &request {
                    Request::Release { caller, .. } => Some(caller.clone()),
                    _ => None,
                };
                let (reply, notify) = self.apply(|db, now| {
                    let before = released.as_ref().and_then(|c| db.leader(&c.cluster));
                    let reply = db.apply(now, request);
                    let notify = released.filter(|c| {
                        before.as_deref() == Some(c.node.as_str())
                            && db.leader(&c.cluster).is_none()
                    });
                    (reply, notify)
                });
                // Delivered after the change is applied, as NOTIFY is on commit.
                if let Some(c) = notify {
                    self.listeners
                        .notify(&Reply::Released { cluster: c.cluster });
                }
                reply
            }
            Request::WaitSessionEnd { key } => {
                sessions::wait_ended(&self.db, key, self.timeouts.lock).await
            }
            other if archive_requests::waits_for_locks(&other) => self.apply_waiting(other).await,
            other if ModelOwnership::handles(&other) => {
                let limit = ModelOwnership::wait_limit(&other, self.timeouts.lock);
                let start = tokio::time::Instant::now();
                let reply = self.wait_for_locks(&other, limit).await;
                let waited = start.elapsed();
                // Claims and repartitions that waited, and anything held
                // up longer than a round trip (a frozen or cut-off batch):
                // the fence's lock at work. Renewals waiting a moment for
                // the owner's own batch are the common case.
                let contended = matches!(
                    other,
                    Request::OwnerClaim { .. } | Request::Repartition { .. }
                );
                if !waited.is_zero() && (contended || waited >= Duration::from_millis(50)) {
                    let what = ModelOwnership::describe(&other);
                    let outcome = if reply.is_some() {
                        "then ran"
                    } else {
                        "then timed out"
                    };
                    self.trace.record(
                        sim_now(),
                        "db",
                        format!("{what} waited {waited:?} for a running batch, {outcome}"),
                    );
                }
                reply.unwrap_or_else(|| {
                    self.apply(|db, _| db.ownership.gave_up(&other));
                    lock_timeout()
                })
            }
            other => self.apply(|db, now| db.apply(now, other)),
        }
    }

    /// Applies a request that needs row or table locks: while the model
    /// answers `Busy` (an open append holds one), waits and asks again, up
    /// to the lock timeout.
    async fn apply_waiting(&self, request: Request) -> Reply {
        self.wait_for_locks(&request, self.timeouts.lock)
            .await
            .unwrap_or_else(lock_timeout)
    }

    /// Applies `request`, asking again every millisecond while the model
    /// answers `Busy`, for up to `limit`; None when the limit ran out.
    async fn wait_for_locks(&self, request: &Request, limit: Duration) -> Option<Reply> {
        let start = tokio::time::Instant::now();
        loop {
            let reply = self.apply(|db, now| db.apply(now, request.clone()));
            if reply != Reply::Busy {
                return Some(reply);
            }
            if start.elapsed() >= limit {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Applies `f` atomically at the current database time and traces the
    /// grants, writes and refusals it made.
    fn apply<T>(&self, f: impl FnOnce(&mut ModelDb, Duration) -> T) -> T {
        let now = sim_now();
        let mut db = self.db.lock().expect("db lock");
        let (grants, writes, refused) = (db.grants.len(), db.writes.len(), db.refused_writes);
        let steps = db.log.events().history().len();
        let out = f(&mut db, now);
        for note in db.ownership.take_notes() {
            self.trace.record(now, "db", note);
        }
        // Delivered once the change is applied, as NOTIFY is on commit.
        for projection in db.ownership.take_changes() {
            self.changes.notify(&Reply::OwnershipChanged { projection });
        }
        for e in &db.log.events().history().entries()[steps..] {
            if let Some(what) = describe(&e.step) {
                self.trace.record(now, "db", what);
            }
        }
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

fn lock_timeout() -> Reply {
    Reply::Failed("canceling statement due to lock timeout".to_owned())
}

/// A trace line for an archive decision; None for commits, which are too
/// many to list (the decisions around them are what a replay needs).
fn describe(step: &Step) -> Option<String> {
    Some(match step {
        Step::Committed { .. } => return None,
        Step::Conflict {
            stream,
            expected,
            actual,
        } => format!("conflict on stream {stream}: expected {expected}, head at {actual}"),
        Step::Replayed {
            stream,
            key,
            first,
            last,
        } => format!("replayed key {key} on stream {stream}: versions {first}..={last}"),
        Step::Marked(s) => format!("marked stream {s} archived"),
        Step::Reactivated(s) => format!("reactivated stream {s}"),
        Step::Redirect(on) => format!("redirect {}", if *on { "on" } else { "off" }),
        Step::Moved { cursors, cold } => {
            format!(
                "moved {} events cold, streams now cold {cold:?}",
                cursors.len()
            )
        }
        Step::Copied(cursors) => format!("copied {} events cold, still hot", cursors.len()),
        Step::Deleted { cursors, cold } => format!(
            "deleted {} hot copies, streams now cold {cold:?}",
            cursors.len()
        ),
    })
}
