//! `rillflow db start [--dir D]`

use anyhow::Result;

use crate::cli::DbArgs;
use crate::commands::database::{self, LOCAL_DATABASE};

pub async fn run(args: DbArgs) -> Result<()> {
    let cluster = database::start_local(&args.dir).await?;
    eprintln!(
        "local database running on 127.0.0.1:{} ({})",
        cluster.port(),
        cluster.dir().display()
    );
    println!("{}", cluster.url(LOCAL_DATABASE));
    Ok(())
}
