//! A writer that merges appends of many tasks into batches.
//!
//! On a durable server each commit waits for a WAL flush. Appends that
//! arrive while a batch is being written wait in a queue and go together in
//! the next batch: one transaction, one flush, one round trip for all of
//! them, each still judged on its own terms ([`EventStore::append_batch`]).

use std::sync::Arc;

use rillflow_core::ExpectedVersion;
use tokio::sync::{mpsc, oneshot, Semaphore};
use uuid::Uuid;

use crate::append_batch::AppendRequest;
use crate::error::StoreError;
use crate::event::{AppendOptions, AppendResult, NewEvent};
use crate::store::{validate, EventStore};

/// How an [`AppendWriter`] queues and batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterConfig {
    /// Appends that may wait in the queue; a caller beyond it waits for room
    /// (back pressure), it is never refused.
    pub queue: usize,
    /// Most appends in one batch.
    pub max_appends: usize,
    /// Most events in one batch (an append bigger than this goes alone).
    pub max_events: usize,
    /// Batches in flight at once, each on its own connection: while one
    /// waits for its commit's flush, the next is written.
    pub in_flight: usize,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            queue: 4096,
            max_appends: 256,
            max_events: 4096,
            in_flight: 2,
        }
    }
}

struct Pending {
    request: AppendRequest,
    reply: oneshot::Sender<Result<AppendResult, StoreError>>,
}

/// Appends through a background task that batches them. Cheap to clone;
/// the task ends once every clone is dropped and the queue is drained.
///
/// Cancellation: dropping an [`AppendWriter::append`] future before its
/// append was taken into a batch withdraws it (nothing is written); after
/// that, the append commits or not with its batch and the caller does not
/// learn which, as with any append whose future is dropped in flight. An
/// idempotency key (or event ids) makes the retry that finds out safe.
#[derive(Debug, Clone)]
pub struct AppendWriter {
    queue: mpsc::Sender<Pending>,
}

impl EventStore {
    /// A writer that merges the appends of concurrent tasks into batches.
    /// Must be called inside a Tokio runtime.
    pub fn writer(&self, config: WriterConfig) -> AppendWriter {
        let (queue, rx) = mpsc::channel(config.queue.max(1));
        tokio::spawn(run(self.clone(), rx, config));
        AppendWriter { queue }
    }
}

impl AppendWriter {
    /// Appends `events` to `stream` if `expected` holds, in the next batch:
    /// the same outcome as [`EventStore::append`]. A malformed request is
    /// refused here and never queued.
    pub async fn append(
        &self,
        stream: Uuid,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        options: AppendOptions,
    ) -> Result<AppendResult, StoreError> {
        self.submit(AppendRequest {
            stream,
            expected,
            events,
            options,
        })
        .await
    }

    /// [`AppendWriter::append`] of a request.
    pub async fn submit(&self, request: AppendRequest) -> Result<AppendResult, StoreError> {
        self.enqueue(request).await?.outcome().await
    }

    /// Queues `request`, waiting for room, and returns its place in the
    /// queue; the outcome comes from [`Queued::outcome`]. Requests queued
    /// one after another are taken in that order, but two batches may be
    /// written at once: appends to one stream whose order matters must not
    /// be in flight together (wait for the first before queueing the next).
    pub async fn enqueue(&self, request: AppendRequest) -> Result<Queued, StoreError> {
        validate(&request.events, &request.options)?;
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Pending { request, reply })
            .await
            .map_err(|_| StoreError::Unavailable("the append writer has stopped".into()))?;
        Ok(Queued(answer))
    }
}

/// An append in an [`AppendWriter`]'s queue. Dropping it before the append
/// was taken into a batch withdraws the append.
#[derive(Debug)]
pub struct Queued(oneshot::Receiver<Result<AppendResult, StoreError>>);

impl Queued {
    /// The append's outcome, once its batch is written.
    pub async fn outcome(self) -> Result<AppendResult, StoreError> {
        self.0.await.unwrap_or_else(|_| {
            Err(StoreError::OutcomeUnknown(
                "the append writer stopped with this append in flight".into(),
            ))
        })
    }
}

/// Takes what waits in the queue, up to the limits, whenever a batch slot is
/// free: the longer the batches in flight take, the bigger the next one.
async fn run(store: EventStore, mut rx: mpsc::Receiver<Pending>, config: WriterConfig) {
    let slots = Arc::new(Semaphore::new(config.in_flight.max(1)));
    // An append too big to join the batch before it leads the next one.
    let mut carried: Option<Pending> = None;
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let first = match carried.take() {
            Some(p) => p,
            None => match rx.recv().await {
                Some(p) => p,
                None => break,
            },
        };
        let mut events = first.request.events.len();
        let mut batch = vec![first];
        while batch.len() < config.max_appends && events < config.max_events {
            match rx.try_recv() {
                Ok(next) if events + next.request.events.len() <= config.max_events => {
                    events += next.request.events.len();
                    batch.push(next);
                }
                Ok(next) => {
                    carried = Some(next);
                    break;
                }
                Err(_) => break,
            }
        }
        let store = store.clone();
        tokio::spawn(async move {
            write(&store, batch).await;
            drop(slot);
        });
    }
    // Every sender is gone and the queue is drained; batches in flight
    // finish in their own tasks and answer their callers.
}

/// One batch: appends whose callers have given up are left out.
async fn write(store: &EventStore, batch: Vec<Pending>) {
    let (requests, replies): (Vec<AppendRequest>, Vec<_>) = batch
        .into_iter()
        .filter(|p| !p.reply.is_closed())
        .map(|p| (p.request, p.reply))
        .unzip();
    if requests.is_empty() {
        return;
    }
    let results = store.append_batch(&requests).await;
    for (reply, result) in replies.into_iter().zip(results) {
        let _ = reply.send(result);
    }
}
