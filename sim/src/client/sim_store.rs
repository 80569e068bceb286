//! The [`LeaseStore`] the simulated nodes use: each request is one JSON line
//! to the `db` host over turmoil's network, so partitions, delays and lost
//! replies reach the driver exactly as a flaky Postgres connection would.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rillflow_adapters::daemon::{
    ClusterAdmin, FencedWrites, LeaseError, LeaseStore, NodeIdentity, ReleaseNotices,
};
use rillflow_core::lease::{
    AcquireOutcome, ClusterTiming, ClusterView, Grant, NodeRole, RenewOutcome,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use turmoil::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use turmoil::net::TcpStream;

use crate::client::sim_lease_session::SimLeaseSession;
use crate::db::host::DB_PORT;
use crate::harness::trace::{sim_now, Trace};
use crate::protocol::{Caller, LeaseRequest, Reply, Request};

/// Gives up on a request after this long; the machine has long moved on by
/// then, this only keeps tasks from piling up behind a held link.
const GIVE_UP: Duration = Duration::from_secs(30);

/// Stalls the runner has planned for nodes' next fenced write. A plan not
/// carried out by its expiry (the node was not writing) lapses, so faults
/// never spill into each other.
#[derive(Debug, Clone, Default)]
pub struct Pauses {
    /// Node → (length, expiry): stall after the lease check, before the
    /// write leaves (a stop-the-world pause or long GC in a real process).
    before_write: Arc<Mutex<BTreeMap<String, (Duration, Duration)>>>,
    /// Node → (length, expiry): freeze inside the write's transaction,
    /// holding its lock.
    in_transaction: Arc<Mutex<BTreeMap<String, (Duration, Duration)>>>,
}

type Plans = Arc<Mutex<BTreeMap<String, (Duration, Duration)>>>;

fn take_plan(plans: &Plans, node: &str) -> Option<Duration> {
    let (length, expires) = plans.lock().expect("pauses lock").remove(node)?;
    (sim_now() <= expires).then_some(length)
}

impl Pauses {
    /// Makes `node`'s next fenced write, if it starts by `expires`, stall
    /// for `length` between its lease check and the write.
    pub fn plan(&self, node: &str, length: Duration, expires: Duration) {
        self.before_write
            .lock()
            .expect("pauses lock")
            .insert(node.to_owned(), (length, expires));
    }

    /// Makes `node`'s next fenced write, if it starts by `expires`, freeze
    /// inside its transaction for `length`.
    pub fn plan_freeze(&self, node: &str, length: Duration, expires: Duration) {
        self.in_transaction
            .lock()
            .expect("pauses lock")
            .insert(node.to_owned(), (length, expires));
    }

    pub(crate) fn take(&self, node: &str) -> Option<Duration> {
        take_plan(&self.before_write, node)
    }

    /// Like [`take`](Self::take), but the simulated time the stall ends
    /// (the plan's expiry, its thaw), for a stall that lasts as long as
    /// the freeze whenever it began.
    pub(crate) fn take_until(&self, node: &str) -> Option<Duration> {
        let (_, expires) = self
            .before_write
            .lock()
            .expect("pauses lock")
            .remove(node)?;
        (sim_now() <= expires).then_some(expires)
    }

    pub(crate) fn take_freeze(&self, node: &str) -> Option<Duration> {
        take_plan(&self.in_transaction, node)
    }

    /// Forgets every plan not carried out yet (the faults are over).
    pub fn clear(&self) {
        self.before_write.lock().expect("pauses lock").clear();
        self.in_transaction.lock().expect("pauses lock").clear();
    }
}

/// A store on the `db` host. Its leases are judged by their ttl alone,
/// unless it has a lease session ([`with_session_leases`](Self::with_session_leases)).
#[derive(Debug, Clone, Default)]
pub struct SimLeaseStore {
    pauses: Pauses,
    trace: Trace,
    session: Option<Arc<SimLeaseSession>>,
}

impl SimLeaseStore {
    /// A store whose fenced writes honour the planned `pauses`.
    pub fn with_pauses(pauses: Pauses, trace: Trace) -> Self {
        SimLeaseStore {
            pauses,
            trace,
            session: None,
        }
    }

    /// The same store with its grants and renewals run on a lease session
    /// of `node`'s (`PgLeaseStore::with_session_leases`).
    pub fn with_session_leases(self, node: &str) -> Self {
        let session = Arc::new(SimLeaseSession::new(node, self.trace.clone()));
        SimLeaseStore {
            session: Some(session),
            ..self
        }
    }

    /// The lease session, if leases are bound to one.
    pub fn lease_session(&self) -> Option<&Arc<SimLeaseSession>> {
        self.session.as_ref()
    }

    pub(crate) fn pauses(&self) -> &Pauses {
        &self.pauses
    }

    pub(crate) fn trace(&self) -> &Trace {
        &self.trace
    }
}

pub(crate) fn caller(node: &NodeIdentity) -> Caller {
    Caller {
        cluster: node.cluster.clone(),
        node: node.node.clone(),
        daemon_id: node.daemon_id,
    }
}

pub(crate) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl SimLeaseStore {
    /// Sends one request and reads its reply.
    pub async fn call(&self, request: &Request) -> Result<Reply, LeaseError> {
        let exchange = async {
            let stream = TcpStream::connect(("db", DB_PORT)).await?;
            let (read, mut write) = stream.into_split();
            let mut line = serde_json::to_string(request).expect("requests serialize");
            line.push('\n');
            write.write_all(line.as_bytes()).await?;
            let reply = BufReader::new(read).lines().next_line().await?;
            reply.ok_or_else(|| std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "no reply"))
        };
        let line = tokio::time::timeout(GIVE_UP, exchange)
            .await
            .map_err(|_| LeaseError::Timeout("no reply from db".to_owned()))?
            .map_err(|e: std::io::Error| LeaseError::Unavailable(e.to_string()))?;
        serde_json::from_str(&line).map_err(|e| LeaseError::Unavailable(format!("bad reply: {e}")))
    }
}

