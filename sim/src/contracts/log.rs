//! The event log contract (`rillflow_adapters::log_contract`) against the
//! model database, through the requests the archive scenario's writer,
//! operator and mover send.

use async_trait::async_trait;
use rillflow_adapters::log_contract::{self, Appended, FeedEvent, LogHarness, StreamEvent};
use rillflow_core::ExpectedVersion;

use crate::client::db_conn::DbConn;
use crate::contracts::in_sim;
use crate::model::log::archive_requests::KEY_REUSED;
use crate::protocol::{ArchiveRequest, LogRequest, Reply, Request};

/// Events per move batch: more than any check appends.
const MOVE_LIMIT: u32 = 1_000;

/// Runs the event log check `name`; a breach panics, as it does against
/// Postgres.
pub fn run(name: &str) {
    let check = name.to_owned();
    in_sim(name, move |_| async move {
        log_contract::run(&check, &ModelHarness).await;
    });
}

/// The model's side: every operation is a request to the `db` host.
#[derive(Debug, Clone, Copy)]
struct ModelHarness;

/// One request on a connection of its own.
async fn once(request: impl Into<Request>) -> Reply {
    let request = request.into();
    DbConn::once(&request)
        .await
        .unwrap_or_else(|e| panic!("{request:?}: {e}"))
}

/// Sends an append on `conn`, whose transaction then lives as long as the
/// connection does or until `AppendEnd`.
async fn send_append(
    conn: &mut DbConn,
    stream: u32,
    expected: ExpectedVersion,
    key: Option<u64>,
    payloads: &[u64],
) -> Reply {
    let request = Request::Archive(ArchiveRequest::Append {
        stream,
        expected: expected.to_string(),
        idem_key: key,
        payloads: payloads.to_vec(),
    });
    conn.call(&request)
        .await
        .unwrap_or_else(|e| panic!("{request:?}: {e}"))
}

async fn end(conn: &mut DbConn, xid: u64, commit: bool) {
    let ended = conn
        .call(&Request::Log(LogRequest::AppendEnd { xid, commit }))
        .await;
    assert_eq!(ended, Ok(Reply::Done), "the append of {xid} ends");
}

fn changed(reply: Reply, what: &str) -> bool {
    match reply {
        Reply::Changed { changed } => changed,
        other => panic!("{what}: {other:?}"),
    }
}

#[async_trait]
impl LogHarness for ModelHarness {
    type Open = (DbConn, u64);

    async fn append(
        &self,
        stream: u32,
        expected: ExpectedVersion,
        key: Option<u64>,
        payloads: &[u64],
    ) -> Appended {
        let mut conn = DbConn::connect().await.expect("connect");
        match send_append(&mut conn, stream, expected, key, payloads).await {
            Reply::Appended { xid, first, last } => {
                end(&mut conn, xid, true).await;
                Appended::Wrote { first, last }
            }
            Reply::Replayed { first, last } => Appended::Replayed { first, last },
            Reply::Conflict { actual } => Appended::Conflict { actual },
            Reply::Failed(e) if e == KEY_REUSED => Appended::KeyReused,
            other => panic!("append to {stream}: {other:?}"),
        }
    }

    async fn begin_append(&self, stream: u32, payloads: &[u64]) -> ((DbConn, u64), u64, u64) {
        let mut conn = DbConn::connect().await.expect("connect");
        let any = ExpectedVersion::Any;
        match send_append(&mut conn, stream, any, None, payloads).await {
            Reply::Appended { xid, first, last } => ((conn, xid), first, last),
            other => panic!("append to {stream}: {other:?}"),
        }
    }

    async fn end_append(&self, (mut conn, xid): (DbConn, u64), commit: bool) {
        end(&mut conn, xid, commit).await;
    }

    async fn read_stream(&self, stream: u32, include_archived: bool) -> Vec<StreamEvent> {
        let request = ArchiveRequest::ReadStream {
            stream,
            include_archived,
        };
        match once(request).await {
            Reply::Stream { events } => events
                .into_iter()
                .map(|r| StreamEvent {
                    version: r.version,
                    payload: r.payload,
                    cold: r.cold,
                })
                .collect(),
            other => panic!("read {stream}: {other:?}"),
        }
    }

    async fn read_all(
        &self,
        after: (u64, u64),
        limit: u32,
        include_archived: bool,
    ) -> Vec<FeedEvent> {
        let request = ArchiveRequest::ReadAll {
            after,
            limit,
            include_archived,
        };
        match once(request).await {
            Reply::Feed { events } => events
                .into_iter()
                .map(|r| FeedEvent {
                    cursor: r.cursor,
                    stream: r.stream,
                    version: r.version,
                    payload: r.payload,
                    cold: r.cold,
                })
                .collect(),
            other => panic!("read all after {after:?}: {other:?}"),
        }
    }

    async fn mark(&self, stream: u32) -> bool {
        changed(once(ArchiveRequest::Mark { stream }).await, "mark")
    }

    async fn reactivate(&self, stream: u32) -> bool {
        changed(
            once(ArchiveRequest::Reactivate { stream }).await,
            "reactivate",
        )
    }

    async fn set_redirect(&self, on: bool) {
        changed(once(ArchiveRequest::SetRedirect { on }).await, "redirect");
    }

    /// One pass, as the mover host (`hosts/archive/mover.rs`) runs them: its plan, then batches until
    /// one moves nothing.
    async fn move_all(&self) -> u64 {
        let Reply::MovePlan { before_us, upto } =
            once(ArchiveRequest::MoveStart { older_than_ms: 0 }).await
        else {
            panic!("the pass starts");
        };
        let mut moved = 0;
        loop {
            let batch = ArchiveRequest::MoveBatch {
                from: None,
                before_us,
                upto,
                limit: MOVE_LIMIT,
            };
            match once(batch).await {
                Reply::Moved { events: 0, .. } => return moved,
                Reply::Moved { events, .. } => moved += u64::from(events),
                other => panic!("a move batch: {other:?}"),
            }
        }
    }
}
