//! The `db` host's side of lease sessions (see
//! [`LeaseSessions`](crate::model::lease::sessions::LeaseSessions)): a connection
//! that opened one holds it until the connection ends or the database ends
//! the session, and a wait on a session's lock is answered when it goes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{BufReader, Lines};
use turmoil::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::db::host::send;
use crate::harness::trace::{sim_now, Trace};
use crate::model::db::ModelDb;
use crate::protocol::Reply;

/// Opens a lease session for `node` on this connection and holds it until
/// the client's side of the connection ends (its process died, or it
/// closed the session) or the database ends the session, then closes the
/// connection, as a backend's exit does.
pub(crate) async fn hold(
    db: &Arc<Mutex<ModelDb>>,
    trace: &Trace,
    node: &str,
    lines: &mut Lines<BufReader<OwnedReadHalf>>,
    write: &mut OwnedWriteHalf,
) -> std::io::Result<()> {
    let (id, key, ends) = {
        let mut db = db.lock().expect("db lock");
        let (id, key) = db.sessions.open(node);
        (id, key, db.sessions.ends())
    };
    trace.record(
        sim_now(),
        "db",
        format!("lease session {id} of {node} holds key {key:#x}"),
    );
    send(write, &Reply::SessionOpened { id, key }).await?;
    loop {
        // Taken before the look, so an end in between still wakes us.
        let ended = ends.notified();
        if !db.lock().expect("db lock").sessions.is_open(id) {
            // The database ended it; whoever ended it said so.
            return Ok(());
        }
        tokio::select! {
            biased;
            line = lines.next_line() => match line {
                // Nothing is sent on a session's connection after it opens.
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => break,
            },
            _ = ended => continue,
        }
    }
    if db.lock().expect("db lock").sessions.end(id).is_some() {
        trace.record(
            sim_now(),
            "db",
            format!("lease session {id} of {node} ended with its connection"),
        );
    }
    Ok(())
}

/// Waits up to `limit` (the lock timeout) for no session to hold `key`.
pub(crate) async fn wait_ended(db: &Arc<Mutex<ModelDb>>, key: i64, limit: Duration) -> Reply {
    let ends = db.lock().expect("db lock").sessions.ends();
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let ended = ends.notified();
        if !db.lock().expect("db lock").sessions.held(key) {
            return Reply::Waited { ended: true };
        }
        tokio::select! {
            biased;
            _ = ended => {}
            _ = tokio::time::sleep_until(deadline) => return Reply::Waited { ended: false },
        }
    }
}
