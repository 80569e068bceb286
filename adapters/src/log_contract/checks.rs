//! The event log checks; each panics on a breach. Every check works on
//! streams of its own, so a side may run them on one database.

use std::time::Duration;

use rillflow_core::ExpectedVersion::{self, Any, Exact, Exists, NoStream};
use tokio::time::sleep;

use super::harness::{Appended, LogHarness, StreamEvent};

/// How long a statement is given to show it waits: well under the model's
/// lock timeout (0.5 s), after which a waiting statement fails.
const HOLD: Duration = Duration::from_millis(200);

async fn wrote<H: LogHarness>(
    h: &H,
    stream: u32,
    expected: ExpectedVersion,
    payloads: &[u64],
) -> (u64, u64) {
    match h.append(stream, expected, None, payloads).await {
        Appended::Wrote { first, last } => (first, last),
        other => panic!("append {payloads:?} to {stream} expecting {expected:?}: {other:?}"),
    }
}

fn versions(events: &[StreamEvent]) -> Vec<u64> {
    events.iter().map(|e| e.version).collect()
}

fn payloads(events: &[StreamEvent]) -> Vec<u64> {
    events.iter().map(|e| e.payload).collect()
}

pub(super) async fn expected_versions<H: LogHarness>(h: &H) {
    let s = 1;
    let conflict = |actual| Appended::Conflict { actual };
    assert_eq!(h.append(s, Exact(1), None, &[1]).await, conflict(0));
    assert_eq!(h.append(s, Exists, None, &[1]).await, conflict(0));
    assert_eq!(
        wrote(h, s, NoStream, &[1, 2]).await,
        (1, 2),
        "a batch gets contiguous versions"
    );
    assert_eq!(h.append(s, NoStream, None, &[3]).await, conflict(2));
    assert_eq!(wrote(h, s, Exists, &[3]).await, (3, 3));
    assert_eq!(wrote(h, s, Exact(3), &[4]).await, (4, 4));
    assert_eq!(h.append(s, Exact(3), None, &[5]).await, conflict(4));
    assert_eq!(wrote(h, s, Any, &[5]).await, (5, 5));
    assert_eq!(
        wrote(h, 2, Exact(0), &[6]).await,
        (1, 1),
        "exact 0: no stream yet"
    );
    let read = h.read_stream(s, false).await;
    assert_eq!(versions(&read), [1, 2, 3, 4, 5]);
    assert_eq!(payloads(&read), [1, 2, 3, 4, 5], "conflicts wrote nothing");
}

pub(super) async fn keys<H: LogHarness>(h: &H) {
    let (s, other) = (1, 2);
    let first = h.append(s, NoStream, Some(7), &[10, 11]).await;
    assert_eq!(first, Appended::Wrote { first: 1, last: 2 });
    let retry = h.append(s, NoStream, Some(7), &[10, 11]).await;
    assert_eq!(
        retry,
        Appended::Replayed { first: 1, last: 2 },
        "the retry wins over an expectation that no longer holds"
    );
    assert_eq!(
        h.append(s, Any, Some(7), &[10, 12]).await,
        Appended::KeyReused,
        "other events under the key"
    );
    assert_eq!(
        h.append(other, Any, Some(7), &[10, 11]).await,
        Appended::KeyReused,
        "the key on another stream"
    );
    assert_eq!(
        h.append(s, Exact(2), Some(8), &[13]).await,
        Appended::Wrote { first: 3, last: 3 },
        "a new key appends"
    );
    assert_eq!(payloads(&h.read_stream(s, false).await), [10, 11, 13]);
    assert!(
        h.read_stream(other, true).await.is_empty(),
        "nothing written"
    );
}

pub(super) async fn open_append<H: LogHarness>(h: &H) {
    let s = 1;
    let (open, first, last) = h.begin_append(s, &[1, 2]).await;
    assert_eq!((first, last), (1, 2));
    assert!(h.read_stream(s, true).await.is_empty(), "not committed yet");
    let waiting = {
        let h = h.clone();
        tokio::spawn(async move { h.append(s, Any, None, &[3]).await })
    };
    sleep(HOLD).await;
    assert!(!waiting.is_finished(), "the next append waits for the head");
    h.end_append(open, true).await;
    let next = waiting.await.expect("the append's task");
    assert_eq!(next, Appended::Wrote { first: 3, last: 3 });
    let (open, first, _) = h.begin_append(s, &[4]).await;
    assert_eq!(first, 4);
    h.end_append(open, false).await;
    assert_eq!(
        wrote(h, s, Exact(3), &[5]).await,
        (4, 4),
        "a rolled-back append takes no version"
    );
    assert_eq!(payloads(&h.read_stream(s, true).await), [1, 2, 3, 5]);
}

