//! The command-line client of the host API: login, listing, deploy --wait, votes.
//!
//! Every command but `login` calls the server and token that `gatehouse login` saved (see
//! [`config`]); `--server`/`GATEHOUSE_SERVER` and `--token`/`GATEHOUSE_TOKEN` override
//! them. `--output json` prints the API's JSON, one document; text is for people.
//!
//! Exit codes: 0 done (also when the reader of stdout went away, as with `| head -1`); 1
//! the server refused, or a deployment did not succeed; 2 a usage or connection problem;
//! 130 stopped waiting with Ctrl-C.

mod artifacts;
mod commands;
mod config;
mod deploy;
mod http;
mod output;
mod render;
mod resolve;
mod solutions;
mod terms;
#[cfg(test)]
mod tests;
mod timeline;
mod vote;
mod wait;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::Output;
use http::ServerProblem;

/// The flags every client command takes, after its name.
#[derive(Debug, Clone, Default, Args)]
pub struct GlobalArgs {
    /// The server, such as http://127.0.0.1:8080 [default: the one `gatehouse login` saved]
    #[arg(long, env = "GATEHOUSE_SERVER", global = true, value_name = "URL")]
    pub server: Option<String>,
    /// A bearer token, or `-` to read it from stdin [default: the one `gatehouse login`
    /// saved]
    #[arg(
        long,
        env = "GATEHOUSE_TOKEN",
        hide_env_values = true,
        global = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,
    /// Print text for people, or the API's JSON for scripts.
    #[arg(long, value_enum, default_value_t, global = true)]
    pub output: Output,
}

/// The commands that call a Gatehouse server.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Check a token against a server, and save both for the other commands.
    Login(GlobalArgs),
    /// Forget the saved server and token.
    Logout(GlobalArgs),
    /// Who the token belongs to.
    Me(GlobalArgs),
    /// The environments the host deploys from and to; alone, lists them.
    Environments {
        #[command(subcommand)]
        command: Option<RecordCommand>,
        #[command(flatten)]
        global: GlobalArgs,
    },
    /// The pipelines you may see and run; alone, lists them.
    Pipelines {
        #[command(subcommand)]
        command: Option<RecordCommand>,
        #[command(flatten)]
        global: GlobalArgs,
    },
    /// Gate and validator plugins; alone, lists them.
    Plugins {
        #[command(subcommand)]
        command: Option<PluginsCommand>,
        #[command(flatten)]
        global: GlobalArgs,
    },
    /// Deployments: list, show, cancel, retry, wait; alone, lists the newest.
    Deployments {
        #[command(subcommand)]
        command: Option<DeploymentsCommand>,
        #[command(flatten)]
        global: GlobalArgs,
    },
    /// Where each version of each solution is installed, by whom and when.
    Solutions(solutions::SolutionsArgs),
    /// The backups of exported solution versions.
    Artifacts {
        #[command(subcommand)]
        command: artifacts::ArtifactsCommand,
        #[command(flatten)]
        global: GlobalArgs,
    },
    /// The deployments you may vote on now.
    Approvals(ListArgs),
    /// Approve a deployment that waits for approval.
    Approve(VoteArgs),
    /// Reject a deployment that waits for approval.
    Reject(VoteArgs),
    /// Deploy a solution to a stage, and with --wait follow it to the end.
    Deploy(deploy::DeployArgs),
}

/// `list` and `get` of one kind of record.
#[derive(Debug, Subcommand)]
pub enum RecordCommand {
    /// List them.
    List(ListArgs),
    /// Show one, by id or name.
    Get {
        #[arg(value_name = "ID_OR_NAME")]
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// List the loaded plugins.
    List(ListArgs),
    /// Show one, by id or name.
    Get {
        #[arg(value_name = "ID_OR_NAME")]
        id: String,
    },
    /// Upload a component (admins). With --name and --version the server refuses a
    /// component that reports anything else.
    Upload {
        /// The component, built for wasm32-wasip2.
        file: PathBuf,
        /// The name the component must report.
        #[arg(long)]
        name: Option<String>,
        /// The version the component must report.
        #[arg(long)]
        version: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum DeploymentsCommand {
    /// List deployments, newest first.
    List(deploy::ListDeploymentsArgs),
    /// Show a deployment with its gates, findings, votes and timeline.
    Get { id: String },
    /// Cancel a deployment that has not started deploying.
    Cancel { id: String },
    /// Run a failed, rejected or canceled deployment again.
    Retry {
        id: String,
        /// Follow it until it ends.
        #[arg(long)]
        wait: bool,
    },
    /// Follow a deployment until it ends: exit 0 when it succeeds, 1 otherwise.
    Wait { id: String },
}

#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    /// Show at most this many.
    #[arg(long, default_value_t = commands::DEFAULT_LIST, value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: u32,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Clone, Args)]
pub struct VoteArgs {
    /// The deployment.
    pub id: String,
    /// Why; recorded with the vote.
    #[arg(long, short = 'm', default_value = "")]
    pub comment: String,
    #[command(flatten)]
    pub global: GlobalArgs,
}

/// Why a command did not do its job.
#[derive(Debug)]
pub enum CliError {
    /// Bad arguments, no login, a name that matches nothing, an unreadable file. Exit 2.
    Usage(String),
    /// No answer, or not the Gatehouse API. Exit 2.
    Connection(String),
    /// The server refused, with a problem document. Exit 1.
    Api(ServerProblem),
    /// Stdout could not be written. Exit 0, silently, when its reader went away (a closed
    /// pipe, as with `| head -1`); exit 2 otherwise.
    Output(std::io::Error),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Api(_) => 1,
            CliError::Output(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
            CliError::Usage(_) | CliError::Connection(_) | CliError::Output(_) => 2,
        }
    }

    /// Prints the error to stderr.
    pub fn report(&self) {
        match self {
            CliError::Usage(message) | CliError::Connection(message) => {
                output::note(format_args!("error: {message}"));
            }
            CliError::Output(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            CliError::Output(e) => {
                output::note(format_args!("error: cannot write the output: {e}"))
            }
            CliError::Api(problem) => {
                output::note(format_args!("error: {}", problem.detail));
                output::note(format_args!(
                    "  ({} {}; {})",
                    problem.status, problem.title, problem.request
                ));
                for (key, value) in &problem.extensions {
                    let value = value
                        .as_str()
                        .map_or_else(|| value.to_string(), str::to_owned);
                    output::note(format_args!("  {key}: {value}"));
                }
            }
        }
    }
}

/// Runs a client command, reports any error, and says how it went.
pub async fn run(command: ClientCommand) -> ExitCode {
    match commands::dispatch(command).await {
        Ok(code) => code,
        Err(error) => {
            error.report();
            ExitCode::from(error.exit_code())
        }
    }
}
