//! The command line: argument parsing and the commands themselves.

pub mod client;
pub mod demo;
mod environment_serve;
mod plugin_try;
pub mod serve;
mod solution;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "gatehouse",
    version,
    about = "A deployment-pipeline host whose gates are WebAssembly components"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the host: the API, the engine and its plugins.
    Serve(serve::ServeArgs),
    /// Try Gatehouse: the host and three environments in one process, set up with a
    /// sample solution, a pipeline, the example plugins and demo users.
    Demo(demo::DemoArgs),
    #[command(flatten)]
    Client(client::ClientCommand),
    /// Work with plugin components.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
    /// Solution packages: pack a solution directory, push it to a development environment.
    Solution {
        #[command(subcommand)]
        command: solution::SolutionCommand,
    },
    /// Run an environment: a deployment source or target serving the Environment API.
    Environment {
        #[command(subcommand)]
        command: EnvironmentCommand,
    },
}

#[derive(Debug, Subcommand)]
enum EnvironmentCommand {
    /// Serve a standalone environment (`/env/v1`): its own database, packages and token.
    Serve(environment_serve::EnvironmentServeArgs),
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// Load a component, run it once against a deployment file, and print its answer,
    /// its log, its duration and the fuel it used.
    Try(plugin_try::TryArgs),
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Output {
    #[default]
    Text,
    Json,
}

impl Cli {
    pub async fn run(self) -> ExitCode {
        match self.command {
            Command::Client(command) => client::run(command).await,
            Command::Demo(args) => match demo::run(args).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("error: {err:#}");
                    ExitCode::from(2)
                }
            },
            Command::Serve(args) => match serve::run(args).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("error: {err:#}");
                    ExitCode::from(2)
                }
            },
            Command::Plugin {
                command: PluginCommand::Try(args),
            } => plugin_try::run(args).await,
            Command::Solution { command } => solution::run(command).await,
            Command::Environment {
                command: EnvironmentCommand::Serve(args),
            } => match environment_serve::run(args).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("error: {err:#}");
                    ExitCode::from(2)
                }
            },
        }
    }
}

/// Logs go to stderr, filtered by `GATEHOUSE_LOG`: `info` for the server, `warn` for
/// the one-shot commands, whose output is their result.
pub fn init_tracing(cli: &Cli) {
    let default = match cli.command {
        Command::Client(_) => "warn",
        Command::Serve(_) => "info",
        Command::Demo(_) => "info",
        Command::Plugin { .. } => "warn",
        Command::Solution { .. } => "warn",
        Command::Environment { .. } => "info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("GATEHOUSE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colours only for a person at a terminal, never in files or pipes.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}

/// Resolves at the first Ctrl-C or SIGTERM, for the commands that serve.
pub(crate) async fn stop_requested() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
