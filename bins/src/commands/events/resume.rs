//! Where `events tail --from` starts, and what it says when the log
//! diverged from the reader's history (a lossy failover lost its event).

use anyhow::Result;
use rillflow_adapters::log_history::{self, Divergence, Resume};
use rillflow_adapters::EventStore;
use rillflow_core::log_history::AtPosition;
use rillflow_core::GlobalCursor;

use crate::cli::{OnDivergence, ResumeFrom};
use crate::commands::Status;

/// The exit status of a refused resume: the history diverged. Not 1, so a
/// script can tell it from a connection failure and decide to rewind.
const DIVERGED: u8 = 3;

/// The cursor to read after.
pub async fn start(store: &EventStore, from: ResumeFrom, on: OnDivergence) -> Result<GlobalCursor> {
    let token = match from {
        ResumeFrom::Position(0) => return Ok(GlobalCursor::START),
        ResumeFrom::Position(position) => {
            // A bare position names whatever event holds it now, which
            // after a lossy failover may be another one: nothing to check.
            // Said once the position is found, so a refusal stays one line.
            let cursor = store.cursor_at(position).await?;
            eprintln!(
                "note: --from {position} is a plain position, which cannot tell whether a failover lost its event; resume from a line's cursor token to have that checked"
            );
            return Ok(cursor);
        }
        ResumeFrom::Token(token) => token,
    };
    let mut conn = store.pool().acquire().await?;
    match log_history::resume(&mut conn, &token).await? {
        Resume::After(cursor) => Ok(cursor),
        Resume::Diverged(d) => match on {
            OnDivergence::Fail => Err(Status::new(DIVERGED, refusal(&d)).into()),
            OnDivergence::Rewind => {
                eprintln!("note: {}; rewinding to it", diverged(&d));
                Ok(d.rewind_to())
            }
        },
    }
}

/// What diverged and the last common position, in one line.
fn diverged(d: &Divergence) -> String {
    let t = &d.token;
    let now = match d.now {
        AtPosition::Nothing => String::new(),
        AtPosition::Event { event_id, .. } if event_id == t.event_id => {
            " (it was written again, by another transaction)".to_owned()
        }
        AtPosition::Event { event_id, .. } => format!(" (event {event_id} is)"),
    };
    let common = match &d.last_common {
        Some(c) => format!("last common position {}", c.position),
        None => "last common position 0, the start of the log".to_owned(),
    };
    format!(
        "history diverged: event {} is no longer at position {}{now}; {common}",
        t.event_id, t.position
    )
}

fn refusal(d: &Divergence) -> String {
    let from = d
        .last_common
        .map(|c| c.to_string())
        .unwrap_or_else(|| "0".to_owned());
    format!(
        "{} (resume with --from {from} or --on-divergence rewind)",
        diverged(d)
    )
}
