//! A throwaway PostgreSQL cluster on loopback, for newcomers and tests.
//!
//! Layout under the cluster directory (`.rillflow/` for users, a directory
//! under `target/` for tests):
//!
//! ```text
//! cluster.json   port, user, password, where the server files live (0600)
//! .lock          serialises start/stop between processes
//! pg/            owned by the server's user: data/ and postgres.log
//! ```
//!
//! When run as root the server runs as the `postgres` user (initdb refuses
//! root). If that user cannot reach the directory (a checkout under /root,
//! say), the server files live under the system temp directory instead and
//! `cluster.json` records where.

use std::fs::{self, File, OpenOptions};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rand::distr::{Alphanumeric, SampleString};
use rillflow_core::Identifier;
use serde::{Deserialize, Serialize};

use crate::cluster_error::{io, ClusterError};
use crate::cluster_settings::ClusterSettings;
use crate::pg_binaries::PgBinaries;
use crate::server_user::{chown_to_postgres, is_root, postgres_can_enter, postgres_uid};

mod standby;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct ClusterFile {
    port: u16,
    user: String,
    password: String,
    /// Directory owned by the server user, holding `data/` and `postgres.log`.
    server_dir: PathBuf,
}

/// A local cluster that has been created (and maybe started).
#[derive(Debug, Clone)]
pub struct LocalCluster {
    dir: PathBuf,
    file: ClusterFile,
    bins: PgBinaries,
}

impl LocalCluster {
    /// Creates the cluster on first use, then starts it unless it is running.
    /// Safe to call from many processes at once.
    pub fn start(dir: &Path, settings: &ClusterSettings) -> Result<Self, ClusterError> {
        let bins = PgBinaries::locate()?;
        fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
        let dir = dir
            .canonicalize()
            .map_err(io(format!("resolving {}", dir.display())))?;
        let _guard = lock(&dir)?;
        let mut cluster = match read_cluster_file(&dir)? {
            Some(file) if file.server_dir.join("data").join("PG_VERSION").is_file() => {
                check_major(&dir, &file, &bins)?;
                LocalCluster {
                    dir: dir.clone(),
                    file,
                    bins,
                }
            }
            _ => Self::create(&dir, bins, settings)?,
        };
        if !cluster.is_running()? {
            cluster.start_server()?;
        }
        Ok(cluster)
    }

    /// The cluster recorded in `dir`, running or not.
    pub fn open(dir: &Path) -> Result<Self, ClusterError> {
        let file =
            read_cluster_file(dir)?.ok_or_else(|| ClusterError::NotInitialized(dir.into()))?;
        Ok(LocalCluster {
            dir: dir.to_owned(),
            file,
            bins: PgBinaries::locate()?,
        })
    }

    /// Stops the server; returns false when it was not running.
    pub fn stop(&self) -> Result<bool, ClusterError> {
        self.stop_in("fast")
    }

    /// `pg_ctl stop -m mode`; false when the server was not running.
    fn stop_in(&self, mode: &str) -> Result<bool, ClusterError> {
        let _guard = lock(&self.dir)?;
        if !self.is_running()? {
            return Ok(false);
        }
        let data = self.data_dir();
        let out =
            self.run_server_program("pg_ctl", &["-D", path_str(&data), "-m", mode, "-w", "stop"])?;
        check(&out, &format!("pg_ctl stop -m {mode}"), None)?;
        Ok(true)
    }

    /// Whether the server is up.
    pub fn is_running(&self) -> Result<bool, ClusterError> {
        let data = self.data_dir();
        let out = self.run_server_program("pg_ctl", &["-D", path_str(&data), "status"])?;
        Ok(out.status.success())
    }

