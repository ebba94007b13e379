use clap::{Parser, Subcommand};
use coroha::cluster::sim::scenario::{run_random, RandomRun, Scenario};
use coroha::config::Config;
use std::path::PathBuf;
use std::process::ExitCode;

const DEFAULT_CONFIG: &str = "/etc/coroha/coroha.toml";
const DEMO: &str = include_str!("cluster/sim/demo.toml");

#[derive(Parser)]
#[command(
    name = "coroha",
    version,
    about = "Failover manager for NSO/ConfD HA, driven by corosync"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the simulated cluster: the built-in story, a scenario file, or
    /// random fault schedules checked against the invariants.
    Simulate {
        /// A scenario file (TOML); without it, the built-in 3-node story.
        file: Option<PathBuf>,
        /// Run N random fault schedules instead.
        #[arg(long, value_name = "N")]
        random: Option<u64>,
        /// Seed of the first random schedule (schedule k uses seed + k).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Nodes in each random schedule.
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// Include debug lines in the timeline; with --random, print every
        /// schedule's whole timeline (use with --random 1 to replay a seed).
        #[arg(long)]
        verbose: bool,
    },
    /// Give one HA order to the local NSO/ConfD, or watch its HA events.
    Ha(coroha::ha::cli::HaArgs),
    /// Validate a configuration and print it with defaults filled in.
    CheckConfig {
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Simulate {
            file,
            random: Some(n),
            seed,
            nodes,
            json,
            verbose,
        } => {
            if file.is_some() {
                eprintln!("coroha simulate: give either a scenario file or --random, not both");
                return ExitCode::from(2);
            }
            if !(2..=9).contains(&nodes) {
                eprintln!("coroha simulate: --nodes must be between 2 and 9");
                return ExitCode::from(2);
            }
            simulate_random(
                RandomRun {
                    schedules: n,
                    seed,
                    nodes,
                    sabotage: None,
                    verbose,
                },
                json,
            )
        }
        Command::Simulate {
            file,
            json,
            verbose,
            ..
        } => {
            let scenario = match &file {
                Some(path) => Scenario::load(path),
                None => Scenario::parse(DEMO, "<built-in demo>"),
            };
            match scenario {
                Ok(s) => simulate_scenario(&s, json, verbose),
                Err(errors) => {
                    for e in errors {
                        eprintln!("{e}");
                    }
                    ExitCode::from(1)
                }
            }
        }
        Command::Ha(args) => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            match runtime {
                Ok(rt) => ExitCode::from(rt.block_on(coroha::ha::cli::run(args)) as u8),
                Err(e) => {
                    eprintln!("coroha ha: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::CheckConfig { config } => match Config::load(&config) {
            Ok(c) => {
                print!("{}", c.to_toml());
                ExitCode::SUCCESS
            }
            Err(errors) => {
                for e in errors {
                    eprintln!("{e}");
                }
                ExitCode::from(1)
            }
        },
    }
}

fn simulate_scenario(scenario: &Scenario, json: bool, verbose: bool) -> ExitCode {
    let outcome = match scenario.run(None, verbose) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("scenario {}: {e}", scenario.name);
            return ExitCode::from(1);
        }
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&outcome).expect("serializable")
        );
    } else {
        println!("scenario: {}", scenario.name);
        for l in scenario.description.trim().lines() {
            println!("  {l}");
        }
        println!();
        print!("{}", outcome.timeline_text());
        println!();
        print!("{}", outcome.summary());
    }
    if outcome.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn simulate_random(run: RandomRun, json: bool) -> ExitCode {
    let report = run_random(&run);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("serializable")
        );
    } else {
        for e in &report.timeline {
            println!("{}", coroha::cluster::sim::line(e));
        }
        for v in &report.violations {
            println!("{v}");
            println!(
                "replay: coroha simulate --random 1 --seed {} --nodes {}\n",
                v.seed, run.nodes
            );
        }
        println!(
            "{} schedules of {} nodes ({:.0} simulated seconds) in {:.2} s: {:.0} schedules/s; {} violations",
            report.schedules,
            report.nodes,
            report.simulated_seconds,
            report.seconds,
            report.schedules_per_second,
            report.violations.len()
        );
    }
    if report.violations.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
