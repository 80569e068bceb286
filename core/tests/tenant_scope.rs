//! Tenant names (SEC-1) and what each tenancy mode may scope.

use proptest::prelude::*;
use rillflow_core::tenant::{
    ScopeRefusal, TenancyMode, TenantName, TenantNameError, TenantOperation,
};

#[test]
fn injection_and_reserved_names_are_refused() {
    for bad in [
        "x\"; drop table events; --",
        "Acme",
        "acme-eu",
        "",
        "9lives",
        "pg_temp",
    ] {
        assert!(
            matches!(TenantName::parse(bad), Err(TenantNameError::Identifier(_))),
            "{bad:?} was accepted"
        );
    }
    for reserved in ["public", "information_schema"] {
        assert_eq!(
            TenantName::parse(reserved),
            Err(TenantNameError::Reserved(reserved.to_owned()))
        );
    }
    let ok = TenantName::parse("acme_eu_2").unwrap();
    assert_eq!(ok.as_str(), "acme_eu_2");
    assert_eq!(ok.schema().quoted(), "\"acme_eu_2\"");
}

#[test]
fn modes_round_trip_and_unknown_modes_fail() {
    for mode in [
        TenancyMode::Conjoined,
        TenancyMode::Schema,
        TenancyMode::Database,
    ] {
        assert_eq!(mode.as_str().parse::<TenancyMode>(), Ok(mode));
    }
    assert!("shared".parse::<TenancyMode>().is_err());
}

#[test]
fn schema_and_database_tenants_scope_everything_conjoined_only_per_stream_operations() {
    use TenantOperation::*;
    let all = [Events, ArchiveStreams, ArchiveTables, WholeLog, Migrate];
    for op in all {
        assert_eq!(op.check("acme", TenancyMode::Schema), Ok(()));
        assert_eq!(op.check("acme", TenancyMode::Database), Ok(()));
    }
    assert_eq!(Events.check("acme", TenancyMode::Conjoined), Ok(()));
    assert_eq!(ArchiveStreams.check("acme", TenancyMode::Conjoined), Ok(()));
    for op in [ArchiveTables, WholeLog, Migrate] {
        let refusal = op.check("acme", TenancyMode::Conjoined).unwrap_err();
        let ScopeRefusal::SharedByConjoined { tenant, .. } = &refusal;
        assert_eq!(tenant, "acme");
        assert!(refusal.to_string().contains("run without --tenant"));
    }
}

proptest! {
    /// Whatever is typed, an accepted name quotes to exactly one identifier.
    #[test]
    fn accepted_names_quote_cleanly(name in "\\PC{0,70}") {
        if let Ok(t) = TenantName::parse(&name) {
            let quoted = t.schema().quoted();
            prop_assert_eq!(quoted.matches('"').count(), 2);
            prop_assert!(t.as_str().bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
        }
    }
}