    /// The URL of `database` on this cluster.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{}:{}@127.0.0.1:{}/{}",
            self.file.user, self.file.password, self.file.port, database
        )
    }

    /// The loopback port the server listens on.
    pub fn port(&self) -> u16 {
        self.file.port
    }

    /// The directory the cluster was created in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Creates `name` unless it exists. Concurrent callers are fine.
    pub async fn ensure_database(&self, name: &str) -> Result<(), ClusterError> {
        use sqlx::Connection;
        let ident = Identifier::parse(name)?;
        let mut conn = sqlx::PgConnection::connect(&self.url("postgres")).await?;
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(name)
                .fetch_one(&mut conn)
                .await?;
        if !exists {
            let created = sqlx::query(&format!("CREATE DATABASE {}", ident.quoted()))
                .execute(&mut conn)
                .await;
            if let Err(e) = created {
                // Lost a race with another creator: 42P04 duplicate_database,
                // or 23505 when both passed the catalog check at once.
                let code = e
                    .as_database_error()
                    .and_then(|d| d.code())
                    .map(|c| c.into_owned());
                if !matches!(code.as_deref(), Some("42P04") | Some("23505")) {
                    return Err(e.into());
                }
            }
        }
        conn.close().await?;
        Ok(())
    }

    fn data_dir(&self) -> PathBuf {
        self.file.server_dir.join("data")
    }

    fn create(
        dir: &Path,
        bins: PgBinaries,
        settings: &ClusterSettings,
    ) -> Result<Self, ClusterError> {
        let as_root = is_root();
        if as_root && postgres_uid()?.is_none() {
            return Err(ClusterError::NoPostgresUser);
        }
        let server_dir = choose_server_dir(dir, as_root)?;
        if server_dir.exists() {
            // Left over from a failed creation; nothing in it is worth keeping.
            fs::remove_dir_all(&server_dir)
                .map_err(io(format!("clearing {}", server_dir.display())))?;
        }
        make_server_owned_dir(&server_dir, as_root)?;
        let password = Alphanumeric.sample_string(&mut rand::rng(), 24);
        let file = ClusterFile {
            port: free_port()?,
            user: "rillflow".into(),
            password,
            server_dir,
        };
        let cluster = LocalCluster {
            dir: dir.to_owned(),
            file,
            bins,
        };
        cluster.initdb(settings)?;
        write_cluster_file(dir, &cluster.file)?;
        Ok(cluster)
    }

    fn initdb(&self, settings: &ClusterSettings) -> Result<(), ClusterError> {
        let pwfile = self.file.server_dir.join("pwfile");
        write_owned(&pwfile, &self.file.password)?;
        let data = self.data_dir();
        let pwarg = format!("--pwfile={}", pwfile.display());
        let mut args = vec![
            "-D",
            path_str(&data),
            "-U",
            &self.file.user,
            &pwarg,
            "--auth-host=scram-sha-256",
            "--auth-local=peer",
            "-E",
            "UTF8",
            "--locale=C",
        ];
        if settings.no_sync_init {
            args.push("--no-sync");
        }
        let out = self.run_server_program("initdb", &args)?;
        let _ = fs::remove_file(&pwfile);
        check(&out, "initdb", None)?;
        // Loopback TCP only: no socket files in shared directories, no
        // exposure beyond this machine.
        let mut conf = String::from("\n# rillflow local cluster\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n");
        for (k, v) in &settings.config {
            conf.push_str(&format!("{k} = '{v}'\n"));
        }
        OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .and_then(|mut f| f.write_all(conf.as_bytes()))
            .map_err(io("writing postgresql.conf"))
    }

    fn start_server(&mut self) -> Result<(), ClusterError> {
        // The recorded port may have been taken while the server was down.
        for attempt in 0..3 {
            if attempt > 0 || !port_is_free(self.file.port) {
                self.file.port = free_port()?;
                write_cluster_file(&self.dir, &self.file)?;
            }
            let data = self.data_dir();
            let log = self.file.server_dir.join("postgres.log");
            let opts = format!("-p {}", self.file.port);
            let out = self.run_server_program(
                "pg_ctl",
                &[
                    "-D",
                    path_str(&data),
                    "-l",
                    path_str(&log),
                    "-o",
                    &opts,
                    "-w",
                    "-t",
                    "120",
                    "start",
                ],
            )?;
            if out.status.success() {
                return Ok(());
            }
            let tail = log_tail(&log);
            if !tail.contains("could not bind") && !tail.contains("Address already in use") {
                return check(&out, "pg_ctl start", Some(&tail));
            }
        }
        Err(ClusterError::Command {
            program: "pg_ctl start".into(),
            detail: "no free loopback port after 3 attempts".into(),
        })
    }

    fn run_server_program(&self, program: &str, args: &[&str]) -> Result<Output, ClusterError> {
        let path = self.bins.program(program);
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        // The server inherits no stdin; its own log is the place for output.
        cmd.args(args).stdin(std::process::Stdio::null());
        cmd.output()
            .map_err(io(format!("running {}", path.display())))
    }
}

