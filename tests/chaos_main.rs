//! `chaos`: failover under load on a real Postgres, with a verification
//! report. Exits non-zero on any lost, doubled or invented event.
//!
//! ```sh
//! cargo build --release -p rillflow
//! cargo run --release -p rillflow-testkit --bin chaos -- [--short] [--events N] [--kills N] [--freezes N]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use rillflow_testkit::chaos::{run, ChaosConfig};

fn usage() -> &'static str {
    "usage: chaos [--short] [--events N] [--kills N] [--freezes N] [--handoffs N] \
     [--terminations N] [--pg-restarts N] [--rillflow PATH] [--dir PATH]"
}

fn parse() -> Result<ChaosConfig, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let here = exe.parent().ok_or("no directory for this binary")?;
    let mut bin = here.join("rillflow");
    let mut dir = here.join("chaos-run");
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let short = args.iter().any(|a| a == "--short");
    args.retain(|a| a != "--short");
    let mut config = if short {
        ChaosConfig::short(bin.clone(), dir.clone())
    } else {
        ChaosConfig::full(bin.clone(), dir.clone())
    };
    let mut it = args.into_iter();
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value; {}", usage()))?;
        let number = || -> Result<usize, String> {
            value
                .parse()
                .map_err(|_| format!("{flag}: {value:?} is not a number"))
        };
        match flag.as_str() {
            "--events" => config.min_events = number()? as u64,
            "--kills" => config.kills = number()?,
            "--freezes" => config.freezes = number()?,
            "--handoffs" => config.handoffs = number()?,
            "--terminations" => config.terminations = number()?,
            "--pg-restarts" => config.pg_restarts = number()?,
            "--rillflow" => bin = PathBuf::from(&value),
            "--dir" => dir = PathBuf::from(&value),
            other => return Err(format!("unknown argument {other:?}; {}", usage())),
        }
    }
    if !bin.is_file() {
        return Err(format!(
            "no rillflow binary at {} (build it with `cargo build --release -p rillflow`, or pass --rillflow PATH)",
            bin.display()
        ));
    }
    config.bin = bin;
    config.work_dir = dir;
    Ok(config)
}

#[tokio::main]
async fn main() -> ExitCode {
    let config = match parse() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let started = std::time::Instant::now();
    match run(&config, |line| {
        eprintln!("[{:>6.1}s] {line}", started.elapsed().as_secs_f64())
    })
    .await
    {
        Ok(report) => {
            println!("{report}");
            println!(
                "run took {:.0} s; logs in {}",
                started.elapsed().as_secs_f64(),
                config.work_dir.join("logs").display()
            );
            if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
