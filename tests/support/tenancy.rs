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
