//! The event log checks; each panics on a breach. Every check works on
//! streams of its own, and the reads of the whole log see only what the
//! check appended: each runs on a database of its own.

use std::time::Duration;

use rillflow_core::ExpectedVersion::{self, Any, Exact, Exists, NoStream};
use tokio::time::sleep;

use super::harness::{Appended, FeedEvent, LogHarness, StreamEvent};

/// How long a statement is given to show it waits: well under the model's
/// lock timeout (0.5 s), after which a waiting statement fails.
const HOLD: Duration = Duration::from_millis(200);

/// How long a read of the whole log may take to reach what it should see.
/// On Postgres a transaction of another database can hold the horizon back
/// for a statement or two, so a read may stop short; it may never go past.
const READ_DEADLINE: Duration = Duration::from_secs(20);

/// Before every event.
const START: (u64, u64) = (0, 0);

/// (stream, version, payload, cold) of an event read.
type Seen = (u32, u64, u64, bool);

fn seen(e: &FeedEvent) -> Seen {
    (e.stream, e.version, e.payload, e.cold)
}

/// Reads the whole log after `after`, `page` events at a time, each read
/// going on from the last event of the one before, until it has read
/// `want`; every read may stop short (the horizon), none may skip or add an
/// event, and cursors only grow. Then one more read finds nothing.
async fn read_until<H: LogHarness>(
    h: &H,
    after: (u64, u64),
    page: u32,
    include_archived: bool,
    want: &[Seen],
) -> Vec<FeedEvent> {
    let deadline = tokio::time::Instant::now() + READ_DEADLINE;
    let mut read: Vec<FeedEvent> = Vec::new();
    let mut cursor = after;
    while read.len() < want.len() {
        let next = h.read_all(cursor, page, include_archived).await;
        assert!(next.len() <= page as usize, "at most {page}: {next:?}");
        for e in &next {
            assert!(e.cursor > cursor, "in global order: {e:?} after {cursor:?}");
            cursor = e.cursor;
        }
        read.extend(next);
        let got: Vec<Seen> = read.iter().map(seen).collect();
        assert!(
            want.starts_with(&got),
            "read {got:?}, which is not a beginning of {want:?} (archived: {include_archived})"
        );
        if read.len() < want.len() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "read only {got:?} of {want:?} in {READ_DEADLINE:?}"
            );
            sleep(Duration::from_millis(20)).await;
        }
    }
    let more = h.read_all(cursor, page, include_archived).await;
    assert!(more.is_empty(), "read past {want:?}: {more:?}");
    read
}

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

pub(super) async fn horizon<H: LogHarness>(h: &H) {
    let (before, open, after, rolled_back, later) = (1, 2, 3, 4, 5);
    wrote(h, before, NoStream, &[1]).await;
    let (held, _, _) = h.begin_append(open, &[2]).await;
    wrote(h, after, NoStream, &[3]).await;
    assert_eq!(
        payloads(&h.read_stream(after, true).await),
        [3],
        "committed, and readable by stream"
    );
    // Not the later commit: a reader that went on from it could never go
    // back for the open append's event.
    read_until(h, START, 10, false, &[(before, 1, 1, false)]).await;
    let first = read_until(h, START, 10, true, &[(before, 1, 1, false)]).await;
    h.end_append(held, true).await;
    let rest = [(open, 1, 2, false), (after, 1, 3, false)];
    let read = read_until(h, first[0].cursor, 1, true, &rest).await;
    // An append that rolls back releases the readers as one that commits.
    let (held, _, _) = h.begin_append(rolled_back, &[4]).await;
    wrote(h, later, NoStream, &[5]).await;
    let last = read[1].cursor;
    read_until(h, last, 10, false, &[]).await;
    h.end_append(held, false).await;
    read_until(h, last, 10, false, &[(later, 1, 5, false)]).await;
}

pub(super) async fn global_order<H: LogHarness>(h: &H) {
    let (a, b, c) = (1, 2, 3);
    wrote(h, a, NoStream, &[1, 2]).await;
    wrote(h, b, NoStream, &[3]).await;
    wrote(h, a, Exact(2), &[4]).await;
    wrote(h, c, NoStream, &[5]).await;
    wrote(h, b, Exact(1), &[6]).await;
    assert!(h.mark(b).await);
    assert_eq!(h.move_all().await, 2);
    // Marked after the move: archived, its event still hot; a redirected
    // append then lands cold at the end of the log.
    assert!(h.mark(c).await);
    h.set_redirect(true).await;
    wrote(h, c, Exact(1), &[7]).await;
    h.set_redirect(false).await;
    let every = [
        (a, 1, 1, false),
        (a, 2, 2, false),
        (b, 1, 3, true),
        (a, 3, 4, false),
        (c, 1, 5, false),
        (b, 2, 6, true),
        (c, 2, 7, true),
    ];
    let whole = read_until(h, START, 100, true, &every).await;
    // Pages of two end between tiers: each goes on where the last ended.
    let paged = read_until(h, START, 2, true, &every).await;
    assert_eq!(whole, paged, "the same events at the same cursors");
    let hot = [(a, 1, 1, false), (a, 2, 2, false), (a, 3, 4, false)];
    read_until(h, START, 100, false, &hot).await;
    // Reactivated: the cold events stay cold, the hot one is read again.
    assert!(h.reactivate(c).await);
    let hot = [
        (a, 1, 1, false),
        (a, 2, 2, false),
        (a, 3, 4, false),
        (c, 1, 5, false),
    ];
    read_until(h, START, 100, false, &hot).await;
    read_until(h, START, 100, true, &every).await;
}
