//! `rillflow archive status [--output table|json]`

use anyhow::Result;
use rillflow_adapters::archive::ArchiveStatus;

use crate::cli::{ArchiveStatusArgs, OutputFormat};
use crate::commands::database;

pub async fn run(args: ArchiveStatusArgs) -> Result<()> {
    let pool = database::open(&args.db).await?;
    let status = ArchiveStatus::load(&pool).await?;
    match args.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&status)?),
        OutputFormat::Table => print_table(&status),
    }
    Ok(())
}

fn print_table(s: &ArchiveStatus) {
    println!("backend   {}", s.backend);
    println!(
        "redirect  {}",
        if s.redirect { "enabled" } else { "disabled" }
    );
    println!();
    println!("{:<22} {:>12} {:>14}", "", "EVENTS", "BYTES");
    println!(
        "{:<22} {:>12} {:>14}",
        "hot (events_hot)", s.events_hot, s.hot_bytes
    );
    println!(
        "{:<22} {:>12} {:>14}",
        "cold (events_cold)", s.events_cold_partition, s.cold_partition_bytes
    );
    println!(
        "{:<22} {:>12} {:>14}",
        "cold (events_archive)", s.events_archive_table, s.archive_table_bytes
    );
    println!();
    println!(
        "streams   {} total, {} archived, {} cold, {} reactivated",
        s.streams_total, s.streams_archived, s.streams_cold, s.streams_reactivated
    );
    println!();
    println!("{:<24} {:<12} {:>12}  BOUND", "PARTITION", "TIER", "BYTES");
    for p in &s.partitions {
        println!(
            "{:<24} {:<12} {:>12}  {}",
            p.name, p.parent, p.bytes, p.bound
        );
    }
}
