//! LEASE-1 across a lossy promotion: an epoch is granted once, whatever
//! history the database lost, and all writes under an epoch are one
//! node's.
//!
//! `single_writer` judges each write against the epoch the database held
//! when it committed, which after a promotion is the promoted server's
//! (the lost rows are gone with their history, so that check needs no
//! change). What it cannot see is an epoch handed out twice: a node still
//! holding an epoch granted on the lost history writes under it, and if
//! the new timeline granted the same number to another node, the fence
//! (which compares epochs) admits both. The grants and writes recorded
//! here span both servers, so this check sees it.

use std::collections::BTreeMap;

use crate::model::lease::records::{GrantRecord, WriteRecord};

use super::Violation;

/// The first grant of an epoch granted before, or the first write under an
/// epoch by a node other than the first to write under it, whichever came
/// first.
pub fn check(grants: &[GrantRecord], writes: &[WriteRecord]) -> Option<Violation> {
    let mut granted: BTreeMap<u64, &GrantRecord> = BTreeMap::new();
    let twice = grants.iter().find_map(|g| {
        granted.insert(g.epoch, g).map(|first| Violation {
            invariant: "LEASE-1",
            at: g.at,
            detail: format!(
                "epoch {} granted to {} at {:?} was granted again, to {}",
                g.epoch, first.node, first.at, g.node
            ),
        })
    });
    let mut writer: BTreeMap<u64, &WriteRecord> = BTreeMap::new();
    let shared = writes.iter().find_map(|w| {
        let first = *writer.entry(w.epoch).or_insert(w);
        (first.node != w.node).then(|| Violation {
            invariant: "LEASE-1",
            at: w.at,
            detail: format!(
                "{} and {} both committed writes under epoch {} (first at {:?})",
                first.node, w.node, w.epoch, first.at
            ),
        })
    });
    [twice, shared].into_iter().flatten().min_by_key(|v| v.at)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn grant(at: u64, node: &str, epoch: u64) -> GrantRecord {
        GrantRecord {
            at: Duration::from_secs(at),
            node: node.to_owned(),
            epoch,
            failover: false,
            promoted: false,
        }
    }

    fn write(at: u64, node: &str, epoch: u64) -> WriteRecord {
        WriteRecord {
            at: Duration::from_secs(at),
            node: node.to_owned(),
            epoch,
            current_epoch: epoch,
            lease_valid: true,
        }
    }

    #[test]
    fn epochs_above_the_floor_pass_and_a_repeated_one_is_caught() {
        let floor = 1 << 32;
        let grants = [grant(1, "a", 1), grant(2, "a", 2), grant(5, "b", floor)];
        let writes = [write(1, "a", 1), write(3, "a", 2), write(6, "b", floor)];
        assert_eq!(check(&grants, &writes), None);
        let again = [grant(1, "a", 1), grant(2, "a", 2), grant(5, "b", 2)];
        let v = check(&again, &[write(3, "a", 2), write(6, "b", 2)]).expect("caught");
        assert_eq!(v.at, Duration::from_secs(5));
        assert!(v.detail.contains("granted again"), "{v:?}");
        let v = check(&grants, &[write(3, "a", 2), write(6, "b", 2)]).expect("caught");
        assert!(v.detail.contains("both committed"), "{v:?}");
    }
}
