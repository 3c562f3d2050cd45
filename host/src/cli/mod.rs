//! The command line: argument parsing and the commands themselves.

mod plugin_try;
pub mod serve;

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
    /// Work with plugin components.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
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
        }
    }
}

/// Logs go to stderr, filtered by `GATEHOUSE_LOG`: `info` for the server, `warn` for
/// the one-shot commands, whose output is their result.
pub fn init_tracing(cli: &Cli) {
    let default = match cli.command {
        Command::Serve(_) => "info",
        Command::Plugin { .. } => "warn",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("GATEHOUSE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
