//! `rillflow diag bundle [--output FILE]`

use anyhow::{Context, Result};
use rillflow_adapters::health::diag;
use rillflow_core::tenant::TenantOperation;
use serde_json::json;

use crate::cli::DiagBundleArgs;
use crate::commands::database;

pub async fn run(args: DiagBundleArgs) -> Result<()> {
    // Checked before the database is asked anything: a typo in the path
    // should not cost a bundle's worth of queries.
    if let Some(parent) = args.output.as_ref().and_then(|p| p.parent()) {
        if !parent.as_os_str().is_empty() && !parent.is_dir() {
            anyhow::bail!(
                "cannot write the bundle: {} is not a directory",
                parent.display()
            );
        }
    }
    let pool = database::open(&args.db, TenantOperation::WholeLog)
        .await?
        .pool;
    let local = json!({ "command": "diag bundle" });
    let config = diag::redact(json!({ "database_url": args.db.database_url }));
    let doc = diag::bundle(&pool, local, config).await;
    let text = serde_json::to_string_pretty(&doc)?;
    match &args.output {
        Some(path) => {
            std::fs::write(path, text + "\n")
                .with_context(|| format!("cannot write the bundle to {}", path.display()))?;
            eprintln!("diagnostics bundle written to {}", path.display());
        }
        None => println!("{text}"),
    }
    Ok(())
}
