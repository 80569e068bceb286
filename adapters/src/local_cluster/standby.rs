//! A streaming standby of a local cluster, and the ways it leaves that role:
//! for tests and benchmarks of reads from a hot standby and of failovers.

use std::fs;
use std::path::Path;

use super::{
    check, choose_server_dir, lock, make_server_owned_dir, path_str, read_cluster_file,
    write_cluster_file, ClusterFile, LocalCluster,
};
use crate::cluster_error::{io, ClusterError};
use crate::server_user::is_root;

impl LocalCluster {
    /// Creates a hot standby of this (running) cluster in `dir` with
    /// `pg_basebackup -R`, streaming from it, and starts it. A standby made
    /// earlier in `dir` is only started. The standby shares this cluster's
    /// role and password (they are in the copied catalog).
    pub fn start_standby(&self, dir: &Path) -> Result<LocalCluster, ClusterError> {
        fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
        let dir = dir
            .canonicalize()
            .map_err(io(format!("resolving {}", dir.display())))?;
        let _guard = lock(&dir)?;
        let mut standby = match read_cluster_file(&dir)? {
            Some(file) if file.server_dir.join("data").join("PG_VERSION").is_file() => {
                LocalCluster {
                    dir: dir.clone(),
                    file,
                    bins: self.bins.clone(),
                }
            }
            _ => self.base_backup(&dir)?,
        };
        if !standby.is_running()? {
            standby.start_server()?;
        }
        Ok(standby)
    }

    /// Ends recovery: the standby becomes a primary on a new timeline.
    /// Waits until it accepts writes.
    pub fn promote(&self) -> Result<(), ClusterError> {
        let data = self.data_dir();
        let out = self.run_server_program(
            "pg_ctl",
            &["-D", path_str(&data), "-w", "-t", "60", "promote"],
        )?;
        check(&out, "pg_ctl promote", None)
    }

    /// Stops the server the way a crash would (`-m immediate`): no
    /// shutdown checkpoint, and nothing more is sent to standbys.
    pub fn crash(&self) -> Result<bool, ClusterError> {
        let _guard = lock(&self.dir)?;
        if !self.is_running()? {
            return Ok(false);
        }
        let data = self.data_dir();
        let out = self.run_server_program(
            "pg_ctl",
            &["-D", path_str(&data), "-m", "immediate", "-w", "stop"],
        )?;
        check(&out, "pg_ctl stop -m immediate", None)?;
        Ok(true)
    }

    /// Stops the server at once and deletes its files: for throwaway
    /// clusters only.
    pub fn destroy(&self) -> Result<(), ClusterError> {
        self.crash()?;
        for dir in [&self.file.server_dir, &self.dir] {
            match fs::remove_dir_all(dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(io(format!("removing {}", dir.display()))(e))
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn base_backup(&self, dir: &Path) -> Result<LocalCluster, ClusterError> {
        let as_root = is_root();
        let server_dir = choose_server_dir(dir, as_root)?;
        if server_dir.exists() {
            fs::remove_dir_all(&server_dir)
                .map_err(io(format!("clearing {}", server_dir.display())))?;
        }
        make_server_owned_dir(&server_dir, as_root)?;
        let standby = LocalCluster {
            dir: dir.to_owned(),
            file: ClusterFile {
                port: super::free_port()?,
                user: self.file.user.clone(),
                password: self.file.password.clone(),
                server_dir,
            },
            bins: self.bins.clone(),
        };
        // -R writes primary_conninfo (this conninfo, password included) and
        // standby.signal; the copy lives only in a directory of the server
        // user's, mode 0700.
        let conninfo = format!(
            "host=127.0.0.1 port={} user={} password={} application_name=rillflow_standby",
            self.file.port, self.file.user, self.file.password
        );
        let data = standby.data_dir();
        let out = standby.run_server_program(
            "pg_basebackup",
            &[
                "-D",
                path_str(&data),
                "-d",
                &conninfo,
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
                "--no-sync",
            ],
        )?;
        check(&out, "pg_basebackup", None)?;
        write_cluster_file(dir, &standby.file)?;
        Ok(standby)
    }
}
