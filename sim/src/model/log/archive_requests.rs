//! The archive scenario's requests, applied to the model's event store:
//! appends with expected versions and keys, stream reads, reads of the
//! whole log, and the archive operations. Each is one atomic step; `Busy`
//! tells the database host to wait for a lock and ask again.

use std::time::Duration;

use rillflow_core::ExpectedVersion;

use crate::client::sim_store::micros;
use crate::model::log::event_log::ModelLog;
use crate::model::log::events::{AppendRequest, Outcome};
use crate::model::log::move_scope::MoveScope;
use crate::model::log::tiers::{Tier, Tiers};
use crate::protocol::{ArchiveRequest, FeedRow, Reply, StreamRow};

/// The failure of an append whose idempotency key stands for another
/// request, as `rf_append` raises it (sql/0011).
pub const KEY_REUSED: &str = "idempotency key already used for another request";

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn reply(outcome: Outcome, rows: &Tiers) -> Reply {
    match outcome {
        Outcome::Started { xid, first, last } => Reply::Appended { xid, first, last },
        Outcome::Replayed { first, last } => Reply::Replayed { first, last },
        Outcome::Conflict { actual } => Reply::Conflict { actual },
        Outcome::KeyReused => Reply::Failed(KEY_REUSED.to_owned()),
        Outcome::Busy => Reply::Busy,
        Outcome::Passed => Reply::Failed("RF007: readers passed this transaction".to_owned()),
        Outcome::Stale => Reply::Failed("RF003: the stream has a newer writer".to_owned()),
        Outcome::Done { changed } => Reply::Changed { changed },
        Outcome::NoStream => Reply::NoStream,
        Outcome::Planned { before, upto } => Reply::MovePlan {
            before_us: micros(before),
            upto,
        },
        Outcome::Moved(batch) => Reply::Moved {
            last_stream: batch.last_stream(rows),
            events: count(batch.cursors.len()),
            cold: count(batch.cold.len()),
            locked: batch.locked,
        },
        Outcome::Copied(batch) => Reply::Copied {
            last_stream: batch.last_stream(rows),
            locked: batch.locked,
            cursors: batch.cursors,
        },
    }
}

fn scope(from: Option<u32>, before_us: u64, upto: u64, limit: u32) -> MoveScope {
    MoveScope {
        from,
        before: Duration::from_micros(before_us),
        upto,
        limit: limit as usize,
    }
}

/// Applies an archive-scenario request at database time `now`.
pub fn apply(log: &mut ModelLog, now: Duration, request: &ArchiveRequest) -> Reply {
    let events = log.events_mut();
    let outcome = match request {
        ArchiveRequest::Append {
            stream,
            expected,
            idem_key,
            payloads,
        } => {
            let Ok(expected) = expected.parse::<ExpectedVersion>() else {
                return Reply::Failed(format!("invalid expected version {expected:?}"));
            };
            if payloads.is_empty() {
                return Reply::Failed("an append needs at least one event".to_owned());
            }
            let request = AppendRequest {
                stream: *stream,
                expected,
                key: *idem_key,
                payloads: payloads.clone(),
            };
            events.begin(now, &request)
        }
        ArchiveRequest::ReadStream {
            stream,
            include_archived,
        } => {
            let rows = events
                .read_stream(*stream, *include_archived)
                .into_iter()
                .map(|(tier, r)| StreamRow {
                    version: r.event.version,
                    payload: r.payload,
                    cold: tier == Tier::Cold,
                })
                .collect();
            return Reply::Stream { events: rows };
        }
        ArchiveRequest::ReadAll {
            after,
            limit,
            include_archived,
        } => {
            let rows = events
                .read_all(*after, *limit as usize, *include_archived)
                .into_iter()
                .map(|(tier, r)| FeedRow {
                    cursor: r.event.cursor(),
                    stream: r.event.stream,
                    version: r.event.version,
                    payload: r.payload,
                    cold: tier == Tier::Cold,
                })
                .collect();
            return Reply::Feed { events: rows };
        }
        ArchiveRequest::Mark { stream } => events.mark(now, *stream),
        ArchiveRequest::Reactivate { stream } => events.reactivate(now, *stream),
        ArchiveRequest::SetRedirect { on } => events.set_redirect(now, *on),
        ArchiveRequest::MoveStart { older_than_ms } => {
            events.move_plan(now, Duration::from_millis(*older_than_ms))
        }
        ArchiveRequest::MoveBatch {
            from,
            before_us,
            upto,
            limit,
        } => events.move_batch(now, &scope(*from, *before_us, *upto, *limit)),
        ArchiveRequest::CopyBatch {
            from,
            before_us,
            upto,
            limit,
        } => events.copy_batch(now, &scope(*from, *before_us, *upto, *limit)),
        ArchiveRequest::DeleteCopied { cursors } => events.delete_hot(now, cursors),
    };
    reply(outcome, log.events().rows())
}

/// Whether `request` waits for row or table locks (then a `Busy` answer
/// means: ask again until the lock timeout).
pub fn waits_for_locks(request: &ArchiveRequest) -> bool {
    matches!(
        request,
        ArchiveRequest::Append { .. }
            | ArchiveRequest::Mark { .. }
            | ArchiveRequest::Reactivate { .. }
            | ArchiveRequest::SetRedirect { .. }
            | ArchiveRequest::MoveBatch { .. }
            | ArchiveRequest::CopyBatch { .. }
    )
}
