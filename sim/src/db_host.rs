//! The `db` host: serves the model database over turmoil's TCP.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use turmoil::net::{TcpListener, TcpStream};

use crate::model_db::ModelDb;
use crate::protocol::{Reply, Request};
use crate::trace::{sim_now, Trace};

/// The port the model database listens on.
pub const DB_PORT: u16 = 5432;

/// Runs the database host until it is crashed. `db` is the committed state,
/// kept across restarts.
pub async fn serve(db: Arc<Mutex<ModelDb>>, trace: Trace) -> turmoil::Result {
    let listener = TcpListener::bind(("0.0.0.0", DB_PORT)).await?;
    trace.record(sim_now(), "db", "up".to_owned());
    loop {
        let (stream, _) = listener.accept().await?;
        let (db, trace) = (db.clone(), trace.clone());
        tokio::spawn(async move {
            let _ = answer(stream, db, trace).await;
        });
    }
}

async fn answer(stream: TcpStream, db: Arc<Mutex<ModelDb>>, trace: Trace) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    while let Some(line) = lines.next_line().await? {
        let reply = match serde_json::from_str::<Request>(&line) {
            Ok(request) => {
                let now = sim_now();
                let mut db = db.lock().expect("db lock");
                let (grants, writes, refused) =
                    (db.grants.len(), db.writes.len(), db.refused_writes);
                let reply = db.apply(now, request);
                for g in &db.grants[grants..] {
                    trace.record(now, "db", format!("grant epoch {} to {}", g.epoch, g.node));
                }
                for w in &db.writes[writes..] {
                    trace.record(
                        now,
                        "db",
                        format!(
                            "write by {} under epoch {} (current {})",
                            w.node, w.epoch, w.current_epoch
                        ),
                    );
                }
                if db.refused_writes > refused {
                    trace.record(now, "db", format!("fence refused a write: {reply:?}"));
                }
                reply
            }
            Err(e) => Reply::Failed(format!("bad request: {e}")),
        };
        let mut out = serde_json::to_string(&reply).expect("replies serialize");
        out.push('\n');
        write.write_all(out.as_bytes()).await?;
    }
    Ok(())
}
