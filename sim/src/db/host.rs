//! The `db` host: serves the model database over turmoil's TCP, with the
//! row lock a fenced transaction holds on its cluster and the session
//! timeouts the daemon's connections run with. Each request is routed once,
//! by its domain, to that domain's handler here (`lease.rs`,
//! `ownership.rs`, or the model directly), which applies it to the model
//! and does what spans time or connections.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use turmoil::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use turmoil::net::{TcpListener, TcpStream};

use super::listeners::Listeners;
use super::locks::Locks;
use crate::db::sessions;
use crate::harness::trace::{sim_now, Trace};
use crate::model::db::ModelDb;
use crate::model::log::archive_requests;
use crate::model::log::history::Step;
use crate::protocol::{ArchiveRequest, LogRequest, Reply, Request};

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

/// A transaction bound to a connection: it ends with the connection, or
/// when the server ends it for sitting idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OpenTx {
    /// An append, by transaction id.
    Append(u64),
    /// A partition batch, by transaction.
    Batch(u64),
}

/// A channel of notices a connection may subscribe to (LISTEN).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Channel {
    /// Lease releases.
    Releases,
    /// Ownership changes (`rf_partition_changes`).
    Changes,
}

/// What a request leaves its connection to do.
// One per request, moved straight into the connection loop: boxing the
// reply would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(super) enum Answer {
    /// Send `reply` and read the next request; `ends` is the transaction
    /// the request ended, if it was one.
    Reply {
        /// The reply.
        reply: Reply,
        /// The transaction ended.
        ends: Option<OpenTx>,
    },
    /// From here on the connection only holds this node's lease session.
    HoldSession(String),
    /// From here on the connection only carries notices.
    Subscribe(Channel),
}

impl From<Reply> for Answer {
    fn from(reply: Reply) -> Answer {
        Answer::Reply { reply, ends: None }
    }
}

/// One connection's side of the host.
pub(super) struct Session {
    pub(super) db: Arc<Mutex<ModelDb>>,
    pub(super) trace: Trace,
    pub(super) locks: Locks,
    pub(super) listeners: Listeners,
    pub(super) changes: Listeners,
    pub(super) timeouts: SessionTimeouts,
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
            let request = match serde_json::from_str::<Request>(&line) {
                Ok(request) => request,
                Err(e) => {
                    send(write, &Reply::Failed(format!("bad request: {e}"))).await?;
                    continue;
                }
            };
            let reply = match self.execute(request).await {
                Answer::HoldSession(node) => {
                    return sessions::hold(&self.db, &self.trace, &node, lines, write).await;
                }
                Answer::Subscribe(channel) => {
                    let channel = match channel {
                        Channel::Releases => &self.listeners,
                        Channel::Changes => &self.changes,
                    };
                    let mut notices = channel.add();
                    send(write, &Reply::Done).await?;
                    while let Some(notice) = notices.recv().await {
                        send(write, &notice).await?;
                    }
                    return Ok(());
                }
                Answer::Reply { reply, ends } => {
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
            };
            send(write, &reply).await?;
        }
    }

    /// The one place a request is routed: to its domain's handler.
    async fn execute(&self, request: Request) -> Answer {
        match request {
            Request::Lease(request) => self.lease(request).await,
            Request::Log(request) => self.log(request),
            Request::Archive(request) => self.archive(request).await.into(),
            Request::Ownership(request) => self.ownership(request).await,
        }
    }

    /// Appends and the hot/cold projection's batches: single statements,
    /// applied at once; `AppendEnd` ends the connection's transaction.
    fn log(&self, request: LogRequest) -> Answer {
        let ends = match &request {
            LogRequest::AppendEnd { xid, .. } => Some(OpenTx::Append(*xid)),
            _ => None,
        };
        let reply = self.apply(|db, now| db.apply_log(now, request));
        Answer::Reply { reply, ends }
    }

    /// The archive scenario's requests; those that need row or table locks
    /// wait for them, up to the lock timeout.
    async fn archive(&self, request: ArchiveRequest) -> Reply {
        let apply = |db: &mut ModelDb, now| archive_requests::apply(&mut db.log, now, &request);
        if archive_requests::waits_for_locks(&request) {
            self.wait_for_locks(self.timeouts.lock, apply)
                .await
                .unwrap_or_else(lock_timeout)
        } else {
            self.apply(apply)
        }
    }

    /// Applies `f`, asking again every millisecond while the model answers
    /// `Busy` (an open transaction holds a lock it needs), for up to
    /// `limit`; None when the limit ran out.
    pub(super) async fn wait_for_locks(
        &self,
        limit: Duration,
        f: impl Fn(&mut ModelDb, Duration) -> Reply,
    ) -> Option<Reply> {
        let start = tokio::time::Instant::now();
        loop {
            let reply = self.apply(&f);
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
    pub(super) fn apply<T>(&self, f: impl FnOnce(&mut ModelDb, Duration) -> T) -> T {
        let now = sim_now();
        let mut db = self.db.lock().expect("db lock");
        let (grants, writes, refused) = (
            db.lease.grants.len(),
            db.lease.writes.len(),
            db.lease.refused_writes,
        );
        let steps = db.log.events().history().len();
        let out = f(&mut db, now);
        // Each request is a commit the standby replays in this order.
        db.replicate(now);
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
        for g in &db.lease.grants[grants..] {
            self.trace
                .record(now, "db", format!("grant epoch {} to {}", g.epoch, g.node));
        }
        for w in &db.lease.writes[writes..] {
            self.trace.record(
                now,
                "db",
                format!(
                    "write by {} under epoch {} (current {})",
                    w.node, w.epoch, w.current_epoch
                ),
            );
        }
        if db.lease.refused_writes > refused {
            self.trace
                .record(now, "db", "fence refused a write".to_owned());
        }
        out
    }
}

pub(super) fn lock_timeout() -> Reply {
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
