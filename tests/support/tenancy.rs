//! Helpers of the tenancy tests, which run the binary for tenants.

use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::CliRunner;

/// Appends `n` `Counted` events to `stream` as `tenant`, one command each.
pub fn append_as(cli: &CliRunner, tenant: &str, stream: Uuid, n: usize) {
    let stream = stream.to_string();
    for i in 0..n {
        cli.ok(&[
            "events",
            "append",
            "--tenant",
            tenant,
            "--stream",
            &stream,
            "--type",
            "Counted",
            "--data",
            &json!({ "i": i }).to_string(),
        ]);
    }
}

/// The bigint `sql` selects.
pub async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

/// `url` without its password, and the password (empty when it has none):
/// a database tenant is registered with the first and reaches its server
/// with the second through `RILLFLOW_TENANT_<NAME>_PASSWORD`.
pub fn split_password(url: &str) -> (String, String) {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return (url.to_owned(), String::new());
    };
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    (
        format!("{scheme}://{user}@{host}{tail}"),
        password.to_owned(),
    )
}
