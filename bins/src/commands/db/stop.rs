//! `rillflow db stop [--dir D]`

use anyhow::Result;
use rillflow_adapters::LocalCluster;

use crate::cli::DbArgs;

pub fn run(args: DbArgs) -> Result<()> {
    let cluster = LocalCluster::open(&args.dir)?;
    if cluster.stop()? {
        println!("stopped the local database in {}", args.dir.display());
    } else {
        println!(
            "the local database in {} was not running",
            args.dir.display()
        );
    }
    Ok(())
}
