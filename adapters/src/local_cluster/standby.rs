//! A streaming standby of a local cluster, and the ways it leaves that role:
//! for tests and benchmarks of reads from a hot standby and of failovers.

use std::fs;
use std::path::Path;

use super::{
    check, choose_server_dir, lock, make_server_owned_dir, path_str, read_cluster_file,
    write_cluster_file, ClusterFile, LocalCluster,
};
use crate::cluster_error::{io, ClusterError};
use crate::server_user::{chown_to_postgres, is_root};

impl LocalCluster {
    /// Creates a hot standby of this (running) cluster in `dir`, streaming
    /// from it, and starts it. A standby made earlier in `dir` is only
    /// started. The standby shares this cluster's role and password (they
    /// are in the copied catalog).
    ///
    /// The copy is taken with `pg_basebackup -R`. Server builds without it
    /// (the packaged binaries the test matrix runs) get a cold copy
    /// instead: this cluster stops cleanly for the copy and starts again.
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
        self.stop_in("immediate")
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
        if !self.bins.program("pg_basebackup").is_file() {
            self.cold_copy(&standby, &conninfo)?;
            write_cluster_file(dir, &standby.file)?;
            return Ok(standby);
        }
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

    /// Copies this cluster's data directory while it is stopped, then makes
    /// the copy a standby streaming with `conninfo`. A cleanly stopped
    /// cluster's files are consistent as they are: the copy starts from the
    /// shutdown checkpoint and streams what follows. This cluster keeps
    /// 128 MB of WAL from then on, so a standby that starts late still
    /// finds what it needs.
    fn cold_copy(&self, standby: &LocalCluster, conninfo: &str) -> Result<(), ClusterError> {
        let (from, to) = (self.data_dir(), standby.data_dir());
        append(
            &from.join("postgresql.auto.conf"),
            "wal_keep_size = '128MB'\n",
        )?;
        self.stop()?;
        let copied = copy_tree(&from, &to).and_then(|()| {
            fs::write(to.join("standby.signal"), "").map_err(io("writing standby.signal"))?;
            chown_to_postgres(&to.join("standby.signal"))?;
            let quoted = conninfo.replace('\'', "''");
            append(
                &to.join("postgresql.auto.conf"),
                &format!("primary_conninfo = '{quoted}'\n"),
            )
        });
        // Up again whatever the copy did.
        let mut primary = self.clone();
        primary.start_server()?;
        copied
    }
}

/// Appends `text` to the file at `path`.
fn append(path: &Path, text: &str) -> Result<(), ClusterError> {
    use std::io::Write;
    fs::OpenOptions::new()
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(io(format!("writing {}", path.display())))
}

/// Copies the directory `from` to `to` (which must not exist), owned by
/// the server user, directories 0700, files with their own modes.
fn copy_tree(from: &Path, to: &Path) -> Result<(), ClusterError> {
    use std::os::unix::fs::PermissionsExt;
    fs::create_dir(to).map_err(io(format!("creating {}", to.display())))?;
    fs::set_permissions(to, fs::Permissions::from_mode(0o700))
        .map_err(io(format!("chmod {}", to.display())))?;
    chown_to_postgres(to)?;
    let entries = fs::read_dir(from).map_err(io(format!("reading {}", from.display())))?;
    for entry in entries {
        let entry = entry.map_err(io(format!("reading {}", from.display())))?;
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        if entry.file_name() == "postmaster.pid" {
            continue;
        }
        let kind = entry
            .file_type()
            .map_err(io(format!("reading {}", source.display())))?;
        if kind.is_dir() {
            copy_tree(&source, &target)?;
        } else {
            fs::copy(&source, &target).map_err(io(format!("copying {}", source.display())))?;
            chown_to_postgres(&target)?;
        }
    }
    Ok(())
}
