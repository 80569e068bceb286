//! Ownership change notices in the simulation. The `db` host pushes them
//! over a connection of their own, as LISTEN on `rf_partition_changes`
//! delivers them; the production loop,
//! `rillflow_adapters::ownership::forward_changes`, hands each to the
//! driver of the projection it names.

use async_trait::async_trait;
use rillflow_adapters::ownership::ChangeNotices;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use turmoil::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use turmoil::net::TcpStream;

use crate::client::db_conn::CALL_TIMEOUT;
use crate::db::host::DB_PORT;
use crate::protocol::{OwnershipRequest, Reply, Request};

/// A subscription to change notices.
pub struct ChangeListener {
    lines: Lines<BufReader<OwnedReadHalf>>,
    // Kept so the connection stays open.
    _write: OwnedWriteHalf,
}

/// Notices from the simulated database host.
pub struct SimChangeNotices;

#[async_trait]
impl ChangeNotices for SimChangeNotices {
    type Listener = ChangeListener;

    async fn listen(&self) -> Result<ChangeListener, String> {
        ChangeListener::listen().await
    }

    async fn next(&self, listener: &mut ChangeListener) -> Result<String, String> {
        listener.next().await
    }
}

impl ChangeListener {
    /// Subscribes; notices sent once this returns are delivered.
    pub async fn listen() -> Result<ChangeListener, String> {
        let subscribe = async {
            let stream = TcpStream::connect(("db", DB_PORT))
                .await
                .map_err(|e| e.to_string())?;
            let (read, mut write) = stream.into_split();
            let mut line =
                serde_json::to_string(&Request::Ownership(OwnershipRequest::ListenChanges))
                    .expect("requests serialize");
            line.push('\n');
            write
                .write_all(line.as_bytes())
                .await
                .map_err(|e| e.to_string())?;
            let mut lines = BufReader::new(read).lines();
            match lines.next_line().await.map_err(|e| e.to_string())? {
                Some(ack) if serde_json::from_str::<Reply>(&ack).ok() == Some(Reply::Done) => {
                    Ok(ChangeListener {
                        lines,
                        _write: write,
                    })
                }
                other => Err(format!("listen refused: {other:?}")),
            }
        };
        tokio::time::timeout(CALL_TIMEOUT, subscribe)
            .await
            .map_err(|_| "listen timed out".to_owned())?
    }

    /// The next notice: the projection that changed.
    async fn next(&mut self) -> Result<String, String> {
        let line = self
            .lines
            .next_line()
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "notices connection closed".to_owned())?;
        match serde_json::from_str(&line) {
            Ok(Reply::OwnershipChanged { projection }) => Ok(projection),
            other => Err(format!("unexpected notice {other:?}")),
        }
    }
}
