//! One try at an append, as a client of `rf_append` makes it: begin on a
//! fresh connection, hold the transaction open, then commit or roll back
//! on the same connection. The transaction lives and dies with its
//! connection, so only a lost commit reply leaves the outcome unknown.

use std::time::Duration;

use rillflow_core::ExpectedVersion;

use crate::client::db_conn::DbConn;
use crate::hosts::archive::ledger::{Fate, Intent};
use crate::protocol::{ArchiveRequest, LogRequest, Reply, Request};

/// How one try ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// A definite answer.
    Settled(Fate),
    /// Nothing was committed (no connection, a lock timeout, a transaction
    /// ended by the server, or no reply before the commit was sent): safe
    /// to try again, key or not.
    NotCommitted(String),
    /// The commit was sent and its reply lost: it may have committed.
    Unknown(String),
}

fn begin(intent: &Intent, expected: ExpectedVersion) -> Request {
    Request::Archive(ArchiveRequest::Append {
        stream: intent.stream,
        expected: expected.to_string(),
        idem_key: intent.key,
        payloads: intent.payloads.clone(),
    })
}

/// Tries `intent` once.
pub async fn attempt(
    intent: &Intent,
    expected: ExpectedVersion,
    commit: bool,
    hold: Duration,
) -> Attempt {
    let mut conn = match DbConn::connect().await {
        Ok(c) => c,
        Err(e) => return Attempt::NotCommitted(e.to_string()),
    };
    let (xid, first, last) = match conn.call(&begin(intent, expected)).await {
        Ok(Reply::Appended { xid, first, last }) => (xid, first, last),
        Ok(Reply::Replayed { first, last }) => {
            return Attempt::Settled(Fate::Acked { first, last })
        }
        Ok(Reply::Conflict { actual }) => return Attempt::Settled(Fate::Conflict { actual }),
        Ok(other) => return Attempt::NotCommitted(format!("{other:?}")),
        // Begun or not, the transaction ends with this connection.
        Err(e) => return Attempt::NotCommitted(e.to_string()),
    };
    tokio::time::sleep(hold).await;
    match conn
        .call(&Request::Log(LogRequest::AppendEnd { xid, commit }))
        .await
    {
        Ok(Reply::Done) if commit => Attempt::Settled(Fate::Acked { first, last }),
        Ok(Reply::Done) => Attempt::Settled(Fate::RolledBack),
        Ok(other) => Attempt::NotCommitted(format!("{other:?}")),
        // A rollback that got no reply still wrote nothing.
        Err(_) if !commit => Attempt::Settled(Fate::RolledBack),
        Err(e) => Attempt::Unknown(e.to_string()),
    }
}

/// Sends an acknowledged keyed intent again (expecting nothing of the
/// stream, which has moved on); returns what was wrong with the answer.
/// No answer proves nothing either way.
pub async fn resend(intent: &Intent, acked: (u64, u64)) -> Option<String> {
    let mut conn = DbConn::connect().await.ok()?;
    match conn.call(&begin(intent, ExpectedVersion::Any)).await.ok()? {
        Reply::Replayed { first, last } if (first, last) == acked => None,
        Reply::Replayed { first, last } => Some(format!(
            "replayed versions {first}..={last}, not {}..={}",
            acked.0, acked.1
        )),
        Reply::Appended { xid, first, last } => {
            // Not committed: the finding is made, the store stays clean.
            let _ = conn
                .call(&Request::Log(LogRequest::AppendEnd { xid, commit: false }))
                .await;
            Some(format!(
                "was not recognised: it would have written versions {first}..={last} again"
            ))
        }
        // The database is away or the head is locked: nothing learnt.
        Reply::Failed(_) => None,
        other => Some(format!("got {other:?} instead of its first result")),
    }
}