impl SimLeaseStore {
    /// Sends `request(session)`: on the lease session when there is one
    /// (replaced once if it ended), else on a plain connection.
    async fn on_session(
        &self,
        request: impl Fn(Option<u64>) -> Request,
    ) -> Result<Reply, LeaseError> {
        match &self.session {
            None => self.call(&request(None)).await,
            Some(session) => {
                session
                    .run(
                        |id| request(Some(id)),
                        |r| async move { self.call(&r).await },
                    )
                    .await
            }
        }
    }
}

fn unexpected(reply: Reply) -> LeaseError {
    match reply {
        Reply::Failed(e) => LeaseError::Unavailable(e),
        other => LeaseError::Unavailable(format!("unexpected reply {other:?}")),
    }
}

#[async_trait]
impl FencedWrites for SimLeaseStore {
    async fn fenced_write(&self, node: &NodeIdentity, epoch: u64) -> Result<bool, LeaseError> {
        // The caller has just checked its permit; a planned pause lands
        // exactly between that check and the write.
        if let Some(length) = self.pauses.take(&node.node) {
            self.trace.record(
                sim_now(),
                &node.node,
                format!("paused {length:?} before a write under epoch {epoch}"),
            );
            tokio::time::sleep(length).await;
        }
        let request = match self.pauses.take_freeze(&node.node) {
            Some(freeze) => Request::Lease(LeaseRequest::FrozenFencedWrite {
                caller: caller(node),
                epoch,
                freeze_us: micros(freeze),
            }),
            None => Request::Lease(LeaseRequest::FencedWrite {
                caller: caller(node),
                epoch,
            }),
        };
        match self.call(&request).await? {
            Reply::Done => Ok(true),
            Reply::Fenced => Ok(false),
            other => Err(unexpected(other)),
        }
    }
}

/// A subscription to release notices on the `db` host.
pub struct SimListener {
    lines: Lines<BufReader<OwnedReadHalf>>,
    // Kept so the connection stays open.
    _write: OwnedWriteHalf,
}

#[async_trait]
impl ReleaseNotices for SimLeaseStore {
    type Listener = SimListener;

    async fn listen(&self) -> Result<SimListener, LeaseError> {
        let unavailable = |e: std::io::Error| LeaseError::Unavailable(e.to_string());
        let stream = TcpStream::connect(("db", DB_PORT))
            .await
            .map_err(unavailable)?;
        let (read, mut write) = stream.into_split();
        let mut line = serde_json::to_string(&Request::Lease(LeaseRequest::Listen))
            .expect("requests serialize");
        line.push('\n');
        write
            .write_all(line.as_bytes())
            .await
            .map_err(unavailable)?;
        let mut listener = SimListener {
            lines: BufReader::new(read).lines(),
            _write: write,
        };
        // Subscribed once the host says so: notices from then on arrive.
        match listener.lines.next_line().await.map_err(unavailable)? {
            Some(ack) if serde_json::from_str::<Reply>(&ack).ok() == Some(Reply::Done) => {
                Ok(listener)
            }
            other => Err(LeaseError::Unavailable(format!(
                "listen refused: {other:?}"
            ))),
        }
    }

    async fn next(&self, listener: &mut SimListener) -> Result<String, LeaseError> {
        let line = listener
            .lines
            .next_line()
            .await
            .map_err(|e| LeaseError::Unavailable(e.to_string()))?
            .ok_or_else(|| LeaseError::Unavailable("notices connection closed".to_owned()))?;
        match serde_json::from_str(&line) {
            Ok(Reply::Released { cluster }) => Ok(cluster),
            other => Err(LeaseError::Unavailable(format!(
                "unexpected notice {other:?}"
            ))),
        }
    }
}

