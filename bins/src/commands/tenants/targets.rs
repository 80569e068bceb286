//! Where an `--all-tenants` command runs: the base schema, then each tenant.

use anyhow::Result;
use rillflow_adapters::tenant::{schema_pool, TenantInfo, TenantRegistry};
use rillflow_core::tenant::{TenancyMode, TenantName};
use sqlx::PgPool;

/// One place to run in.
pub struct Target {
    /// The tenant, or `None` for the base schema.
    pub tenant: Option<TenantInfo>,
    /// The pool to use.
    pub pool: PgPool,
    /// The conjoined tenant to filter by.
    pub conjoined: Option<TenantName>,
}

/// The base schema, then every tenant by name: schema tenants on their own
/// schema, conjoined tenants (only when `conjoined` is set, for commands
/// that report per tenant) as a filter on the base schema.
pub async fn every_target(base: &PgPool, conjoined: bool) -> Result<Vec<Target>> {
    let mut targets = vec![Target {
        tenant: None,
        pool: base.clone(),
        conjoined: None,
    }];
    for info in TenantRegistry::new(base.clone()).list().await? {
        // Registered names passed the same check as typed ones.
        let name = TenantName::parse(&info.name)?;
        match info.mode {
            TenancyMode::Schema => targets.push(Target {
                pool: schema_pool(base, &name).await?,
                tenant: Some(info),
                conjoined: None,
            }),
            TenancyMode::Conjoined if conjoined => targets.push(Target {
                pool: base.clone(),
                tenant: Some(info),
                conjoined: Some(name),
            }),
            TenancyMode::Conjoined => {}
        }
    }
    Ok(targets)
}

/// "tenant NAME (MODE)" or "base schema", for headings.
pub fn heading(target: &Target) -> String {
    match &target.tenant {
        None => "base schema".to_owned(),
        Some(t) => format!("tenant {} ({})", t.name, t.mode),
    }
}
