//! Which PostgreSQL server the tests run on.
//!
//! - `DATABASE_URL`: that server (the role needs `CREATEDB`).
//! - `RILLFLOW_TEST_PG=docker` or `docker:TAG`: a `postgres:TAG` container
//!   (17 by default) started through testcontainers. One container per tag
//!   serves every test process: it is named `rillflow-test-pg-TAG` and kept
//!   running for the next run (`docker rm -f rillflow-test-pg-TAG` removes
//!   it). Without a reachable Docker engine every test fails at once, saying
//!   so in one line.
//! - Otherwise (`RILLFLOW_TEST_PG` unset or `local`): a throwaway cluster of
//!   the local server binaries under `target/` (`RILLFLOW_PG_BIN` picks them).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use rand::distr::{Alphanumeric, SampleString};
use sqlx::{Connection, PgConnection};
use testcontainers::core::{IntoContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{GenericImage, ImageExt, ReuseDirective};

/// The image tag `RILLFLOW_TEST_PG=docker` runs.
pub const DEFAULT_DOCKER_TAG: &str = "17";

/// Where the tests' server comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestPg {
    /// The server at this URL.
    Url(String),
    /// A `postgres:<tag>` container.
    Docker {
        /// The image tag.
        tag: String,
    },
    /// The local throwaway cluster.
    Local,
}

impl TestPg {
    /// The choice made by `RILLFLOW_TEST_PG` and `DATABASE_URL`, or why it
    /// cannot be followed.
    pub fn from_env() -> Result<Self, String> {
        let choice = std::env::var("RILLFLOW_TEST_PG").unwrap_or_default();
        let url = std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty());
        Self::parse(&choice, url)
    }

    /// The choice `RILLFLOW_TEST_PG=choice` makes with `DATABASE_URL=url`.
    pub fn parse(choice: &str, url: Option<String>) -> Result<Self, String> {
        let choice = choice.trim();
        if choice.is_empty() || choice == "local" {
            return Ok(url.map_or(TestPg::Local, TestPg::Url));
        }
        let tag = match choice.strip_prefix("docker") {
            Some("") => DEFAULT_DOCKER_TAG,
            Some(rest) => rest
                .strip_prefix(':')
                .filter(|t| valid_tag(t))
                .ok_or_else(|| bad_choice(choice))?,
            None => return Err(bad_choice(choice)),
        };
        if url.is_some() {
            return Err(format!(
                "RILLFLOW_TEST_PG={choice} and DATABASE_URL are both set: unset one of them"
            ));
        }
        Ok(TestPg::Docker {
            tag: tag.to_owned(),
        })
    }
}

fn bad_choice(choice: &str) -> String {
    format!("RILLFLOW_TEST_PG={choice:?} is not understood: use local, docker or docker:TAG (e.g. docker:16)")
}

/// Docker image tags: letters, digits, `.`, `_` and `-`, at most 128.
fn valid_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 128
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// The admin URL of the `postgres:<tag>` container, started unless it runs;
/// found once per test process. `state_dir` keeps its password and the lock
/// that lets one test process at a time start it.
pub async fn docker_server(tag: &str, state_dir: &Path) -> Result<String, String> {
    static URL: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    URL.get_or_try_init(|| start_container(tag, state_dir))
        .await
        .cloned()
}

async fn start_container(tag: &str, state_dir: &Path) -> Result<String, String> {
    let no_engine = |e: &dyn std::fmt::Display| {
        format!(
            "RILLFLOW_TEST_PG=docker:{tag}: cannot start a PostgreSQL container ({e}); \
             start a Docker engine or unset RILLFLOW_TEST_PG"
        )
    };
    std::fs::create_dir_all(state_dir).map_err(|e| no_engine(&e))?;
    let lock = state_dir.join(format!("docker-{tag}.lock"));
    let guard = tokio::task::spawn_blocking(move || lock_file(&lock))
        .await
        .map_err(|e| no_engine(&e))?
        .map_err(|e| no_engine(&e))?;
    let password =
        password(&state_dir.join(format!("docker-{tag}.password"))).map_err(|e| no_engine(&e))?;
    let name = format!("rillflow-test-pg-{tag}");
    // The settings of the local test cluster: commits are free, and there
    // are connections enough for the daemons the tests start.
    let mut cmd = vec!["postgres".to_owned()];
    for setting in [
        "fsync=off",
        "synchronous_commit=off",
        "full_page_writes=off",
        "max_connections=400",
        "shared_buffers=256MB",
    ] {
        cmd.extend(["-c".to_owned(), setting.to_owned()]);
    }
    let container = GenericImage::new("postgres", tag)
        .with_exposed_port(5432.tcp())
        .with_wait_for(WaitFor::message_on_stderr(
            "database system is ready to accept connections",
        ))
        .with_env_var("POSTGRES_USER", "rillflow")
        .with_env_var("POSTGRES_PASSWORD", &password)
        .with_cmd(cmd)
        .with_container_name(&name)
        .with_reuse(ReuseDirective::Always)
        .start()
        .await
        .map_err(|e| no_engine(&e))?;
    let host = container.get_host().await.map_err(|e| no_engine(&e))?;
    let port = container
        .get_host_port_ipv4(5432.tcp())
        .await
        .map_err(|e| no_engine(&e))?;
    let url = format!("postgres://rillflow:{password}@{host}:{port}/postgres");
    // The image's entrypoint restarts the server once after initialising
    // it; the first "ready" can come from the server it then stops.
    let start = Instant::now();
    loop {
        match PgConnection::connect(&url).await {
            Ok(conn) => {
                let _ = conn.close().await;
                break;
            }
            Err(e) if start.elapsed() > Duration::from_secs(60) => {
                return Err(format!(
                    "container {name} does not accept connections: {e}; \
                     `docker rm -f {name}` starts it afresh"
                ));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    drop(guard);
    Ok(url)
}

fn lock_file(path: &Path) -> std::io::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    file.lock()?;
    Ok(file)
}

/// The container's password, made on first use and kept (0600) so that
/// later test processes can log in to the container they reuse.
fn password(path: &Path) -> std::io::Result<String> {
    if let Ok(text) = std::fs::read_to_string(path) {
        if !text.trim().is_empty() {
            return Ok(text.trim().to_owned());
        }
    }
    let password = Alphanumeric.sample_string(&mut rand::rng(), 24);
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(password.as_bytes())?;
    Ok(password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_choice_follows_the_variables() {
        let url = || Some("postgres://u@h/d".to_owned());
        assert_eq!(TestPg::parse("", None), Ok(TestPg::Local));
        assert_eq!(
            TestPg::parse("local", url()),
            Ok(TestPg::Url(url().unwrap()))
        );
        assert_eq!(
            TestPg::parse("docker", None),
            Ok(TestPg::Docker {
                tag: DEFAULT_DOCKER_TAG.into()
            })
        );
        assert_eq!(
            TestPg::parse(" docker:16.4-alpine ", None),
            Ok(TestPg::Docker {
                tag: "16.4-alpine".into()
            })
        );
        for bad in ["docker:", "docker:a b", "docker16", "podman", "docker:x;rm"] {
            let err = TestPg::parse(bad, None).unwrap_err();
            assert!(err.contains("not understood"), "{bad}: {err}");
        }
        let both = TestPg::parse("docker", url()).unwrap_err();
        assert!(both.contains("both set"), "{both}");
    }
}
