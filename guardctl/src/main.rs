//! `guardctl`: the launcher (`run`), the broker, approvals, audit queries and policy tools.
//!
//! Owns everything a user or a security team runs by hand. Each subcommand lives in its own
//! module; `main` only parses arguments and maps results to exit codes (0 success, 1 a check
//! failed, 2 bad input such as a malformed policy).
//!
//! Must never: run a guarded command without the guard when asked to guard it, or accept
//! approvals from inside a guarded process tree.

mod broker;
mod cmd_approve;
mod cmd_doctor;
mod cmd_log;
mod cmd_policy;
mod cmd_run;
mod cmd_serve;
mod cmd_watch;
mod state;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "guardctl",
    version,
    about = "A mechanical gate below AI coding agents"
)]
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
    /// Print the audit events of a session.
    Log(cmd_log::LogArgs),
    /// Prove the guard is live: run probes in each runtime under a probe policy.
    Doctor(cmd_doctor::DoctorArgs),
    /// List the asks waiting for an answer.
    Pending(cmd_approve::PendingArgs),
    /// Approve a pending ask (refused from inside a guarded tree).
    Approve(cmd_approve::AnswerArgs),
    /// Deny a pending ask.
    Deny(cmd_approve::AnswerArgs),
    /// Live console: the event stream and pending asks, with keys to approve or deny.
    Watch(cmd_watch::WatchArgs),
    /// Long-lived approvals broker for every session of this user (see packaging/systemd).
    Serve(cmd_serve::ServeArgs),
}

/// Commands that only print (to a pager, `head`, a pipe) should end quietly when the reader
/// goes away, as other Unix tools do, instead of panicking in `println!`. Not for `run`: its
/// broker writes to sockets and must see EPIPE as an error, never die of the signal.
fn die_quietly_on_closed_stdout() {
    // SAFETY: restoring the default disposition of one signal before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(cli.command, Command::Policy(_) | Command::Log(_)) {
        die_quietly_on_closed_stdout();
    }
    match cli.command {
        Command::Run(args) => cmd_run::run(args),
        Command::Policy(cmd) => cmd_policy::run(cmd),
        Command::Log(args) => cmd_log::run(args),
        Command::Doctor(args) => cmd_doctor::run(args),
        Command::Pending(args) => cmd_approve::pending(args),
        Command::Approve(args) => cmd_approve::answer(args, true),
        Command::Deny(args) => cmd_approve::answer(args, false),
        Command::Watch(args) => cmd_watch::run(args),
        Command::Serve(args) => cmd_serve::run(args),
    }
}
