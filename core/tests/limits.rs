//! Event types and idempotency keys: bounded, printable, never echoed.

use rillflow_core::limits::{event_type, idempotency_key, NameError, MAX_EVENT_TYPE};

#[test]
fn names_are_bounded_and_printable() {
    assert!(event_type("OrderPlaced").is_ok());
    assert!(event_type("Überweisung gebucht").is_ok());
    assert!(idempotency_key("order-42/attempt").is_ok());
    assert!(event_type(&"x".repeat(MAX_EVENT_TYPE)).is_ok());

    let long = "y".repeat(1 << 20);
    let cases: [(Result<(), NameError>, &str); 5] = [
        (event_type(""), "must not be empty"),
        (event_type("   "), "must not be empty"),
        (
            event_type(&"x".repeat(MAX_EVENT_TYPE + 1)),
            "257 bytes long; at most 256",
        ),
        (idempotency_key(&long), "1048576 bytes long; at most 512"),
        (
            event_type("Paid\u{1b}[31m"),
            "control character (U+001B) at byte 4",
        ),
    ];
    for (result, want) in cases {
        let err = result.unwrap_err().to_string();
        assert!(err.contains(want), "{err}");
        assert!(err.len() < 100, "the value is not echoed: {err}");
    }
    assert!(idempotency_key("a\nb")
        .unwrap_err()
        .to_string()
        .contains("U+000A"));
}
