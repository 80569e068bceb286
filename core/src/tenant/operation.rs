//! Which operations a tenant scope supports in each mode.

use super::TenancyMode;

/// An operation that can be scoped to a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantOperation {
    /// Appending to and reading streams.
    Events,
    /// Archive status, mark, reactivate and move: per stream, so a
    /// conjoined tenant's share can be picked out.
    ArchiveStreams,
    /// Redirect and backend switches and monthly partitions: properties of
    /// the tables, shared by every conjoined tenant.
    ArchiveTables,
    /// Projections, clusters, health, diagnostics and tailing the log: they
    /// follow the whole event log of a schema.
    WholeLog,
    /// Schema migrations.
    Migrate,
}

/// Why a scope was refused; the message is the operator's error line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeRefusal {
    /// The operation acts on tables a conjoined tenant shares with others.
    #[error(
        "tenant {tenant} is conjoined: {what} belong to the shared schema; run without --tenant"
    )]
    SharedByConjoined {
        /// The tenant.
        tenant: String,
        /// What is shared, for the message.
        what: &'static str,
    },
}

impl TenantOperation {
    /// Whether a `mode` tenant can scope this operation. Schema and
    /// database tenants scope everything (each has a whole store); conjoined tenants
    /// only what is kept per stream, because a conjoined scope that quietly
    /// acted on shared tables would touch every other tenant too.
    pub fn check(self, tenant: &str, mode: TenancyMode) -> Result<(), ScopeRefusal> {
        let shared = match (mode, self) {
            (TenancyMode::Schema | TenancyMode::Database, _) => None,
            (TenancyMode::Conjoined, TenantOperation::Events | TenantOperation::ArchiveStreams) => {
                None
            }
            (TenancyMode::Conjoined, TenantOperation::ArchiveTables) => {
                Some("the archive backend, redirect switch and partitions")
            }
            (TenancyMode::Conjoined, TenantOperation::WholeLog) => {
                Some("the global event log, projections and clusters")
            }
            (TenancyMode::Conjoined, TenantOperation::Migrate) => Some("the tables and migrations"),
        };
        match shared {
            None => Ok(()),
            Some(what) => Err(ScopeRefusal::SharedByConjoined {
                tenant: tenant.to_owned(),
                what,
            }),
        }
    }
}
