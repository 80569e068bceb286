//! Archive routing and read rules, over every combination.

use rillflow_core::archive::{
    append_target, read_plan, AppendTarget, Backend, ReadPlan, StreamState,
};

use AppendTarget::{ArchiveTable, ColdPartition};
use Backend::*;
use StreamState::*;

/// (backend, redirect, state) → target: all 16 combinations.
const APPENDS: [(Backend, bool, StreamState, AppendTarget); 16] = [
    (DualTable, false, Hot, AppendTarget::Hot),
    (DualTable, false, Archived, AppendTarget::Hot),
    (DualTable, false, Cold, AppendTarget::Hot),
    (DualTable, false, Reactivated, AppendTarget::Hot),
    (DualTable, true, Hot, AppendTarget::Hot),
    (DualTable, true, Archived, ArchiveTable),
    (DualTable, true, Cold, ArchiveTable),
    (DualTable, true, Reactivated, AppendTarget::Hot),
    (Partitioned, false, Hot, AppendTarget::Hot),
    (Partitioned, false, Archived, AppendTarget::Hot),
    (Partitioned, false, Cold, ColdPartition),
    (Partitioned, false, Reactivated, AppendTarget::Hot),
    (Partitioned, true, Hot, AppendTarget::Hot),
    (Partitioned, true, Archived, AppendTarget::Hot),
    (Partitioned, true, Cold, ColdPartition),
    (Partitioned, true, Reactivated, AppendTarget::Hot),
];

#[test]
fn appends_land_where_the_table_says() {
    for (backend, redirect, state, want) in APPENDS {
        assert_eq!(
            append_target(backend, redirect, state),
            want,
            "{backend} redirect={redirect} {state:?}"
        );
    }
}

#[test]
fn the_table_covers_every_combination_once() {
    let mut seen: Vec<(Backend, bool, StreamState)> =
        APPENDS.iter().map(|(b, r, s, _)| (*b, *r, *s)).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 2 * 2 * 4);
}

/// ARCH-4's two halves: with redirect on, an archived stream's appends go
/// cold on the dual-table backend; after reactivation, hot on both.
#[test]
fn redirect_and_reactivation() {
    assert_eq!(append_target(DualTable, true, Archived), ArchiveTable);
    for backend in [DualTable, Partitioned] {
        for redirect in [false, true] {
            assert_eq!(
                append_target(backend, redirect, Reactivated),
                AppendTarget::Hot
            );
            assert_eq!(
                append_target(backend, redirect, StreamState::Hot),
                AppendTarget::Hot
            );
        }
    }
    // Only the dual-table backend has a redirect switch.
    for state in [StreamState::Hot, Archived, Cold, Reactivated] {
        assert_eq!(
            append_target(Partitioned, false, state),
            append_target(Partitioned, true, state)
        );
    }
}

#[test]
fn hot_reads_never_scan_cold_storage_or_return_archived_streams() {
    assert_eq!(
        read_plan(false),
        ReadPlan {
            hot: true,
            cold: false,
            skip_archived_streams: true
        }
    );
    assert_eq!(
        read_plan(true),
        ReadPlan {
            hot: true,
            cold: true,
            skip_archived_streams: false
        }
    );
}

#[test]
fn backends_parse_and_print() {
    for b in [DualTable, Partitioned] {
        assert_eq!(b.to_string().parse::<Backend>(), Ok(b));
    }
    assert!("cold"
        .parse::<Backend>()
        .unwrap_err()
        .contains("dual-table or partitioned"));
    assert!(Archived.is_archived() && Cold.is_archived());
    assert!(!StreamState::Hot.is_archived() && !Reactivated.is_archived());
}
