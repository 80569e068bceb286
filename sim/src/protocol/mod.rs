//! What the clients say to the simulated database host: one JSON line per
//! request and one per reply, over turmoil's TCP.
//!
//! Requests are grouped by the part of the database they touch, so the
//! host routes each group to that domain's handler in one place and a
//! domain's statements are read together. On the wire a request is its
//! statement alone (`{"Heartbeat":{..}}`), as before the grouping: the
//! group is a Rust type, not a field, and no two groups share a name.

pub mod archive;
pub mod lease;
pub mod log;
pub mod ownership;
mod reply;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use archive::ArchiveRequest;
pub use lease::LeaseRequest;
pub use log::LogRequest;
pub use ownership::OwnershipRequest;
pub use reply::{FeedRow, Reply, StreamRow};

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    /// Cluster name.
    pub cluster: String,
    /// Node name.
    pub node: String,
    /// The daemon id of this incarnation.
    pub daemon_id: Uuid,
}

/// A request, by domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Request {
    /// The hot/cold lease, its fenced writes, sessions and notices.
    Lease(LeaseRequest),
    /// Appends to the event log and the hot/cold projection's batches.
    Log(LogRequest),
    /// The archive scenario's appends, reads and archive operations.
    Archive(ArchiveRequest),
    /// Dynamic partition ownership and partition batches.
    Ownership(OwnershipRequest),
}

impl From<LeaseRequest> for Request {
    fn from(request: LeaseRequest) -> Request {
        Request::Lease(request)
    }
}

impl From<LogRequest> for Request {
    fn from(request: LogRequest) -> Request {
        Request::Log(request)
    }
}

impl From<ArchiveRequest> for Request {
    fn from(request: ArchiveRequest) -> Request {
        Request::Archive(request)
    }
}

impl From<OwnershipRequest> for Request {
    fn from(request: OwnershipRequest) -> Request {
        Request::Ownership(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The grouping is not on the wire: each line is what the flat enum
    /// wrote before, so message sizes, and with them every run's trace,
    /// stay as they were.
    #[test]
    fn a_request_travels_as_its_statement_alone() {
        let cases: [(Request, &str); 4] = [
            (LeaseRequest::Listen.into(), r#""Listen""#),
            (
                LogRequest::AppendEnd {
                    xid: 7,
                    commit: true,
                }
                .into(),
                r#"{"AppendEnd":{"xid":7,"commit":true}}"#,
            ),
            (
                ArchiveRequest::Mark { stream: 3 }.into(),
                r#"{"Mark":{"stream":3}}"#,
            ),
            (
                OwnershipRequest::PartitionCommit { txn: 9 }.into(),
                r#"{"PartitionCommit":{"txn":9}}"#,
            ),
        ];
        for (request, line) in cases {
            assert_eq!(serde_json::to_string(&request).unwrap(), line);
            assert_eq!(serde_json::from_str::<Request>(line).unwrap(), request);
        }
    }
}
