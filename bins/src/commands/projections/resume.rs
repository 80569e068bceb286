//! `rillflow projections resume NAME`

use anyhow::Result;
use rillflow_adapters::projection::ProjectionCatalog;

use super::names;
use crate::cli::NameArgs;
use crate::commands::database;

pub async fn run(args: NameArgs) -> Result<()> {
    let name = names::check(&args.name)?;
    ProjectionCatalog::new(database::open(&args.db).await?)
        .resume(name)
        .await?;
    println!("resumed {name}");
    Ok(())
}
