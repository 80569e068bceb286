//! Graceful stop on SIGINT or SIGTERM.

use std::future::Future;

use anyhow::{Context, Result};
use tokio::signal::unix::{signal, SignalKind};

/// Resolves at the first SIGINT or SIGTERM after this call.
///
/// The handlers are installed here, before the future is first polled, so a
/// signal that arrives while the caller is busy elsewhere is kept, not lost.
pub fn shutdown() -> Result<impl Future<Output = ()>> {
    let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut terminate =
        signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    Ok(async move {
        tokio::select! {
            biased;
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}
