//! Ownership change notices in the simulation. The `db` host pushes them
//! over a connection of their own, as LISTEN on `rf_partition_changes`
//! delivers them; [`forward_changes`] hands each to the driver of the
//! projection it names, as `rillflow_adapters::ownership::forward_changes`
//! does on Postgres. That one takes a `PgPool`, so it cannot run here: this
//! is the same loop over the simulated connection (see the README's note
//! on the adapter change that would let the simulation run the original).

use std::collections::BTreeMap;
use std::time::Duration;

use rillflow_adapters::ownership::OwnerSignal;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::sync::mpsc;
use turmoil::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use turmoil::net::TcpStream;

use crate::db_conn::CALL_TIMEOUT;
use crate::db_host::DB_PORT;
use crate::protocol::{Reply, Request};

/// A subscription to change notices.
pub struct ChangeListener {
    lines: Lines<BufReader<OwnedReadHalf>>,
    // Kept so the connection stays open.
    _write: OwnedWriteHalf,
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
                serde_json::to_string(&Request::ListenChanges).expect("requests serialize");
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

/// Forwards notices from `first` on to the driver of the projection each
/// names as [`OwnerSignal::PeerChanged`]. A lost subscription is taken again,
/// after 50 ms doubling up to `retry`. Ends when every driver is gone.
pub fn forward_changes(
    first: ChangeListener,
    drivers: BTreeMap<String, mpsc::Sender<OwnerSignal>>,
    retry: Duration,
) {
    tokio::spawn(async move {
        let mut listener = Some(first);
        let mut backoff = Duration::ZERO;
        loop {
            if let Some(mut l) = listener.take() {
                while let Ok(projection) = l.next().await {
                    if let Some(driver) = drivers.get(&projection) {
                        // Full means a sync is coming anyway.
                        let _ = driver.try_send(OwnerSignal::PeerChanged);
                    }
                }
            }
            if drivers.values().all(|d| d.is_closed()) {
                return;
            }
            tokio::time::sleep(backoff).await;
            match ChangeListener::listen().await {
                Ok(l) => {
                    listener = Some(l);
                    backoff = Duration::ZERO;
                }
                Err(_) => {
                    backoff = (backoff * 2).clamp(
                        Duration::from_millis(50),
                        retry.max(Duration::from_millis(50)),
                    );
                }
            }
        }
    });
}
