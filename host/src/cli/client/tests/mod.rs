//! Unit tests of the client's pure parts: the saved login, server addresses, settings
//! flags, name-or-id resolution, problem documents, the server's words as flags, what a
//! vote says, and the text it prints.

mod login;
mod terms;
mod text;
mod votes;

use clap::{CommandFactory, Parser};
use serde_json::Value;

use super::CliError;
use crate::cli::Cli;
use crate::pipeline::model::TimelineEvent;

fn usage(result: Result<impl std::fmt::Debug, CliError>) -> String {
    match result {
        Err(CliError::Usage(message)) => message,
        other => panic!("expected a usage error, got {other:?}"),
    }
}

/// 2026-03-01T22:00:00Z.
const T0: u64 = 1_772_402_400_000;

fn event(seq: u32, kind: &str, actor: Option<&str>, detail: Value) -> TimelineEvent {
    TimelineEvent {
        deployment_id: "d1".into(),
        seq,
        at: T0 + u64::from(seq) * 1000,
        kind: kind.into(),
        actor: actor.map(str::to_owned),
        detail,
    }
}

// --- The command line ------------------------------------------------------------------

#[test]
fn the_command_line_is_well_formed() {
    Cli::command().debug_assert();
    let parses = |args: &[&str]| {
        let mut all = vec!["gatehouse"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all)
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    let ok = [
        &["login", "--server", "http://127.0.0.1:8080", "--token", "-"][..],
        &["logout"],
        &["me", "--output", "json"],
        &["environments", "list", "--limit", "5"],
        &["environments"],
        &["pipelines"],
        &["plugins"],
        &["deployments", "--output", "json"],
        &["solutions"],
        &[
            "solutions",
            "contoso_app",
            "--limit",
            "3",
            "--output",
            "json",
        ],
        &[
            "artifacts",
            "download",
            "contoso_app",
            "1.0.0.1",
            "--unmanaged",
            "-o",
            "backup.zip",
            "--force",
        ],
        &[
            "artifacts",
            "download",
            "contoso_app",
            "1.0.0.1",
            "--output",
            "json",
        ],
        &["environments", "--output", "json", "get", "dev"],
        &[
            "pipelines",
            "get",
            "Release",
            "--server",
            "http://x",
            "--token",
            "t",
        ],
        &[
            "plugins",
            "upload",
            "gate.wasm",
            "--name",
            "n",
            "--version",
            "0.1.0",
        ],
        &[
            "deployments",
            "list",
            "--pipeline",
            "Release",
            "--status",
            "failed,rejected",
            "--requester",
            "me",
        ],
        &["deployments", "wait", "d1"],
        &["deployments", "retry", "d1", "--wait"],
        &["approvals", "--output", "json"],
        &["approve", "d1", "--comment", "ship it"],
        &["reject", "d1", "-m", "not now"],
        &[
            "deploy",
            "--pipeline",
            "Release",
            "--stage",
            "Prod",
            "--solution",
            "contoso_app",
            "--source",
            "dev",
            "--version",
            "1.0.0.0",
            "--set",
            "A=1",
            "--set",
            "B=2",
            "--connection",
            "sql=conn",
            "--at",
            "2026-03-01T22:00:00Z",
            "--notes",
            "CHG-1",
            "--wait",
            "--idempotency-key",
            "k1",
            "--output",
            "json",
        ],
    ];
    for args in ok {
        parses(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
    }
    for bad in [
        &["deploy", "--pipeline", "P", "--stage", "S"][..],
        &["deployments", "list", "--limit", "0"],
        &["me", "--output", "yaml"],
        &["approve"],
        &["artifacts", "download", "contoso_app"],
        &["artifacts"],
    ] {
        assert!(parses(bad).is_err(), "{bad:?} is refused");
    }
}
