//! `rillflow db url [--dir D]`

use anyhow::Result;
use rillflow_adapters::LocalCluster;

use crate::cli::DbArgs;
use crate::commands::database::LOCAL_DATABASE;

pub fn run(args: DbArgs) -> Result<()> {
    let cluster = LocalCluster::open(&args.dir)?;
    if !cluster.is_running()? {
        eprintln!("note: the local database is stopped; `rillflow db start` starts it");
    }
    println!("{}", cluster.url(LOCAL_DATABASE));
    Ok(())
}
