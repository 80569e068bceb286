//! One simulation at a time per process, each started at the same point of
//! tokio's task numbering, so that a seed's trace does not depend on what
//! the process ran before (SIM-2).
//!
//! tokio numbers every task from one process-wide counter, and a
//! current-thread runtime (turmoil gives each host one) files the tasks it
//! spawns in four lists chosen by that number. When a host is crashed its
//! runtime is dropped list by list, so the order in which its tasks' sockets
//! close, and so which closing message gets which latency from the seeded
//! network, depends on the counter's value when the run began. That order
//! reaches the trace: the database learns of a crashed node's end through
//! the close of its lease session, and nodes through the close of their
//! connections when the database restarts. A run found in a sweep
//! (`--seeds`) would then not replay alone (`--reproduce`), and runs on
//! parallel test threads would interleave their numbers.

use std::sync::{Mutex, MutexGuard};

/// How many lists a current-thread runtime files its tasks in (tokio
/// 1.54: `OwnedTasks::new(1)`, four lists per core, by task number).
const TASK_LISTS: u64 = 4;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Waits until no other simulation runs in this process, then moves tokio's
/// task counter to the start of a cycle of [`TASK_LISTS`]. Hold the guard
/// for the whole simulation.
pub fn exclusive() -> MutexGuard<'static, ()> {
    // A run that panicked (a failed test) leaves nothing behind to guard.
    let guard = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime to number tasks with");
    loop {
        let id = runtime.block_on(async {
            tokio::spawn(async { tokio::task::id() })
                .await
                .expect("a task that cannot fail")
        });
        let number: u64 = id.to_string().parse().expect("task ids print as numbers");
        if number % TASK_LISTS == TASK_LISTS - 1 {
            break;
        }
    }
    guard
}
