//! A client's connection to the `db` host, for the archive scenario's
//! application, operator and mover: one JSON line per request and reply,
//! several requests per connection (a transaction lives as long as its
//! connection), and a deadline on every exchange, since a partition drops
//! packets without telling anyone.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use turmoil::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use turmoil::net::TcpStream;

use crate::db::host::DB_PORT;
use crate::protocol::{Reply, Request};

/// How long a client waits for a connection or a reply: longer than the
/// database's lock timeout plus a round trip, so a statement waiting for a
/// lock is not given up on.
pub const CALL_TIMEOUT: Duration = Duration::from_millis(1_500);

/// Why an exchange gave no reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnError {
    /// No connection was made: nothing was sent.
    #[error("could not connect: {0}")]
    Connect(String),
    /// The request may have been carried out; its reply never came.
    #[error("no reply: {0}")]
    NoReply(String),
}

/// An open connection.
pub struct DbConn {
    lines: Lines<BufReader<OwnedReadHalf>>,
    write: OwnedWriteHalf,
}

impl DbConn {
    /// Connects within [`CALL_TIMEOUT`].
    pub async fn connect() -> Result<DbConn, ConnError> {
        let stream = tokio::time::timeout(CALL_TIMEOUT, TcpStream::connect(("db", DB_PORT)))
            .await
            .map_err(|_| ConnError::Connect("timed out".to_owned()))?
            .map_err(|e| ConnError::Connect(e.to_string()))?;
        let (read, write) = stream.into_split();
        Ok(DbConn {
            lines: BufReader::new(read).lines(),
            write,
        })
    }

    /// Sends `request` and waits up to [`CALL_TIMEOUT`] for its reply.
    pub async fn call(&mut self, request: &Request) -> Result<Reply, ConnError> {
        let mut line = serde_json::to_string(request).expect("requests serialize");
        line.push('\n');
        let exchange = async {
            self.write.write_all(line.as_bytes()).await?;
            self.lines.next_line().await
        };
        let reply = tokio::time::timeout(CALL_TIMEOUT, exchange)
            .await
            .map_err(|_| ConnError::NoReply("timed out".to_owned()))?
            .map_err(|e| ConnError::NoReply(e.to_string()))?
            .ok_or_else(|| ConnError::NoReply("connection closed".to_owned()))?;
        serde_json::from_str(&reply).map_err(|e| ConnError::NoReply(format!("bad reply: {e}")))
    }

    /// One request on a connection of its own.
    pub async fn once(request: &Request) -> Result<Reply, ConnError> {
        DbConn::connect().await?.call(request).await
    }
}
