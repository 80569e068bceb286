//! Wake-ups for idle workers: LISTEN/NOTIFY, with polling behind it.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::Notify;

/// Channel the append trigger notifies at every commit of new events.
pub const EVENTS_CHANNEL: &str = "rf_events";
/// Channel the CLI notifies after pausing, resuming, requeueing, resetting.
pub const CONTROL_CHANNEL: &str = "rf_projection_control";

/// Starts a task that listens on both channels and wakes the returned
/// `Notify` for each notification about `pool`'s schema. A broken
/// connection is re-established; notifications lost meanwhile cost only
/// latency, since workers also poll.
///
/// Returns once the first subscription is in place, so that an event
/// committed after this returns always wakes a worker.
pub async fn listen(pool: PgPool) -> Result<Arc<Notify>, sqlx::Error> {
    let notify = Arc::new(Notify::new());
    let schema: String = sqlx::query_scalar("SELECT current_schema()")
        .fetch_one(&pool)
        .await?;
    let mut listener = subscribe(&pool).await?;
    let wake = notify.clone();
    tokio::spawn(async move {
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) if concerns(n.payload(), &schema) => wake.notify_one(),
                Ok(Some(_)) => {}
                // The connection dropped; the next call reconnects and
                // listens again. What was committed meanwhile is found now.
                Ok(None) => wake.notify_one(),
                Err(error) => {
                    tracing::debug!(%error, "cannot reach the database to listen; polling meanwhile");
                    wake.notify_one();
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    });
    Ok(notify)
}

async fn subscribe(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener
        .listen_all([EVENTS_CHANNEL, CONTROL_CHANNEL])
        .await?;
    Ok(listener)
}

/// Whether a notification with `payload` is about `schema`. Notifications
/// name the schema that changed, since channels span the database and
/// every schema tenant has its own store; an empty payload (a schema
/// migrated before payloads named it) wakes everyone, as it used to.
fn concerns(payload: &str, schema: &str) -> bool {
    payload.is_empty() || payload == schema
}

#[cfg(test)]
mod tests {
    use super::concerns;

    #[test]
    fn only_own_or_unnamed_schemas_wake() {
        assert!(concerns("acme", "acme"));
        assert!(concerns("", "acme"));
        assert!(!concerns("umbrella", "acme"));
        assert!(!concerns("public", "acme"));
    }
}
