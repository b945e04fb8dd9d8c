//! `guardctl`: the launcher (`run`), the broker, approvals, audit queries and policy tools.
//!
//! Owns everything a user or a security team runs by hand. Each subcommand lives in its own
//! module; `main` only parses arguments and maps results to exit codes (0 success, 1 a check
//! failed, 2 bad input such as a malformed policy).
//!
//! Must never: run a guarded command without the guard when asked to guard it, or accept
//! approvals from inside a guarded process tree.

mod cmd_policy;
mod cmd_run;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "guardctl", version, about = "A mechanical gate below AI coding agents")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a command (the agent) under the guard.
    Run(cmd_run::RunArgs),
    /// Compile, check, test and explain policies.
    #[command(subcommand)]
    Policy(cmd_policy::PolicyCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => cmd_run::run(args),
        Command::Policy(cmd) => cmd_policy::run(cmd),
    }
}
