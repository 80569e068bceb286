//! The event log contract, written once and run against Postgres
//! (`tests/log_contract.rs`) and the simulation's model database
//! (`sim/tests/log_contract.rs`), so the model of the event log and its
//! archive cannot drift from the SQL it mirrors. It spans the store
//! (`store.rs`) and the archive (`archive/`), so it lives beside both.
//!
//! Reads of the whole log are checked as a reader sees them: in global
//! order across tiers, and never past an append that is still open. What
//! holds the horizon back beyond one database's appends (transactions in
//! other databases, transactions that register late) stays with
//! `tests/gap_safety.rs`.

mod checks;
mod harness;

pub use harness::{Appended, FeedEvent, LogHarness, StreamEvent};

/// Every check, by name.
pub const CHECKS: &[&str] = &[
    "expected_versions_follow_the_table",
    "a_key_replays_its_retry_and_refuses_another_request",
    "an_open_append_holds_its_stream_until_it_ends",
    "versions_and_keys_continue_across_archive_moves",
    "hot_reads_leave_archived_streams_out",
    "a_move_never_loses_a_concurrent_append",
    "redirect_lands_appends_cold_until_reactivation",
    "an_open_append_is_never_passed_and_is_read_once_it_commits",
    "reads_with_archived_see_every_tier_in_global_order",
];

/// Declares one `#[test]` per event log check, each calling `$run(name)`,
/// and a test that the list matches [`CHECKS`].
#[macro_export]
macro_rules! log_contract_tests {
    ($run:path) => {
        $crate::log_contract_tests!(
            @each $run;
            expected_versions_follow_the_table,
            a_key_replays_its_retry_and_refuses_another_request,
            an_open_append_holds_its_stream_until_it_ends,
            versions_and_keys_continue_across_archive_moves,
            hot_reads_leave_archived_streams_out,
            a_move_never_loses_a_concurrent_append,
            redirect_lands_appends_cold_until_reactivation,
            an_open_append_is_never_passed_and_is_read_once_it_commits,
            reads_with_archived_see_every_tier_in_global_order,
        );
    };
    (@each $run:path; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $run(stringify!($name));
            }
        )*

        #[test]
        fn every_check_is_run() {
            let here: &[&str] = &[$(stringify!($name)),*];
            assert_eq!(here, $crate::log_contract::CHECKS);
        }
    };
}

/// Runs the check called `name` on `harness`'s side.
pub async fn run<H: LogHarness>(name: &str, harness: &H) {
    match name {
        "expected_versions_follow_the_table" => checks::expected_versions(harness).await,
        "a_key_replays_its_retry_and_refuses_another_request" => checks::keys(harness).await,
        "an_open_append_holds_its_stream_until_it_ends" => checks::open_append(harness).await,
        "versions_and_keys_continue_across_archive_moves" => checks::across_moves(harness).await,
        "hot_reads_leave_archived_streams_out" => checks::hot_reads(harness).await,
        "a_move_never_loses_a_concurrent_append" => checks::concurrent_move(harness).await,
        "redirect_lands_appends_cold_until_reactivation" => checks::redirect(harness).await,
        "an_open_append_is_never_passed_and_is_read_once_it_commits" => {
            checks::horizon(harness).await
        }
        "reads_with_archived_see_every_tier_in_global_order" => checks::global_order(harness).await,
        other => panic!("no event log check named {other:?}"),
    }
}
