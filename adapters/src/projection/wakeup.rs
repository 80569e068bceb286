//! Wake-ups for idle workers: the log's commit high-water mark, watched at
//! a short interval, and operators' notifications; polling behind both.
//!
//! Appends notify nobody (sql/0013): a NOTIFY serialises the commits of
//! the transactions that send it, which would cost every append its share
//! of a group commit. One task per daemon process reads the newest `tx_id`
//! of the hot and cold tables instead (two backward index probes) and
//! wakes the workers when it moved.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::Notify;

/// Channel the CLI notifies after pausing, resuming, requeueing, resetting.
pub const CONTROL_CHANNEL: &str = "rf_projection_control";

/// How often the high-water mark is read: well inside the latency a
/// projection is expected to keep (tens of milliseconds), at the cost of
/// one cheap statement per interval per process.
pub const WATCH_INTERVAL: Duration = Duration::from_millis(10);

/// How long to wait before reading again after the database did not answer.
const RETRY_AFTER: Duration = Duration::from_millis(500);

/// The newest committed `tx_id` of each table, as this snapshot sees them.
const HIGH_WATER: &str =
    "SELECT (SELECT max(tx_id) FROM events), (SELECT max(tx_id) FROM events_archive)";

type Mark = (Option<i64>, Option<i64>);

/// [`listen_every`] at [`WATCH_INTERVAL`].
pub async fn listen(pool: PgPool) -> Result<Arc<Notify>, sqlx::Error> {
    listen_every(pool, WATCH_INTERVAL).await
}

/// [`listen`] for workers that read the log from a standby: the
/// high-water mark is watched on `log` (the standby), so a wake-up comes
/// once an event can be read there, not when the primary commits it; the
/// operators' notifications still come from `control` (the primary: a
/// standby neither sends nor relays them).
pub async fn listen_split(control: PgPool, log: PgPool) -> Result<Arc<Notify>, sqlx::Error> {
    listen_on(control, log, WATCH_INTERVAL).await
}

/// Starts the tasks that wake the returned `Notify`: one reads the log's
/// high-water mark every `interval` and wakes when it moved; one listens
/// for operators' notifications about `pool`'s schema. A lost connection
/// wakes too (what was committed meanwhile is found by the batch), and is
/// re-established.
///
/// Returns once the first mark is read and the subscription is in place,
/// so that an event committed after this returns always wakes a worker:
/// its commit raises the mark, or it was open while a newer event
/// committed, and the batch that newer one woke found it held back and
/// looks again (`BatchOutcome::HeldBack`).
pub async fn listen_every(pool: PgPool, interval: Duration) -> Result<Arc<Notify>, sqlx::Error> {
    listen_on(pool.clone(), pool, interval).await
}

async fn listen_on(
    control: PgPool,
    pool: PgPool,
    interval: Duration,
) -> Result<Arc<Notify>, sqlx::Error> {
    let notify = Arc::new(Notify::new());
    let schema: String = sqlx::query_scalar("SELECT current_schema()")
        .fetch_one(&control)
        .await?;
    let mut listener = subscribe(&control).await?;
    let mut mark = high_water(&pool).await?;
    let wake = notify.clone();
    tokio::spawn(async move {
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) if concerns(n.payload(), &schema) => wake.notify_one(),
                Ok(Some(_)) => {}
                // The connection dropped; the next call reconnects and
                // listens again.
                Ok(None) => wake.notify_one(),
                Err(error) => {
                    tracing::debug!(%error, "cannot reach the database to listen; polling meanwhile");
                    wake.notify_one();
                    tokio::time::sleep(RETRY_AFTER).await;
                }
            }
        }
    });
    let wake = notify.clone();
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        // A slow read is not made up for with a burst of reads.
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match high_water(&pool).await {
                Ok(now) if now != mark => {
                    mark = now;
                    wake.notify_one();
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::debug!(%error, "cannot read the log's high-water mark; polling meanwhile");
                    wake.notify_one();
                    tokio::time::sleep(RETRY_AFTER).await;
                }
            }
        }
    });
    Ok(notify)
}

async fn high_water(pool: &PgPool) -> Result<Mark, sqlx::Error> {
    sqlx::query_as(HIGH_WATER).fetch_one(pool).await
}

async fn subscribe(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CONTROL_CHANNEL).await?;
    Ok(listener)
}

/// Whether a notification with `payload` is about `schema`. Notifications
/// name the schema that changed, since channels span the database and
/// every schema tenant has its own store; an empty payload wakes everyone.
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
