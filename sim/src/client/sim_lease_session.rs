//! The lease session of a simulated daemon, as `PgLeaseSession` is of a real
//! one: a connection of its own to the `db` host, opened on first use (or
//! at start, as the run-loop does), whose session holds a lock under a key
//! the host hands out. Grants and renewals run "on" it; when the host says
//! it has ended, it is replaced by a new session under a new key, once per
//! statement, and a lease bound to the old key is then lost.
//!
//! Unlike on Postgres, statements do not travel on the session's connection
//! but name it (see `Request::Lease(LeaseRequest::OpenSession)` for why), so they do not queue
//! behind each other either: one lost in a partition holds up nothing,
//! where TCP's resending would hold up the next only until the link heals.

use rillflow_adapters::daemon::LeaseError;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::Mutex;
use turmoil::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use turmoil::net::TcpStream;

use crate::client::db_conn::CALL_TIMEOUT;
use crate::db::host::DB_PORT;
use crate::harness::trace::{sim_now, Trace};
use crate::protocol::{LeaseRequest, Reply, Request};

/// An open session: its id and the connection it lives as long as.
struct Held {
    id: u64,
    // Kept, unread and unwritten, so the connection stays open; dropped,
    // they close it and the host ends the session.
    _read: OwnedReadHalf,
    _write: OwnedWriteHalf,
}

/// A lease session: opened on first use, reopened after it ended.
pub struct SimLeaseSession {
    node: String,
    trace: Trace,
    held: Mutex<Option<Held>>,
}

impl std::fmt::Debug for SimLeaseSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimLeaseSession")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

fn unavailable(what: impl std::fmt::Display) -> LeaseError {
    LeaseError::Unavailable(format!("lease session: {what}"))
}

impl SimLeaseSession {
    /// The lease session of `node`, not open yet.
    pub fn new(node: &str, trace: Trace) -> Self {
        SimLeaseSession {
            node: node.to_owned(),
            trace,
            held: Mutex::new(None),
        }
    }

    /// The open session's id, opening one when there is none.
    async fn current(&self) -> Result<u64, LeaseError> {
        let mut held = self.held.lock().await;
        if let Some(h) = held.as_ref() {
            return Ok(h.id);
        }
        let opened = tokio::time::timeout(CALL_TIMEOUT, self.open_one())
            .await
            .map_err(|_| unavailable("no answer from db"))??;
        let id = opened.id;
        *held = Some(opened);
        Ok(id)
    }

    async fn open_one(&self) -> Result<Held, LeaseError> {
        let stream = TcpStream::connect(("db", DB_PORT))
            .await
            .map_err(unavailable)?;
        let (read, mut write) = stream.into_split();
        let mut line = serde_json::to_string(&Request::Lease(LeaseRequest::OpenSession {
            node: self.node.clone(),
        }))
        .expect("requests serialize");
        line.push('\n');
        write
            .write_all(line.as_bytes())
            .await
            .map_err(unavailable)?;
        let mut lines = BufReader::new(read).lines();
        let reply = lines.next_line().await.map_err(unavailable)?;
        match reply.and_then(|l| serde_json::from_str::<Reply>(&l).ok()) {
            Some(Reply::SessionOpened { id, .. }) => Ok(Held {
                id,
                _read: lines.into_inner().into_inner(),
                _write: write,
            }),
            other => Err(unavailable(format!("not opened: {other:?}"))),
        }
    }

    /// Forgets session `id` after the host said it ended (unless it was
    /// replaced already); the next use opens a new one.
    async fn ended(&self, id: u64) {
        let mut held = self.held.lock().await;
        if held.as_ref().is_some_and(|h| h.id == id) {
            *held = None;
            self.trace.record(
                sim_now(),
                &self.node,
                format!("its lease session {id} ended; its leases are lost"),
            );
        }
    }

    /// Opens the session now if it is not open.
    pub async fn connect(&self) -> Result<(), LeaseError> {
        self.current().await.map(drop)
    }

    /// Closes the session, which frees its lock (a clean shutdown, or the
    /// process exiting).
    pub async fn close(&self) {
        self.held.lock().await.take();
    }

    /// Sends the statement `make(session)` on the session through `call`;
    /// a session found ended is replaced once: the statement did not run.
    pub async fn run<F, Fut>(
        &self,
        make: impl Fn(u64) -> Request,
        call: F,
    ) -> Result<Reply, LeaseError>
    where
        F: Fn(Request) -> Fut,
        Fut: std::future::Future<Output = Result<Reply, LeaseError>>,
    {
        let mut retried = false;
        loop {
            let id = self.current().await?;
            match call(make(id)).await? {
                Reply::SessionGone => {
                    self.ended(id).await;
                    if retried {
                        return Err(unavailable("ended again"));
                    }
                    retried = true;
                }
                reply => return Ok(reply),
            }
        }
    }
}
