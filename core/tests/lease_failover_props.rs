//! Failover rules as properties over arbitrary clusters: at most one
//! node competes inside the candidate window, whatever the row order.

mod failover_views;

use failover_views::*;
use proptest::prelude::*;
use rillflow_core::lease::failover::*;
use rillflow_core::lease::*;
use std::collections::BTreeMap;

use NodeRole::{Cold, Demoting, Hot, Stopped};

fn role() -> impl Strategy<Value = NodeRole> {
    prop_oneof![Just(Hot), Just(Cold), Just(Demoting), Just(Stopped)]
}

fn arb_rules() -> impl Strategy<Value = FailoverRules> {
    prop_oneof![
        Just(LeaseConfig::default()),
        Just(LeaseConfig::from_secs(1, 3, 1)),
        Just(LeaseConfig::from_secs(2, 10, 0)),
    ]
    .prop_map(|c| FailoverRules::new(&c))
}

/// Unique names, as the primary key guarantees; ages around the ttls
/// above so that liveness varies.
fn arb_nodes() -> impl Strategy<Value = Vec<NodeView>> {
    let names = vec!["a", "b", "c", "d", "e", "f"];
    proptest::collection::btree_map(
        proptest::sample::select(names),
        (role(), -100i64..40_000),
        0..6,
    )
    .prop_map(|nodes: BTreeMap<&str, (NodeRole, i64)>| {
        nodes
            .into_iter()
            .map(|(name, (role, age))| node(name, role, age))
            .collect()
    })
}

proptest! {
    /// In the window where only the candidate may try for a lost lease,
    /// at most one node tries: the choice is deterministic and unique.
    /// (A released lease is free to every standby at once by design.)
    #[test]
    fn one_node_at_most_tries_inside_the_candidate_window(
        rules in arb_rules(),
        nodes in arb_nodes(),
        leader in proptest::sample::select(vec!["a", "b", "ghost"]),
        edge in 0u8..4,
        into_window in 1i64..=10_000,
        since_failover in proptest::option::of(0i64..60_000),
        demote_a in any::<bool>(),
    ) {
        // Both ends of the window half the time: that is where an
        // off-by-one would let a second node in.
        let window = rules.lag_limit_ms();
        let free = rules.lease_grace_ms
            + match edge {
                0 => 1,
                1 => window,
                _ => 1 + (into_window - 1) % window,
            };
        let mut v = view(Some(leader), Some(-free), nodes);
        v.since_last_failover_ms = since_failover;
        v.demote = demote_a.then(|| "a".to_owned());
        let trying: Vec<&str> =
            v.nodes.iter().map(|n| n.name.as_str()).filter(|me| should_try_acquire(&v, me, &rules)).collect();
        prop_assert!(trying.len() <= 1, "several nodes try at once: {:?}", trying);
        if let Some(me) = trying.first() {
            prop_assert_eq!(choose_candidate(&v, &rules).map(|n| n.name.as_str()), Some(*me));
        }
    }

    /// The candidate does not depend on the order of the rows.
    #[test]
    fn candidate_ignores_row_order(rules in arb_rules(), nodes in arb_nodes(), leader in proptest::option::of(proptest::sample::select(vec!["a", "b"])), remaining in -40_000i64..40_000) {
        let v = view(leader, Some(remaining), nodes);
        let mut reversed = v.clone();
        reversed.nodes.reverse();
        prop_assert_eq!(
            choose_candidate(&v, &rules).map(|n| n.name.clone()),
            choose_candidate(&reversed, &rules).map(|n| n.name.clone())
        );
    }
}
