//! Running server programs as the `postgres` user when rillflow runs as root
//! (initdb and pg_ctl refuse root).

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::cluster_error::{io, ClusterError};

pub(crate) fn chown_to_postgres(path: &Path) -> Result<(), ClusterError> {
    if !is_root() {
        return Ok(());
    }
    let uid = postgres_uid()?.ok_or(ClusterError::NoPostgresUser)?;
    std::os::unix::fs::chown(path, Some(uid.0), Some(uid.1))
        .map_err(io(format!("chown {}", path.display())))
}

pub(crate) fn postgres_can_enter(dir: &Path) -> bool {
    Command::new("runuser")
        .args(["-u", "postgres", "--", "test", "-x"])
        .arg(dir)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// uid and gid of the `postgres` user, from the password database.
pub(crate) fn postgres_uid() -> Result<Option<(u32, u32)>, ClusterError> {
    let passwd = fs::read_to_string("/etc/passwd").map_err(io("reading /etc/passwd"))?;
    Ok(passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next()? == "postgres").then_some(())?;
        let _password = fields.next()?;
        Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
    }))
}

pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}
