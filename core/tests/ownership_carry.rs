//! Repartitioning carries checkpoints: a model of partitions applying a
//! growing log while the partition count changes at random moments. Every
//! event must be applied exactly once and each stream in order.

use proptest::prelude::*;
use rillflow_core::ownership::{carry_over, Carry, Layer, PartitionState};
use rillflow_core::{partition_of, GlobalCursor};

fn at(i: i64) -> GlobalCursor {
    GlobalCursor::new(i, i)
}

#[test]
fn new_partitions_start_at_the_lowest_checkpoint_and_carry_the_rest() {
    let old = vec![
        PartitionState {
            checkpoint: at(7),
            carry: Carry::none(),
        },
        PartitionState {
            checkpoint: at(3),
            carry: Carry::none(),
        },
    ];
    let start = carry_over(&old);
    assert_eq!(start.checkpoint, at(3));
    assert_eq!(
        start.carry.layers(),
        &[Layer {
            total: 2,
            applied: vec![at(7), at(3)]
        }]
    );
    // Hash 4 was in old partition 0, applied up to 7; hash 5 in partition 1,
    // applied up to 3.
    assert!(start.carry.already_applied(4, at(6)));
    assert!(!start.carry.already_applied(4, at(8)));
    assert!(!start.carry.already_applied(5, at(4)));
    // Once a partition moves past 7 the layer says nothing more.
    assert!(start.carry.clone().pruned(at(7)).is_empty());
    assert!(!start.carry.pruned(at(6)).is_empty());
}

#[test]
fn a_second_repartition_keeps_the_first_ones_layer_until_passed() {
    let first = carry_over(&[
        PartitionState {
            checkpoint: at(10),
            carry: Carry::none(),
        },
        PartitionState {
            checkpoint: at(2),
            carry: Carry::none(),
        },
    ]);
    // Three new partitions; one moved to 5, the others did not move.
    let mut moved = first.clone();
    moved.checkpoint = at(5);
    let second = carry_over(&[first.clone(), moved, first]);
    assert_eq!(second.checkpoint, at(2));
    assert_eq!(second.carry.layers().len(), 2, "{:?}", second.carry);
    assert_eq!(second.carry.layers()[1].applied, vec![at(2), at(5), at(2)]);
}

#[test]
fn one_partition_to_many_and_back_is_lossless() {
    let whole = PartitionState {
        checkpoint: at(9),
        carry: Carry::none(),
    };
    let split = carry_over(&[whole]);
    assert_eq!(split.checkpoint, at(9));
    assert!(
        split.carry.is_empty(),
        "nothing beyond the single checkpoint"
    );
    assert_eq!(carry_over(&[]), PartitionState::default());
}

/// The model: a log of events (stream hash per event, cursor = index + 1),
/// of which `visible` are committed, run by `parts.len()` partitions.
#[derive(Debug, Clone)]
struct Model {
    hashes: Vec<i32>,
    visible: usize,
    parts: Vec<PartitionState>,
    applied: Vec<usize>,
}

impl Model {
    fn step(&mut self, key: usize, batch: usize) -> bool {
        let total = self.parts.len() as u32;
        let state = &self.parts[key];
        let read: Vec<usize> = (0..self.visible)
            .filter(|i| at(*i as i64 + 1) > state.checkpoint)
            .filter(|i| partition_of(self.hashes[*i], total) as usize == key)
            .take(batch)
            .collect();
        let Some(last) = read.last() else {
            return false;
        };
        for i in &read {
            if !state
                .carry
                .already_applied(self.hashes[*i], at(*i as i64 + 1))
            {
                self.applied.push(*i);
            }
        }
        let checkpoint = at(*last as i64 + 1);
        let carry = state.carry.clone().pruned(checkpoint);
        self.parts[key] = PartitionState { checkpoint, carry };
        true
    }
}

#[derive(Debug, Clone)]
enum Op {
    Step { key: usize, batch: usize },
    Commit(usize),
    Repartition(u32),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0usize..16, 1usize..5).prop_map(|(key, batch)| Op::Step { key, batch }),
        2 => (1usize..8).prop_map(Op::Commit),
        1 => (1u32..9).prop_map(Op::Repartition),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_event_is_applied_once_in_stream_order(
        streams in prop::collection::vec(0i32..i32::MAX, 1..6),
        picks in prop::collection::vec(0usize..6, 1..60),
        first_total in 1u32..6,
        ops in prop::collection::vec(op(), 0..80),
    ) {
        let hashes: Vec<i32> = picks.iter().map(|p| streams[p % streams.len()]).collect();
        let mut m = Model {
            hashes: hashes.clone(),
            visible: 0,
            parts: vec![PartitionState::default(); first_total as usize],
            applied: Vec::new(),
        };
        for op in ops {
            match op {
                Op::Step { key, batch } => {
                    let key = key % m.parts.len();
                    m.step(key, batch);
                }
                Op::Commit(n) => m.visible = (m.visible + n).min(hashes.len()),
                Op::Repartition(total) => {
                    let start = carry_over(&m.parts);
                    m.parts = vec![start; total as usize];
                }
            }
        }
        m.visible = hashes.len();
        loop {
            let moved = (0..m.parts.len()).fold(false, |any, key| m.step(key, 3) | any);
            if !moved {
                break;
            }
        }
        let mut sorted = m.applied.clone();
        sorted.sort_unstable();
        let expected: Vec<usize> = (0..hashes.len()).collect();
        prop_assert_eq!(sorted, expected, "applied {:?}", m.applied);
        // Per stream, in log order.
        for stream in &streams {
            let order: Vec<usize> = m.applied.iter().copied().filter(|i| hashes[*i] == *stream).collect();
            prop_assert!(order.windows(2).all(|w| w[0] < w[1]), "stream {} out of order: {:?}", stream, order);
        }
    }
}
