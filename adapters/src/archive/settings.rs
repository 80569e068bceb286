//! The archive backend and the redirect switch, as the database records them.

use rillflow_core::archive::Backend;
use sqlx::{PgConnection, PgPool};

use super::ArchiveError;

/// Which backend archives, and whether redirect is on.
///
/// Both live in the database: the backend in `rf_archive_settings`, the
/// redirect as the enabled state of the `rf_events_redirect_archived`
/// trigger. Every appender, mover and status call reads the same truth, and
/// nothing changes them except these explicit setters: starting a program
/// never does (the trap of a redirect reset at start-up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveSettings {
    /// Where cold events go.
    pub backend: Backend,
    /// Whether appends to archived streams go to `events_archive`.
    pub redirect: bool,
}

const REDIRECT_ENABLED: &str = "SELECT tgenabled <> 'D' FROM pg_trigger
  WHERE tgrelid = 'events'::regclass AND tgname = 'rf_events_redirect_archived'";

impl ArchiveSettings {
    /// Reads both settings.
    pub async fn load(pool: &PgPool) -> Result<Self, ArchiveError> {
        let mut conn = pool.acquire().await?;
        Self::load_in(&mut conn, false).await
    }

    /// Reads both settings on `conn`, locking the settings row when
    /// `for_update` so that a concurrent setter waits.
    async fn load_in(conn: &mut PgConnection, for_update: bool) -> Result<Self, ArchiveError> {
        let sql = if for_update {
            "SELECT backend FROM rf_archive_settings FOR UPDATE"
        } else {
            "SELECT backend FROM rf_archive_settings"
        };
        let backend: String = sqlx::query_scalar(sql).fetch_one(&mut *conn).await?;
        let redirect: bool = sqlx::query_scalar(REDIRECT_ENABLED)
            .fetch_one(&mut *conn)
            .await?;
        Ok(Self {
            backend: parse_backend(&backend)?,
            redirect,
        })
    }

    /// The backend, read inside a mover batch's transaction with a share
    /// lock that [`ArchiveSettings::set_backend`] waits for.
    pub(crate) async fn backend_for_batch(
        conn: &mut PgConnection,
    ) -> Result<Backend, ArchiveError> {
        let backend: String =
            sqlx::query_scalar("SELECT backend FROM rf_archive_settings FOR SHARE")
                .fetch_one(&mut *conn)
                .await?;
        parse_backend(&backend)
    }

    /// Turns redirect on or off; returns the settings before the change.
    /// Refused on the partitioned backend, where rows follow the stream's
    /// retention class instead.
    pub async fn set_redirect(pool: &PgPool, enable: bool) -> Result<Self, ArchiveError> {
        let mut tx = pool.begin().await?;
        let before = Self::load_in(&mut tx, true).await?;
        if enable && before.backend == Backend::Partitioned {
            return Err(ArchiveError::RedirectOnPartitioned);
        }
        if before.redirect != enable {
            // DDL on `events` waits for in-flight appends; the session's
            // lock_timeout bounds that wait.
            let ddl = if enable {
                "ALTER TABLE events ENABLE TRIGGER rf_events_redirect_archived"
            } else {
                "ALTER TABLE events DISABLE TRIGGER rf_events_redirect_archived"
            };
            sqlx::query(ddl).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(before)
    }

    /// Chooses the backend; returns the settings before the change. Data
    /// already cold stays where it is: reads with archived data scan both
    /// cold stores whichever backend is chosen.
    pub async fn set_backend(pool: &PgPool, backend: Backend) -> Result<Self, ArchiveError> {
        let mut tx = pool.begin().await?;
        let before = Self::load_in(&mut tx, true).await?;
        if backend == Backend::Partitioned && before.redirect {
            return Err(ArchiveError::RedirectStillOn);
        }
        sqlx::query("UPDATE rf_archive_settings SET backend = $1, updated_at = now()")
            .bind(backend.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(before)
    }
}

/// The stored backend name; the table's check constraint admits only known
/// names, so a failure here means a newer schema than this binary.
fn parse_backend(name: &str) -> Result<Backend, ArchiveError> {
    name.parse()
        .map_err(|e: String| ArchiveError::Database(sqlx::Error::Decode(e.into())))
}
