//! Where an `--all-tenants` command runs: the base schema, then each tenant.
//! A tenant that fails (a database tenant's server down, say) is reported
//! in one line naming it, and the others still run.

use anyhow::Result;
use rillflow_adapters::tenant::{
    database_pool, schema_pool, TenantError, TenantInfo, TenantRegistry, TenantUrl,
};
use rillflow_adapters::PoolConfig;
use rillflow_core::tenant::{TenancyMode, TenantName};
use sqlx::PgPool;

use crate::commands::one_line;

/// One place to run in.
pub struct Target {
    /// The tenant, or `None` for the base schema.
    pub tenant: Option<TenantInfo>,
    /// The pool to use, or why there is none (a database tenant's server
    /// that cannot be reached).
    pub pool: Result<PgPool, TenantError>,
    /// The conjoined tenant to filter by.
    pub conjoined: Option<TenantName>,
}

/// The base schema, then every tenant by name: schema tenants on their own
/// schema, database tenants on their own database (opened with `config`),
/// conjoined tenants (only when `conjoined` is set, for commands that
/// report per tenant) as a filter on the base schema.
pub async fn every_target(
    base: &PgPool,
    conjoined: bool,
    config: &PoolConfig,
) -> Result<Vec<Target>> {
    let mut targets = vec![Target {
        tenant: None,
        pool: Ok(base.clone()),
        conjoined: None,
    }];
    for info in TenantRegistry::new(base.clone()).list().await? {
        // Registered names passed the same check as typed ones.
        let name = TenantName::parse(&info.name)?;
        match info.mode {
            TenancyMode::Schema => targets.push(Target {
                pool: Ok(schema_pool(base, &name).await?),
                tenant: Some(info),
                conjoined: None,
            }),
            TenancyMode::Database => {
                let pool = match TenantUrl::parse(&name, info.url.as_deref().unwrap_or_default()) {
                    Ok(url) => database_pool(&name, &url, config).await,
                    Err(source) => Err(TenantError::BadUrl {
                        tenant: name.to_string(),
                        source,
                    }),
                };
                targets.push(Target {
                    pool,
                    tenant: Some(info),
                    conjoined: None,
                });
            }
            TenancyMode::Conjoined if conjoined => targets.push(Target {
                pool: Ok(base.clone()),
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

/// The targets that failed. Each is reported on stderr as it fails, in one
/// line that names it; [`Failures::finish`] then fails the command if any
/// did, after the others have run.
#[derive(Default)]
pub struct Failures {
    failed: Vec<String>,
}

impl Failures {
    /// `target`'s pool, or `None` once why it has none is reported.
    pub fn pool(&mut self, target: &Target) -> Option<PgPool> {
        match &target.pool {
            Ok(pool) => Some(pool.clone()),
            Err(e) => {
                self.record(target, &anyhow::anyhow!("{e}"));
                None
            }
        }
    }

    /// Reports `err` of `target`; returns the line, for JSON reports.
    pub fn record(&mut self, target: &Target, err: &anyhow::Error) -> String {
        let line = one_line(err);
        let named = match &target.tenant {
            Some(t) => line.starts_with(&format!("tenant {}:", t.name)),
            None => false,
        };
        let line = if named {
            line
        } else {
            format!("{}: {line}", heading(target))
        };
        eprintln!("error: {line}");
        self.failed.push(heading(target));
        line
    }

    /// Fails, naming every failed target, if any failed.
    pub fn finish(self, total: usize) -> Result<()> {
        if self.failed.is_empty() {
            return Ok(());
        }
        anyhow::bail!(
            "{} of {total} failed: {}",
            self.failed.len(),
            self.failed.join(", ")
        )
    }
}
