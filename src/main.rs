use clap::{CommandFactory, Parser, Subcommand};
use coroha::control::Request;
use coroha_config::Config;
use coroha_sim::scenario::{run_random, RandomRun, Scenario};
use std::path::PathBuf;
use std::process::ExitCode;

const DEFAULT_CONFIG: &str = "/etc/coroha/coroha.toml";
use coroha_sim::DEMO;

#[derive(Parser)]
#[command(
    name = "coroha",
    version,
    about = "Failover manager for NSO/ConfD HA, driven by corosync",
    long_about = "Failover manager for Cisco/Tail-f NSO and ConfD HA. It runs on every node \
beside corosync, elects the primary from votequorum and a CPG group of the coroha daemons, \
and drives the local NSO/ConfD over its HA control socket.",
    after_long_help = "Files: /etc/coroha/coroha.toml, the configuration (coroha.toml(5)); \
/etc/default/coroha, the daemon's log format and level; /var/lib/coroha, its persisted state \
and history; /run/coroha/control.sock, the control socket. \
Documentation: /usr/share/doc/coroha (operations.md: running it; design.md: why it is safe)."
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
        /// Threads for --random (0: one per core). The report does not
        /// depend on it: each schedule depends on its seed alone.
        #[arg(long, default_value_t = 1, value_name = "N")]
        jobs: usize,
        /// With --random: start no schedule after this long ("90s", "5m");
        /// the report says how many ran.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        time_limit: Option<std::time::Duration>,
        /// With --random: the fault kinds to draw from. "classic" replays
        /// the seeds of docs/design.md §12; "all" adds a stopped node, one-way
        /// loss and start phase 0 on the lowest-id node.
        #[arg(long, default_value = "all", value_name = "SET")]
        faults: coroha_sim::scenario::FaultSet,
        /// With --random: infer freshness from epochs and sync generations
        /// alone, without CDB's transaction id (design §6), to measure what
        /// the id adds.
        #[arg(long)]
        no_txid: bool,
        /// With --random: NSO/ConfD's HA tick timeout in the schedules
        /// ("500ms"; default PT2S). Short ticks widen design §6's window.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        tick: Option<std::time::Duration>,
        /// With --random: simulate all 45 s of quiet after the last fault,
        /// also once the cluster has settled (by default a schedule ends
        /// when it has been whole and idle for 6 s). Slower; the early end
        /// is checked against it.
        #[arg(long)]
        whole_quiet: bool,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// Include debug lines in the timeline; with --random, print every
        /// schedule's whole timeline (use with --random 1 to replay a seed).
        #[arg(long)]
        verbose: bool,
    },
    /// Give one HA order to the local NSO/ConfD, or watch its HA events.
    Ha(coroha::cli::ha::HaArgs),
    /// Run the daemon: corosync → policy → the local NSO/ConfD.
    Run {
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Where and how to log: the journal under systemd, else text on
        /// stderr (auto), or as asked. The level is COROHA_LOG's (default
        /// info).
        #[arg(long, value_enum, default_value = "auto", env = "COROHA_LOG_FORMAT")]
        log_format: coroha::daemon::LogFormat,
        /// Wait this many seconds for corosync at start.
        #[arg(long, default_value_t = 60)]
        wait_corosync: u64,
    },
    /// Show what the running daemon knows: roles, quorum, the plan.
    Status {
        #[command(flatten)]
        ctl: Ctl,
        /// Show it again every --interval until interrupted.
        #[arg(long)]
        watch: bool,
        /// How often --watch shows it (2s, 500ms).
        #[arg(long, default_value = "2s", value_parser = parse_duration)]
        interval: std::time::Duration,
    },
    /// Show this node's history: role changes, decisions, operator
    /// requests, fence runs and hook failures, oldest first.
    History {
        /// How many of the newest entries.
        #[arg(short = 'n', long, default_value_t = 50)]
        last: usize,
        #[command(flatten)]
        ctl: Ctl,
    },
    /// Move the primary role: to NODE, or to the best other node.
    Switchover {
        #[arg(long, value_name = "NODE")]
        to: Option<String>,
        #[command(flatten)]
        ctl: Ctl,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Put NODE in standby (never primary; persisted), or take it out.
    Standby {
        node: String,
        #[arg(long)]
        off: bool,
        #[command(flatten)]
        ctl: Ctl,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Stop the local daemon: hand the primary role over first (as SIGTERM
    /// does), or with --keep-roles leave every role as it is (maintenance:
    /// upgrading coroha itself).
    Stop {
        #[arg(long)]
        keep_roles: bool,
        #[command(flatten)]
        ctl: Ctl,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Pause the whole cluster: the daemons stay up and keep reporting,
    /// and nobody is elected, promoted or attached until `coroha resume`
    /// (a primary that loses quorum or its lease still steps down, and one
    /// that vanished is still fenced).
    Pause {
        #[command(flatten)]
        ctl: Ctl,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// End a pause: the cluster decides again.
    Resume {
        #[command(flatten)]
        ctl: Ctl,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Vouch that NODE's NSO/ConfD is down, so that an orphaned primary may
    /// be replaced (like Pacemaker's manual fencing confirmation).
    ConfirmDown {
        node: String,
        #[command(flatten)]
        ctl: Ctl,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Validate a configuration as `run` does (the file, and the files and
    /// programs it names on this host) and print it with defaults filled
    /// in; exit 1 on any error.
    CheckConfig {
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Check the file alone, not this host (a file for another
        /// machine).
        #[arg(long, conflicts_with = "corosync")]
        file_only: bool,
        /// Also check it against the running corosync: its node list and
        /// its runtime token and consensus.
        #[arg(long)]
        corosync: bool,
    },
    /// Write the man pages or shell completions (for packaging).
    #[command(hide = true)]
    Generate {
        #[command(subcommand)]
        what: Generate,
    },
}

#[derive(Subcommand)]
enum Generate {
    /// coroha(8) and a page for every subcommand.
    ManPages { dir: PathBuf },
    /// The completion script for SHELL.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
        dir: PathBuf,
    },
}

/// Whether a command that changes something waits for the outcome.
#[derive(clap::Args)]
struct WaitArgs {
    /// Return once the daemon took the request, without waiting for the
    /// outcome.
    #[arg(long)]
    no_wait: bool,
    /// How long to wait for the outcome (then exit 3), e.g. 60s, 2m.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    timeout: std::time::Duration,
}

impl WaitArgs {
    fn wait(&self) -> coroha::cli::control::Wait {
        if self.no_wait {
            coroha::cli::control::Wait::No
        } else {
            coroha::cli::control::Wait::Until(self.timeout)
        }
    }
}

/// How the operator commands reach the daemon.
#[derive(clap::Args)]
struct Ctl {
    /// The config file that names the control socket.
    #[arg(long, default_value = DEFAULT_CONFIG)]
    config: PathBuf,
    /// The control socket (overrides the config file's).
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Print the answer as JSON (docs/operations.md).
    #[arg(long)]
    json: bool,
}

fn control(ctl: Ctl, req: Request) -> ExitCode {
    control_and_wait(ctl, req, coroha::cli::control::Wait::No)
}

fn control_and_wait(ctl: Ctl, req: Request, wait: coroha::cli::control::Wait) -> ExitCode {
    let socket = match ctl.socket {
        Some(s) => s,
        None => {
            let (socket, problem) = Config::control_socket(&ctl.config);
            if let Some(problem) = problem {
                eprintln!("warning: {problem}");
            }
            socket
        }
    };
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => ExitCode::from(rt.block_on(coroha::cli::control::run_and_wait(
            &socket, req, ctl.json, wait,
        ))),
        Err(e) => {
            eprintln!("coroha: {e}");
            ExitCode::from(2)
        }
    }
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Run {
            config,
            log_format,
            wait_corosync,
        } => coroha::daemon::main(coroha::daemon::RunOptions {
            config,
            log_format,
            wait_corosync: std::time::Duration::from_secs(wait_corosync),
        }),
        Command::Status {
            ctl, watch: false, ..
        } => control(ctl, Request::Status),
        Command::Status {
            ctl,
            watch: true,
            interval,
        } => control_and_wait(
            ctl,
            Request::Status,
            coroha::cli::control::Wait::Watch(interval),
        ),
        Command::History { last, ctl } => control(ctl, Request::History { last }),
        Command::Switchover { to, ctl, wait } => {
            control_and_wait(ctl, Request::Switchover { to }, wait.wait())
        }
        Command::Standby {
            node,
            off,
            ctl,
            wait,
        } => control_and_wait(ctl, Request::Standby { node, on: !off }, wait.wait()),
        Command::Stop {
            keep_roles,
            ctl,
            wait,
        } => control_and_wait(ctl, Request::Stop { keep_roles }, wait.wait()),
        Command::Pause { ctl, wait } => {
            control_and_wait(ctl, Request::Pause { on: true }, wait.wait())
        }
        Command::Resume { ctl, wait } => {
            control_and_wait(ctl, Request::Pause { on: false }, wait.wait())
        }
        Command::ConfirmDown { node, ctl, wait } => {
            control_and_wait(ctl, Request::ConfirmDown { node }, wait.wait())
        }
        Command::Simulate {
            file,
            random: Some(n),
            seed,
            nodes,
            jobs,
            time_limit,
            faults,
            no_txid,
            tick,
            whole_quiet,
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
                    verbose,
                    jobs: match jobs {
                        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
                        n => n,
                    },
                    time_limit,
                    faults,
                    txid: !no_txid,
                    tick: tick.map(|t| t.as_millis() as u64),
                    whole_quiet,
                    ..RandomRun::new(n, seed, nodes)
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
                Ok(rt) => ExitCode::from(rt.block_on(coroha::cli::ha::run(args)) as u8),
                Err(e) => {
                    eprintln!("coroha ha: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Generate { what } => {
            let written = match what {
                Generate::ManPages { dir } => {
                    coroha::cli::generate::man_pages(Cli::command(), &dir)
                }
                Generate::Completions { shell, dir } => {
                    coroha::cli::generate::completions(Cli::command(), shell, &dir).map(|p| vec![p])
                }
            };
            match written {
                Ok(files) => {
                    for f in files {
                        println!("{}", f.display());
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("coroha generate: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::CheckConfig {
            config,
            file_only,
            corosync,
        } => match Config::load_checked(
            &config,
            if file_only {
                coroha_config::Checks::FileOnly
            } else {
                coroha_config::Checks::FileAndHost
            },
        )
        .and_then(|(c, mut warnings)| {
            if !file_only {
                coroha::daemon::check_tls(&c, &config)?;
            }
            if corosync {
                warnings.extend(coroha::daemon::check_against_corosync(&c, &config)?);
            }
            Ok((c, warnings))
        }) {
            Ok((c, warnings)) => {
                for w in warnings {
                    eprintln!("warning: {w}");
                }
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
    let outcome = match scenario.run(&[], verbose) {
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

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    coroha_config::Dur::parse(text)
        .map(|d| d.0)
        .map_err(|why| format!("{text:?} is not a duration like \"90s\" or \"1h30m\": {why}"))
}

/// How many schedules injected each fault and reached each rare state.
fn print_coverage(coverage: &coroha_sim::Coverage, schedules: u64) {
    if schedules < 2 {
        return;
    }
    let share = |n: u64| 100.0 * n as f64 / schedules as f64;
    println!("coverage (schedules, share):");
    for (kind, n) in &coverage.faults {
        println!("  fault {kind:<28} {n:>10} {:>6.2}%", share(*n));
    }
    for (state, n) in &coverage.states {
        println!("  state {:<28} {n:>10} {:>6.2}%", state.name(), share(*n));
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
            println!("{}", coroha_sim::line(e));
        }
        for v in &report.violations {
            println!("{v}");
            println!(
                "replay: coroha simulate --random 1 --seed {} --nodes {}{}\n",
                v.seed,
                run.nodes,
                match run.faults {
                    coroha_sim::scenario::FaultSet::All => "",
                    coroha_sim::scenario::FaultSet::Classic => " --faults classic",
                }
            );
        }
        print_coverage(&report.coverage, report.schedules);
        println!(
            "first seed {}, {} schedules of {} nodes ({:.0} simulated seconds) in {:.2} s: {:.0} schedules/s; {} violations",
            report.first_seed,
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