fn check(out: &Output, program: &str, log: Option<&str>) -> Result<(), ClusterError> {
    if out.status.success() {
        return Ok(());
    }
    let mut detail = format!("{}", out.status);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let text = log
        .map(str::to_owned)
        .unwrap_or_else(|| stderr.trim().to_owned());
    if let Some(last) = text.lines().rev().find(|l| !l.trim().is_empty()) {
        detail.push_str(": ");
        detail.push_str(last.trim());
    }
    Err(ClusterError::Command {
        program: program.into(),
        detail,
    })
}

fn log_tail(log: &Path) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Refuses a data directory of another major than `bins`: the server would
/// only say so in its log, and the start would fail with a timeout.
fn check_major(dir: &Path, file: &ClusterFile, bins: &PgBinaries) -> Result<(), ClusterError> {
    let recorded = file.server_dir.join("data").join("PG_VERSION");
    let made_by = fs::read_to_string(&recorded)
        .map_err(io(format!("reading {}", recorded.display())))?
        .trim()
        .to_owned();
    match bins.major() {
        Some(binaries) if binaries != made_by => Err(ClusterError::VersionMismatch {
            dir: dir.to_owned(),
            made_by,
            binaries,
            bin_dir: bins.dir().to_owned(),
        }),
        _ => Ok(()),
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

fn lock(dir: &Path) -> Result<File, ClusterError> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(".lock"))
        .map_err(io("opening the cluster lock"))?;
    file.lock().map_err(io("locking the cluster"))?;
    Ok(file)
}

fn read_cluster_file(dir: &Path) -> Result<Option<ClusterFile>, ClusterError> {
    let path = dir.join("cluster.json");
    match fs::read_to_string(&path) {
        Ok(text) => {
            serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| ClusterError::BadClusterFile {
                    path,
                    detail: e.to_string(),
                })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(format!("reading {}", path.display()))(e)),
    }
}

fn write_cluster_file(dir: &Path, file: &ClusterFile) -> Result<(), ClusterError> {
    let text = serde_json::to_string_pretty(file).expect("cluster file serialises");
    let tmp = dir.join("cluster.json.tmp");
    OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .and_then(|_| fs::rename(&tmp, dir.join("cluster.json")))
        .map_err(io("writing cluster.json"))
}

/// Writes a file the server user can read and nobody else can.
fn write_owned(path: &Path, text: &str) -> Result<(), ClusterError> {
    fs::write(path, text).map_err(io(format!("writing {}", path.display())))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(io("chmod pwfile"))?;
    chown_to_postgres(path)
}

fn choose_server_dir(dir: &Path, as_root: bool) -> Result<PathBuf, ClusterError> {
    let local = dir.join("pg");
    if !as_root || postgres_can_enter(dir) {
        return Ok(local);
    }
    let mut h = DefaultHasher::new();
    dir.hash(&mut h);
    Ok(std::env::temp_dir().join(format!("rillflow-pg-{:016x}", h.finish())))
}

fn make_server_owned_dir(path: &Path, as_root: bool) -> Result<(), ClusterError> {
    fs::create_dir_all(path).map_err(io(format!("creating {}", path.display())))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o700)).map_err(io("chmod server dir"))?;
    if as_root {
        chown_to_postgres(path)?;
    }
    Ok(())
}

fn free_port() -> Result<u16, ClusterError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(io("finding a free port"))?;
    Ok(listener
        .local_addr()
        .map_err(io("finding a free port"))?
        .port())
}

fn port_is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}