pub(super) async fn across_moves<H: LogHarness>(h: &H) {
    let s = 1;
    let first = h.append(s, NoStream, Some(1), &[1, 2, 3]).await;
    assert_eq!(first, Appended::Wrote { first: 1, last: 3 });
    assert!(h.mark(s).await, "marked");
    assert!(!h.mark(s).await, "marked already");
    assert_eq!(h.move_all().await, 3);
    let all = h.read_stream(s, true).await;
    assert_eq!(versions(&all), [1, 2, 3]);
    assert!(all.iter().all(|e| e.cold), "moved cold: {all:?}");
    assert_eq!(
        h.append(s, NoStream, None, &[9]).await,
        Appended::Conflict { actual: 3 },
        "the head decides, wherever the events are"
    );
    let retry = h.append(s, Any, Some(1), &[1, 2, 3]).await;
    assert_eq!(
        retry,
        Appended::Replayed { first: 1, last: 3 },
        "keys hold across tiers"
    );
    assert_eq!(
        wrote(h, s, Exact(3), &[4]).await,
        (4, 4),
        "versions never restart"
    );
    assert!(h.reactivate(s).await);
    assert_eq!(wrote(h, s, Exact(4), &[5]).await, (5, 5));
    let all = h.read_stream(s, true).await;
    assert_eq!(versions(&all), [1, 2, 3, 4, 5], "each event once");
    assert!(!all[4].cold, "a reactivated stream grows hot: {all:?}");
}

pub(super) async fn hot_reads<H: LogHarness>(h: &H) {
    let (kept, archived, moved) = (1, 2, 3);
    for s in [kept, archived, moved] {
        wrote(h, s, NoStream, &[s.into(), 10 + u64::from(s)]).await;
    }
    assert!(h.mark(moved).await);
    assert_eq!(h.move_all().await, 2);
    // Marked after the move: its events are still hot.
    assert!(h.mark(archived).await);
    assert_eq!(versions(&h.read_stream(kept, false).await), [1, 2]);
    assert!(
        h.read_stream(archived, false).await.is_empty(),
        "archived, not moved"
    );
    assert!(
        h.read_stream(moved, false).await.is_empty(),
        "archived and moved"
    );
    for s in [kept, archived, moved] {
        let all = h.read_stream(s, true).await;
        assert_eq!(payloads(&all), [s.into(), 10 + u64::from(s)], "stream {s}");
        assert_eq!(
            all.iter().all(|e| e.cold),
            s == moved,
            "stream {s}: {all:?}"
        );
    }
    assert!(h.reactivate(moved).await);
    assert!(
        h.read_stream(moved, false).await.is_empty(),
        "reactivated: only what is still hot, none of it moved back"
    );
    wrote(h, moved, Exact(2), &[99]).await;
    assert_eq!(payloads(&h.read_stream(moved, false).await), [99]);
}

pub(super) async fn concurrent_move<H: LogHarness>(h: &H) {
    let s = 1;
    wrote(h, s, NoStream, &[1, 2]).await;
    assert!(h.mark(s).await);
    let (open, first, _) = h.begin_append(s, &[3]).await;
    assert_eq!(first, 3);
    let mover = {
        let h = h.clone();
        tokio::spawn(async move { h.move_all().await })
    };
    sleep(HOLD).await;
    h.end_append(open, true).await;
    mover.await.expect("the mover's task");
    h.move_all().await;
    let all = h.read_stream(s, true).await;
    assert_eq!(versions(&all), [1, 2, 3], "every event once, none lost");
    assert_eq!(payloads(&all), [1, 2, 3]);
    assert!(all.iter().all(|e| e.cold), "all moved in the end: {all:?}");
}

pub(super) async fn redirect<H: LogHarness>(h: &H) {
    let s = 1;
    wrote(h, s, NoStream, &[1, 2]).await;
    assert!(h.mark(s).await);
    h.set_redirect(true).await;
    wrote(h, s, Exact(2), &[3]).await;
    let all = h.read_stream(s, true).await;
    let cold: Vec<bool> = all.iter().map(|e| e.cold).collect();
    assert_eq!(
        cold,
        [false, false, true],
        "marked, not moved; the new event redirected"
    );
    assert!(h.reactivate(s).await);
    wrote(h, s, Exact(3), &[4]).await;
    let all = h.read_stream(s, true).await;
    assert_eq!(versions(&all), [1, 2, 3, 4]);
    assert!(!all[3].cold, "reactivated: appends land hot again");
    h.set_redirect(false).await;
}
