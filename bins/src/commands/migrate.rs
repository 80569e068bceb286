//! `rillflow migrate [--down N] [--status]`

use anyhow::Result;
use rillflow_adapters::Migrations;

use super::database;
use crate::cli::MigrateArgs;

pub async fn run(args: MigrateArgs) -> Result<()> {
    let pool = database::open_unmigrated(&args.db).await?;
    if args.status {
        for m in Migrations::status(&pool).await? {
            let state = if m.applied { "applied" } else { "pending" };
            println!(
                "{:04}_{}\t{state}",
                m.version,
                m.description.replace(' ', "_")
            );
        }
        return Ok(());
    }
    match args.down {
        Some(steps) => {
            let reverted = Migrations::revert(&pool, steps).await?;
            match reverted.as_slice() {
                [] => println!("nothing to revert"),
                versions => {
                    let list: Vec<String> = versions.iter().map(|v| format!("{v:04}")).collect();
                    println!(
                        "reverted {} migration(s): {}",
                        versions.len(),
                        list.join(", ")
                    );
                }
            }
        }
        None => {
            let applied = Migrations::apply(&pool).await?;
            println!("applied {applied} migration(s); schema is up to date");
        }
    }
    Ok(())
}
