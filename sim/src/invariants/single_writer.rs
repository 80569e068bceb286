//! LEASE-1 in the database: no write commits under an epoch other than the
//! current grant, or after that grant's lease ran out.

use crate::model_db::WriteRecord;

use super::Violation;

/// The first committed write that was not under the current, unexpired lease.
pub fn check(writes: &[WriteRecord]) -> Option<Violation> {
    writes
        .iter()
        .find(|w| w.epoch != w.current_epoch || !w.lease_valid)
        .map(|w| Violation {
            invariant: "LEASE-1",
            at: w.at,
            detail: format!(
                "{} committed a write under epoch {} while the current epoch was {} (lease {})",
                w.node,
                w.epoch,
                w.current_epoch,
                if w.lease_valid { "valid" } else { "expired" }
            ),
        })
}
