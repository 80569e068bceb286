//! How a local cluster is configured.

/// Server settings beyond the defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterSettings {
    /// `name = value` lines appended to `postgresql.conf` at creation.
    pub config: Vec<(String, String)>,
    /// Skip initdb's fsync; only for clusters whose loss costs nothing.
    pub no_sync_init: bool,
}

impl ClusterSettings {
    /// A durable cluster with stock settings, for `rillflow db start`.
    pub fn for_users() -> Self {
        ClusterSettings::default()
    }

    /// A fast, non-durable cluster for a test run with many parallel tests.
    pub fn for_tests() -> Self {
        let set = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        ClusterSettings {
            config: vec![
                set("fsync", "off"),
                set("synchronous_commit", "off"),
                set("full_page_writes", "off"),
                set("max_connections", "400"),
                set("shared_buffers", "256MB"),
            ],
            no_sync_init: true,
        }
    }
}
