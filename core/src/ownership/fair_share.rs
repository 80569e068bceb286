//! Fair share of a projection's partitions among its live workers.
//!
//! Every worker runs [`decide`] on the same picture (live workers and
//! current owners, as the database shows them) and acts only on its own
//! partitions: it releases what is over its quota and claims unowned
//! partitions up to it. No worker takes a partition from another. A worker
//! whose quota fell (one joined) hands partitions over; the newcomer picks
//! them up once they are free. A worker within its quota is never asked to
//! give anything up, so workers not involved in a move keep processing.
//! Claims go through a per-partition epoch in the database, so two workers
//! acting on different pictures cannot both own a partition.

use std::collections::BTreeMap;

/// One step a worker takes on its own behalf.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Move {
    /// Try to take this unowned partition.
    Claim(u32),
    /// Give this partition up (after finishing its current batch).
    Release(u32),
}

/// How many partitions each of `workers` should own: `partitions / n`
/// each, and one more for the first `partitions % n` in name order. Names
/// are deduplicated; the result is in name order.
pub fn quotas(partitions: u32, workers: &[String]) -> BTreeMap<String, u32> {
    let mut names: Vec<&String> = workers.iter().collect();
    names.sort();
    names.dedup();
    let n = names.len() as u32;
    if n == 0 {
        return BTreeMap::new();
    }
    let (base, extra) = (partitions / n, partitions % n);
    names
        .into_iter()
        .enumerate()
        .map(|(i, name)| (name.clone(), base + u32::from((i as u32) < extra)))
        .collect()
}

/// What worker `me` should do, given the live `workers` and the current
/// `owners` of partitions `0..partitions` (a partition whose owner is not
/// live counts as unowned: its lease has run out or is about to).
///
/// Releases come first and take the highest-numbered partitions; claims
/// take the lowest-numbered free ones. A worker that is not live (not in
/// `workers`) releases everything it owns.
pub fn decide(
    me: &str,
    partitions: u32,
    workers: &[String],
    owners: &BTreeMap<u32, String>,
) -> Vec<Move> {
    let quota = quotas(partitions, workers).get(me).copied().unwrap_or(0) as usize;
    let live = |owner: &String| workers.iter().any(|w| w == owner);
    let mine: Vec<u32> = owners
        .iter()
        .filter(|(p, o)| **p < partitions && o.as_str() == me)
        .map(|(p, _)| *p)
        .collect();
    if mine.len() > quota {
        return mine[quota..]
            .iter()
            .rev()
            .map(|p| Move::Release(*p))
            .collect();
    }
    (0..partitions)
        .filter(|p| !owners.get(p).is_some_and(live))
        .take(quota - mine.len())
        .map(Move::Claim)
        .collect()
}
