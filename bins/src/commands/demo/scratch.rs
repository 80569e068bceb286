//! Where the demo runs: a throwaway local PostgreSQL, or a scratch database
//! on the server `DATABASE_URL` names. Either is removed at the end.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rillflow_adapters::{connect, ClusterSettings, LocalCluster, PoolConfig};
use rillflow_core::Identifier;
use sqlx::PgPool;

enum Kind {
    Local(LocalCluster),
    Server { admin_url: String, database: String },
}

/// The demo's database and working directory (node logs, the projection
/// file, and for a local server its data).
pub struct Scratch {
    kind: Kind,
    url: String,
    dir: PathBuf,
}

impl Scratch {
    /// A scratch database: on the server of `url` when given (the role
    /// needs CREATEDB), else on a local server started for the demo.
    pub async fn create(url: Option<&str>) -> Result<Scratch> {
        let dir = std::env::temp_dir().join(format!("rillflow-demo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).context("cannot create the demo's directory")?;
        let database = format!("rillflow_demo_{}", std::process::id());
        match url {
            Some(url) => {
                // A name of our own making; still validated and quoted.
                let name = Identifier::parse(&database)?;
                let admin = connect(url, &PoolConfig::default())
                    .await
                    .context("cannot connect to DATABASE_URL")?;
                sqlx::query(&format!("CREATE DATABASE {}", name.quoted()))
                    .execute(&admin)
                    .await
                    .context(
                        "cannot create the demo's scratch database (the role needs CREATEDB)",
                    )?;
                eprintln!("      scratch database {database} on the DATABASE_URL server");
                Ok(Scratch {
                    url: with_database(url, &database),
                    kind: Kind::Server {
                        admin_url: url.to_owned(),
                        database,
                    },
                    dir,
                })
            }
            None => {
                let data = dir.join("pg");
                let cluster = tokio::task::spawn_blocking(move || {
                    LocalCluster::start(&data, &ClusterSettings::for_users())
                })
                .await
                .context("starting the demo's PostgreSQL")??;
                cluster.ensure_database(&database).await?;
                eprintln!(
                    "      throwaway PostgreSQL on 127.0.0.1:{} under {}",
                    cluster.port(),
                    dir.display()
                );
                Ok(Scratch {
                    url: cluster.url(&database),
                    kind: Kind::Local(cluster),
                    dir,
                })
            }
        }
    }

    /// The scratch database's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The working directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A pool on the scratch database.
    pub async fn pool(&self) -> Result<PgPool> {
        connect(&self.url, &PoolConfig::default())
            .await
            .context("cannot connect to the scratch database")
    }

    /// Drops the scratch database or stops the local server, and removes
    /// the working directory. Failures are reported, not fatal: the
    /// demo's result stands.
    pub async fn remove(self) {
        match self.kind {
            Kind::Server {
                admin_url,
                database,
            } => {
                let drop = async {
                    let name = Identifier::parse(&database)?;
                    let admin = connect(&admin_url, &PoolConfig::default()).await?;
                    sqlx::query(&format!(
                        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                        name.quoted()
                    ))
                    .execute(&admin)
                    .await?;
                    anyhow::Ok(())
                };
                if let Err(e) = drop.await {
                    eprintln!("      could not drop {database}: {e}");
                }
            }
            Kind::Local(cluster) => {
                let stopped = tokio::task::spawn_blocking(move || cluster.stop()).await;
                if !matches!(stopped, Ok(Ok(_))) {
                    eprintln!("      could not stop the demo's PostgreSQL");
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `url` with its database replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[after_scheme..]
        .find('/')
        .map_or(base.len(), |i| after_scheme + i);
    let mut out = format!("{}/{database}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn the_database_is_replaced_and_the_rest_kept() {
        assert_eq!(
            with_database("postgres://u:p@h:5432/app?sslmode=require", "x"),
            "postgres://u:p@h:5432/x?sslmode=require"
        );
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
    }
}
