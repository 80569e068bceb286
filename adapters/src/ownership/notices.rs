//! Ownership change notices: a release, join, leave or repartition wakes
//! the projection's other workers at once instead of at their next
//! heartbeat. Missing one only costs time: every round reads the database.

use std::collections::BTreeMap;
use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::mpsc;

use super::driver::OwnerSignal;
use super::store::CHANGES_CHANNEL;

/// Subscribes now (so nothing sent after this returns is missed), then
/// forwards each notice to the driver of the projection it names as
/// [`OwnerSignal::PeerChanged`]. A lost subscription is taken again, after
/// 50 ms doubling up to `retry`. Ends when every driver is gone.
pub async fn forward_changes(
    pool: PgPool,
    drivers: BTreeMap<String, mpsc::Sender<OwnerSignal>>,
    retry: Duration,
) -> Result<(), sqlx::Error> {
    let first = listen(&pool).await?;
    tokio::spawn(async move {
        let mut listener = Some(first);
        let mut backoff = Duration::ZERO;
        loop {
            if let Some(mut l) = listener.take() {
                loop {
                    match l.recv().await {
                        Ok(notice) => {
                            if let Some(driver) = drivers.get(notice.payload()) {
                                // Full means a sync is coming anyway.
                                let _ = driver.try_send(OwnerSignal::PeerChanged);
                            }
                        }
                        Err(error) => {
                            tracing::warn!(%error, "ownership notices interrupted");
                            break;
                        }
                    }
                }
            }
            if drivers.values().all(|d| d.is_closed()) {
                return;
            }
            tokio::time::sleep(backoff).await;
            match listen(&pool).await {
                Ok(l) => {
                    listener = Some(l);
                    backoff = Duration::ZERO;
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for ownership notices");
                    backoff = (backoff * 2).clamp(
                        Duration::from_millis(50),
                        retry.max(Duration::from_millis(50)),
                    );
                }
            }
        }
    });
    Ok(())
}

async fn listen(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANGES_CHANNEL).await?;
    Ok(listener)
}
