//! Finding the local PostgreSQL server programs.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cluster_error::ClusterError;

/// Directory holding `initdb`, `pg_ctl` and `postgres`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgBinaries {
    dir: PathBuf,
}

/// Where Debian and Ubuntu install server binaries, one directory per major version.
const DEBIAN_ROOT: &str = "/usr/lib/postgresql";

impl PgBinaries {
    /// `RILLFLOW_PG_BIN` when set, else the newest `/usr/lib/postgresql/<major>/bin`,
    /// else whatever `initdb` is on `PATH`.
    pub fn locate() -> Result<Self, ClusterError> {
        if let Some(dir) = std::env::var_os("RILLFLOW_PG_BIN") {
            let dir = PathBuf::from(dir);
            return if has_server(&dir) {
                Ok(PgBinaries { dir })
            } else {
                Err(ClusterError::NoBinaries(format!(
                    "RILLFLOW_PG_BIN={} has no initdb and pg_ctl",
                    dir.display()
                )))
            };
        }
        if let Some(dir) = newest_debian_bin(Path::new(DEBIAN_ROOT)) {
            return Ok(PgBinaries { dir });
        }
        if let Some(dir) = on_path("initdb") {
            if has_server(&dir) {
                return Ok(PgBinaries { dir });
            }
        }
        Err(ClusterError::NoBinaries(format!(
            "no PostgreSQL server binaries (initdb, pg_ctl) in {DEBIAN_ROOT}/*/bin or on PATH; \
             install the `postgresql` package (Debian/Ubuntu: apt-get install -y postgresql) \
             or set RILLFLOW_PG_BIN"
        )))
    }

    /// Path of one of the programs.
    pub fn program(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The major version (`13`, `18`), from `pg_ctl --version`
    /// (`pg_ctl (PostgreSQL) 16.4`).
    pub fn major(&self) -> Option<String> {
        self.version().as_deref().and_then(major_of)
    }

    /// `pg_ctl --version` output, for messages.
    pub fn version(&self) -> Option<String> {
        let out = Command::new(self.program("pg_ctl"))
            .arg("--version")
            .output()
            .ok()?;
        Some(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }
}

/// The major of a `--version` line: the part before the first dot of the
/// last word (`16` of `pg_ctl (PostgreSQL) 16.4 (Debian 16.4-1)`).
fn major_of(version: &str) -> Option<String> {
    let number = version
        .split_whitespace()
        .find(|w| w.starts_with(|c: char| c.is_ascii_digit()))?;
    let major = number.split(['.', '-']).next()?;
    major
        .chars()
        .all(|c| c.is_ascii_digit())
        .then(|| major.to_owned())
}

fn has_server(dir: &Path) -> bool {
    dir.join("initdb").is_file() && dir.join("pg_ctl").is_file()
}

fn newest_debian_bin(root: &Path) -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            has_server(&bin).then_some((major, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

fn on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).find(|dir| dir.join(program).is_file()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_major_of_a_version_line() {
        assert_eq!(major_of("pg_ctl (PostgreSQL) 13.23").as_deref(), Some("13"));
        assert_eq!(
            major_of("pg_ctl (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)").as_deref(),
            Some("15")
        );
        assert_eq!(major_of("pg_ctl (PostgreSQL) 18beta1").as_deref(), None);
        assert_eq!(major_of("pg_ctl (PostgreSQL) 9.6.24").as_deref(), Some("9"));
        assert_eq!(major_of("garbage"), None);
    }

    #[test]
    fn picks_the_newest_major_with_a_server() {
        let root = std::env::temp_dir().join(format!("rf-pgbin-{}", std::process::id()));
        for (major, complete) in [("13", true), ("16", true), ("17", false), ("x", true)] {
            let bin = root.join(major).join("bin");
            std::fs::create_dir_all(&bin).unwrap();
            std::fs::write(bin.join("initdb"), "").unwrap();
            if complete {
                std::fs::write(bin.join("pg_ctl"), "").unwrap();
            }
        }
        assert_eq!(newest_debian_bin(&root), Some(root.join("16").join("bin")));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
