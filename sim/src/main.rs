//! `cargo run -p rillflow-sim -- --seeds N [--from S] [--sim-secs T]` and
//! `--reproduce SEED`: runs seeded simulations and reports the first failure
//! with everything needed to replay it.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use rillflow_sim::harness::trace::Trace;
use rillflow_sim::scenarios::hot_cold::failover_times::{Cause, Takeover};
use rillflow_sim::scenarios::hot_cold::session_takeover;
use rillflow_sim::{run, Params, Scenario, Without};

#[derive(Debug, Parser)]
#[command(
    name = "rillflow-sim",
    about = "Deterministic simulation of the rillflow daemon"
)]
struct Args {
    /// How many seeds to run.
    #[arg(long, default_value_t = 20)]
    seeds: u64,
    /// First seed.
    #[arg(long, default_value_t = 1)]
    from: u64,
    /// Simulated seconds per run (faults in the first two thirds).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(10..=3600))]
    sim_secs: u64,
    /// Node count [default: 2 to 4, drawn from the seed].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=9))]
    nodes: Option<u64>,
    /// Fault mix: chaos, crashes, network, pauses, db-restarts, locks,
    /// projections, archive, sessions, ownership, operator, standby.
    #[arg(long, default_value = "chaos", value_parser = parse_scenario)]
    scenario: Scenario,
    /// Remove a protection, to watch the checks catch what it prevents
    /// (repeatable).
    #[arg(long, value_name = "PROTECTION", value_enum)]
    without: Vec<Without>,
    /// Run this one seed and print its whole trace.
    #[arg(long, value_name = "SEED")]
    reproduce: Option<u64>,
    /// Where a failing run's full trace is written.
    #[arg(long, default_value = "target/sim-traces")]
    trace_dir: PathBuf,
}

fn parse_scenario(name: &str) -> Result<Scenario, String> {
    Scenario::parse(name).ok_or_else(|| {
        let names: Vec<&str> = Scenario::ALL.iter().map(|(n, _)| *n).collect();
        format!("unknown scenario {name:?} (one of {})", names.join(", "))
    })
}

fn params_for(args: &Args, seed: u64) -> Params {
    let nodes = args.nodes.map(|n| n as usize);
    let mut params = Params::from_seed_with(seed, args.sim_secs, args.scenario, nodes);
    params.off.extend(args.without.iter().copied());
    params
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(seed) = args.reproduce {
        let params = params_for(&args, seed);
        let outcome = run(&params);
        print!("{}", params.describe());
        print!("{}", Trace::render(&outcome.events));
        println!("trace hash {:016x}", outcome.hash);
        return match outcome.violation {
            Some(v) => {
                println!(
                    "VIOLATION {} at {:.3}s: {}",
                    v.invariant,
                    v.at.as_secs_f64(),
                    v.detail
                );
                ExitCode::FAILURE
            }
            None => {
                println!("ok");
                ExitCode::SUCCESS
            }
        };
    }
    let Some(last) = args.from.checked_add(args.seeds) else {
        eprintln!("error: --from + --seeds overflows");
        return ExitCode::from(2);
    };
    let mut takeovers = Vec::new();
    for seed in args.from..last {
        let params = params_for(&args, seed);
        let outcome = run(&params);
        takeovers.extend(outcome.takeovers.iter().copied());
        let Some(v) = outcome.violation else {
            println!(
                "seed {seed}: ok ({} nodes, {} faults, {} grants, {} writes, {}{} fenced off, hash {:016x})",
                params.nodes.len(),
                params.faults.len(),
                outcome.grants,
                outcome.writes,
                if outcome.events_committed > 0 {
                    format!("{} events projected once, ", outcome.events_committed)
                } else {
                    String::new()
                },
                outcome.refused_writes,
                outcome.hash
            );
            if !outcome.takeovers.is_empty() {
                let took: Vec<String> = outcome
                    .takeovers
                    .iter()
                    .map(|t| format!("{:?} {} ms", t.cause, t.took.as_millis()))
                    .collect();
                println!("  takeovers: {}", took.join(", "));
            }
            if let Some(archive) = outcome.archive {
                println!("  {archive}");
            }
            if let Some(ownership) = outcome.ownership {
                println!("  {ownership}");
            }
            if let Some(operator) = outcome.operator {
                println!("  {operator}");
            }
            continue;
        };
        println!("seed {seed}: FAILED");
        print!("{}", params.describe());
        println!(
            "first violation: {} at {:.3}s: {}",
            v.invariant,
            v.at.as_secs_f64(),
            v.detail
        );
        // The 50 events leading up to the violation, not the end of the run.
        let upto = outcome.events.partition_point(|e| e.at <= v.at);
        println!("the last 50 events up to {:.3}s:", v.at.as_secs_f64());
        print!(
            "{}",
            Trace::render(&outcome.events[upto.saturating_sub(50)..upto])
        );
        println!("trace hash {:016x}", outcome.hash);
        let path = args.trace_dir.join(format!("seed-{seed}.txt"));
        let written = std::fs::create_dir_all(&args.trace_dir)
            .and_then(|()| std::fs::write(&path, Trace::render(&outcome.events)));
        match written {
            Ok(()) => println!("full trace: {}", path.display()),
            Err(e) => println!("could not write the full trace to {}: {e}", path.display()),
        }
        println!(
            "replay: cargo run -p rillflow-sim -- --reproduce {seed} --sim-secs {} --scenario {}{}",
            args.sim_secs,
            args.scenario.name(),
            args.without
                .iter()
                .map(|w| format!(" --without {w}"))
                .collect::<String>()
        );
        return ExitCode::FAILURE;
    }
    // The tight bound, a session to replace on the way included.
    let tight = session_takeover(&params_for(&args, args.from)).tight_reopened();
    summarize(&takeovers, tight);
    ExitCode::SUCCESS
}

/// One line per kind of takeover: how many, median, worst; then the same
/// for those the tight bound judged (every standby watching, nothing
/// holding them back) and for the rest.
fn summarize(takeovers: &[Takeover], tight: Duration) {
    for (cause, what) in [
        (Cause::Crash, "after a crash of the hot node"),
        (Cause::SessionEnded, "after its lease session was ended"),
        (
            Cause::DbRestart,
            "after a database restart, from its return",
        ),
    ] {
        let of = |keep: &dyn Fn(&Takeover) -> bool| {
            let mut took: Vec<_> = takeovers
                .iter()
                .filter(|t| t.cause == cause && keep(t))
                .map(|t| t.took)
                .collect();
            took.sort();
            took
        };
        let line = |label: &str, took: &[Duration]| {
            if let (Some(median), Some(worst)) = (took.get(took.len() / 2), took.last()) {
                println!(
                    "{label}: {}, median {:.3}s, worst {:.3}s",
                    took.len(),
                    median.as_secs_f64(),
                    worst.as_secs_f64()
                );
            }
        };
        let judged_tight = |t: &Takeover| t.allowed.is_some_and(|a| a <= tight);
        line(&format!("takeovers {what}"), &of(&|_| true));
        if cause == Cause::DbRestart {
            continue;
        }
        line(
            &format!("  allowed at most {} ms", tight.as_millis()),
            &of(&judged_tight),
        );
        line("  allowed more", &of(&|t| !judged_tight(t)));
    }
}