#[async_trait]
impl LeaseStore for SimLeaseStore {
    async fn register(
        &self,
        node: &NodeIdentity,
        min_cold_standbys: u32,
        timing: &ClusterTiming,
    ) -> Result<(), LeaseError> {
        let request = Request::Lease(LeaseRequest::Register {
            caller: caller(node),
            min_cold_standbys,
            timing: *timing,
        });
        match self.call(&request).await? {
            Reply::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    async fn heartbeat(
        &self,
        node: &NodeIdentity,
        role: NodeRole,
        epoch: u64,
    ) -> Result<ClusterView, LeaseError> {
        match self
            .call(&Request::Lease(LeaseRequest::Heartbeat {
                caller: caller(node),
                role,
                epoch,
            }))
            .await?
        {
            Reply::View(view) => Ok(view),
            Reply::Replaced { by } => Err(LeaseError::Replaced {
                cluster: node.cluster.clone(),
                node: node.node.clone(),
                by,
            }),
            other => Err(unexpected(other)),
        }
    }

    async fn try_acquire(
        &self,
        node: &NodeIdentity,
        ttl: Duration,
        grace: Duration,
    ) -> Result<AcquireOutcome, LeaseError> {
        let request = |session| {
            Request::Lease(LeaseRequest::TryAcquire {
                caller: caller(node),
                ttl_us: micros(ttl),
                grace_us: micros(grace),
                session,
            })
        };
        match self.on_session(request).await? {
            Reply::Granted { epoch, valid_us } => Ok(AcquireOutcome::Granted(Grant {
                epoch,
                valid_for: Duration::from_micros(valid_us),
            })),
            Reply::Denied => Ok(AcquireOutcome::Denied),
            other => Err(unexpected(other)),
        }
    }

    async fn renew(
        &self,
        node: &NodeIdentity,
        epoch: u64,
        ttl: Duration,
    ) -> Result<RenewOutcome, LeaseError> {
        let request = |session| {
            Request::Lease(LeaseRequest::Renew {
                caller: caller(node),
                epoch,
                ttl_us: micros(ttl),
                session,
            })
        };
        // On a new session a lease bound to the old one is lost, which is
        // what the node must learn.
        match self.on_session(request).await? {
            Reply::Renewed { valid_us } => Ok(RenewOutcome::Renewed {
                valid_for: Duration::from_micros(valid_us),
            }),
            Reply::Lost => Ok(RenewOutcome::Lost),
            other => Err(unexpected(other)),
        }
    }

    async fn release(&self, node: &NodeIdentity, epoch: u64) -> Result<(), LeaseError> {
        self.trace
            .record_release(&node.node, sim_now(), format!("releases epoch {epoch}"));
        match self
            .call(&Request::Lease(LeaseRequest::Release {
                caller: caller(node),
                epoch,
            }))
            .await?
        {
            Reply::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    async fn mark_stopped(&self, node: &NodeIdentity) -> Result<(), LeaseError> {
        match self
            .call(&Request::Lease(LeaseRequest::MarkStopped {
                caller: caller(node),
            }))
            .await?
        {
            Reply::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }
}

/// As `request_written` does for `PgLeaseStore`: the row's outcome of a
/// request naming `node` (None: demote the holder).
fn requested(reply: Reply, cluster: &str, node: Option<&str>) -> Result<(), LeaseError> {
    let Reply::Requested {
        written,
        cluster_exists,
    } = reply
    else {
        return Err(unexpected(reply));
    };
    match (written, cluster_exists, node) {
        (true, _, _) => Ok(()),
        (false, false, _) => Err(LeaseError::InvalidName(format!(
            "no cluster named {cluster:?}"
        ))),
        (false, true, Some(node)) => Err(LeaseError::InvalidName(format!(
            "cluster {cluster:?} has no node named {node:?}"
        ))),
        (false, true, None) => Ok(()),
    }
}

#[async_trait]
impl ClusterAdmin for SimLeaseStore {
    async fn cluster_view(&self, cluster: &str) -> Result<Option<ClusterView>, LeaseError> {
        let request = LeaseRequest::ClusterView {
            cluster: cluster.to_owned(),
        };
        match self.call(&request.into()).await? {
            Reply::View(view) => Ok(Some(view)),
            Reply::NoCluster => Ok(None),
            other => Err(unexpected(other)),
        }
    }

    async fn request_promote(
        &self,
        cluster: &str,
        node: &str,
        force: bool,
    ) -> Result<(), LeaseError> {
        let request = LeaseRequest::RequestPromote {
            cluster: cluster.to_owned(),
            node: node.to_owned(),
            force,
        };
        requested(self.call(&request.into()).await?, cluster, Some(node))
    }

    async fn request_demote(&self, cluster: &str, node: Option<&str>) -> Result<(), LeaseError> {
        let request = LeaseRequest::RequestDemote {
            cluster: cluster.to_owned(),
            node: node.map(str::to_owned),
        };
        requested(self.call(&request.into()).await?, cluster, node)
    }
}
