//! LEASE-1 in the database: no write commits under an epoch older than the
//! current grant.
//!
//! A write that commits after its lease ran out but before anyone else was
//! granted it is safe: the fence admitted it while the lease was valid, and
//! a grant waits for the transaction's lock, so no other writer can have
//! come in between. The record keeps the lease state for the report.

use crate::model::lease::records::WriteRecord;

use super::Violation;

/// The first committed write under an epoch other than the current one.
pub fn check(writes: &[WriteRecord]) -> Option<Violation> {
    writes
        .iter()
        .find(|w| w.epoch != w.current_epoch)
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn write(epoch: u64, current_epoch: u64, lease_valid: bool) -> WriteRecord {
        WriteRecord {
            at: Duration::from_secs(epoch),
            node: "a".to_owned(),
            epoch,
            current_epoch,
            lease_valid,
        }
    }

    #[test]
    fn only_writes_under_the_current_epoch_pass() {
        assert_eq!(check(&[write(1, 1, true), write(2, 2, true)]), None);
        assert_eq!(
            check(&[write(1, 1, true), write(1, 2, true)]).map(|v| v.at),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            check(&[write(3, 3, false)]),
            None,
            "a late commit nobody overtook is safe"
        );
    }
}
