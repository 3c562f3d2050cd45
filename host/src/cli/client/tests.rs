//! Unit tests of the client's pure parts: the saved login, server addresses, settings
//! flags, name-or-id resolution, problem documents, and the text it prints.

use std::ffi::OsString;

use clap::{CommandFactory, Parser};
use serde_json::{Value, json};

use super::config::{self, SavedLogin};
use super::http::{ServerProblem, normalize_server};
use super::render::{self, View};
use super::{CliError, deploy, resolve, timeline};
use crate::cli::Cli;
use crate::pipeline::model::TimelineEvent;

fn usage(result: Result<impl std::fmt::Debug, CliError>) -> String {
    match result {
        Err(CliError::Usage(message)) => message,
        other => panic!("expected a usage error, got {other:?}"),
    }
}

fn os(text: &str) -> Option<OsString> {
    Some(OsString::from(text))
}

// --- The saved login -------------------------------------------------------------------

#[test]
fn the_config_path_prefers_gatehouse_config_then_xdg_then_home() {
    let path = |g, x, h| config::path_from(g, x, h).map(|p| p.display().to_string());
    assert_eq!(
        path(os("/tmp/a.json"), os("/xdg"), os("/home/u")).as_deref(),
        Some("/tmp/a.json")
    );
    assert_eq!(
        path(None, os("/xdg"), os("/home/u")).as_deref(),
        Some("/xdg/gatehouse/cli.json")
    );
    assert_eq!(
        path(os(""), os("relative"), os("/home/u")).as_deref(),
        Some("/home/u/.config/gatehouse/cli.json"),
        "an empty GATEHOUSE_CONFIG and a relative XDG_CONFIG_HOME are ignored"
    );
    assert_eq!(path(None, None, None), None);
}

#[test]
fn the_login_round_trips_through_a_private_file() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("nested").join("gatehouse").join("cli.json");
    assert_eq!(config::load(&path).expect("no file is no login"), None);

    let saved = SavedLogin {
        server: "http://127.0.0.1:8080".into(),
        token: "ab".repeat(32),
    };
    config::save(&path, &saved).expect("saved");
    assert_eq!(config::load(&path).expect("read"), Some(saved.clone()));

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).expect("stat").permissions().mode();
        assert_eq!(mode(&path) & 0o777, 0o600, "only the owner reads the token");
        assert_eq!(mode(path.parent().expect("a folder")) & 0o777, 0o700);

        // A file left readable by others is replaced by a private one.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let again = SavedLogin {
            server: "https://gatehouse.example".into(),
            token: "cd".repeat(32),
        };
        config::save(&path, &again).expect("saved again");
        assert_eq!(mode(&path) & 0o777, 0o600);
        assert_eq!(config::load(&path).expect("read"), Some(again));
    }
    let leftovers: Vec<_> = std::fs::read_dir(path.parent().expect("a folder"))
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(leftovers, vec![OsString::from("cli.json")], "no temp files");

    assert!(config::remove(&path).expect("removed"));
    assert!(!config::remove(&path).expect("nothing to remove"));
    assert_eq!(config::load(&path).expect("gone"), None);

    std::fs::write(&path, "not json").expect("written");
    assert!(usage(config::load(&path)).contains("gatehouse login"));
}

#[test]
fn flags_override_the_saved_login_and_its_token_stays_with_its_server() {
    let saved = SavedLogin {
        server: "http://127.0.0.1:8080/".into(),
        token: "saved".into(),
    };
    let both = config::credentials(Some("http://other:9000"), Some("flag"), Some(&saved))
        .expect("flags alone suffice");
    assert_eq!(
        (both.server.as_str(), both.token.as_str()),
        ("http://other:9000", "flag")
    );
    let from_file = config::credentials(None, None, Some(&saved)).expect("the saved login");
    assert_eq!(
        (from_file.server.as_str(), from_file.token.as_str()),
        ("http://127.0.0.1:8080", "saved")
    );
    let same_server = config::credentials(Some("127.0.0.1:8080"), None, Some(&saved))
        .expect("the same server, written another way");
    assert_eq!(same_server.token, "saved");
    let token_only = config::credentials(None, Some("flag"), Some(&saved)).expect("token");
    assert_eq!(token_only.server, "http://127.0.0.1:8080");

    let elsewhere = usage(config::credentials(
        Some("http://other:9000"),
        None,
        Some(&saved),
    ));
    assert!(
        elsewhere.contains("saved login is for"),
        "the saved token is not sent to another server: {elsewhere}"
    );
    assert!(usage(config::credentials(None, None, None)).contains("gatehouse login"));
    assert!(usage(config::credentials(Some("http://x"), None, None)).contains("not logged in"));
}

#[test]
fn server_addresses_are_normalized() {
    for (given, wanted) in [
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("https://gh.example/", "https://gh.example"),
        ("http://localhost:8080/api/v1", "http://localhost:8080"),
        (
            " https://gh.example/base/api/v1/ ",
            "https://gh.example/base",
        ),
    ] {
        assert_eq!(normalize_server(given).expect(given), wanted, "{given}");
    }
    for bad in ["", "ftp://host", "http://host/?a=b", "http://"] {
        usage(normalize_server(bad));
    }
}

// --- Deployment settings and times -----------------------------------------------------

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn set_and_connection_make_the_api_settings() {
    let settings = deploy::settings(
        &strings(&[
            "ApiUrl=https://x.example/?a=b",
            "Empty=",
            " Spaced =kept as is ",
        ]),
        &strings(&["contoso_sql=conn-1", "contoso_mail=conn 2"]),
    )
    .expect("valid");
    assert_eq!(
        serde_json::to_value(&settings).expect("serializes"),
        json!({
            "environment_variables": [
                { "name": "ApiUrl", "value": "https://x.example/?a=b", "secret": false },
                { "name": "Empty", "value": "", "secret": false },
                { "name": "Spaced", "value": "kept as is ", "secret": false },
            ],
            "connection_references": { "contoso_mail": "conn 2", "contoso_sql": "conn-1" },
        })
    );
    let none = deploy::settings(&[], &[]).expect("none");
    assert_eq!(
        serde_json::to_value(&none).expect("serializes"),
        json!({ "environment_variables": [], "connection_references": {} })
    );
}

#[test]
fn bad_set_and_connection_flags_say_what_is_expected() {
    let cases: [(&[&str], &[&str], &str); 6] = [
        (&["NoEquals"], &[], "NAME=VALUE"),
        (&["=value"], &[], "needs a name"),
        (&["two words=x"], &[], "without spaces"),
        (&["A=1", "A=2"], &[], "twice"),
        (&[], &["ref="], "names no connection"),
        (&[], &["ref=a", "ref=b"], "twice"),
    ];
    for (set, connections, wanted) in cases {
        let message = usage(deploy::settings(&strings(set), &strings(connections)));
        assert!(
            message.contains(wanted),
            "{set:?} {connections:?}: {message}"
        );
    }
}

#[test]
fn at_takes_rfc_3339_in_any_offset_as_utc_milliseconds() {
    assert_eq!(
        deploy::parse_at("2026-03-01T22:00:00Z").expect("utc"),
        1_772_402_400_000
    );
    assert_eq!(
        deploy::parse_at("2026-03-01T23:00:00+01:00").expect("offset"),
        1_772_402_400_000
    );
    for bad in ["tomorrow", "2026-03-01 22:00", "1772402400000"] {
        assert!(usage(deploy::parse_at(bad)).contains("RFC 3339"), "{bad}");
    }
}

// --- Names or ids ----------------------------------------------------------------------

fn environments() -> Vec<Value> {
    vec![
        json!({ "id": "0190a000-0000-7000-8000-000000000001", "name": "dev", "environment_id": "contoso-dev" }),
        json!({ "id": "0190a000-0000-7000-8000-000000000002", "name": "Prod", "environment_id": "contoso-prod" }),
        json!({ "id": "0190a000-0000-7000-8000-000000000003", "name": "qa", "environment_id": "qa-1" }),
        json!({ "id": "0190a000-0000-7000-8000-000000000004", "name": "qa", "environment_id": "qa-2" }),
        // A name that is another record's id: the id wins.
        json!({ "id": "0190a000-0000-7000-8000-000000000005", "name": "0190a000-0000-7000-8000-000000000001", "environment_id": "odd" }),
    ]
}

#[test]
fn a_name_or_an_id_finds_one_record() {
    let items = environments();
    let find = |wanted: &str| {
        resolve::one("environment", &items, wanted, &["name", "environment_id"])
            .map(|v| v["id"].as_str().unwrap_or_default().to_owned())
    };
    assert_eq!(
        find("0190a000-0000-7000-8000-000000000002").expect("by id"),
        "0190a000-0000-7000-8000-000000000002"
    );
    assert_eq!(
        find("dev").expect("by name"),
        "0190a000-0000-7000-8000-000000000001"
    );
    assert_eq!(
        find("contoso-prod").expect("by environment id"),
        "0190a000-0000-7000-8000-000000000002"
    );
    assert_eq!(
        find("prod").expect("by name, ignoring case"),
        "0190a000-0000-7000-8000-000000000002"
    );
    assert_eq!(
        find("0190a000-0000-7000-8000-000000000001").expect("ids first"),
        "0190a000-0000-7000-8000-000000000001"
    );
    assert_eq!(
        find("qa-2").expect("a unique environment id settles it"),
        "0190a000-0000-7000-8000-000000000004"
    );

    let ambiguous = usage(find("qa"));
    assert!(
        ambiguous.contains("2 environments")
            && ambiguous.contains("0190a000-0000-7000-8000-000000000003")
            && ambiguous.contains("give the id"),
        "{ambiguous}"
    );
    let missing = usage(find("uat"));
    assert!(
        missing.contains("\"uat\"") && missing.contains("dev, Prod, qa"),
        "the error lists what exists: {missing}"
    );
    let none = usage(resolve::one("pipeline", &[], "Release", &["name"]));
    assert!(none.contains("no pipelines you can see"), "{none}");
    usage(find("  "));

    assert!(resolve::looks_like_id(
        "0190a000-0000-7000-8000-00000000000a"
    ));
    assert!(!resolve::looks_like_id("Release"));
    assert!(!resolve::looks_like_id(
        "0190a000-0000-7000-8000-00000000000g"
    ));
}

// --- Problems --------------------------------------------------------------------------

#[test]
fn problem_documents_keep_their_detail_and_extensions() {
    let body = json!({
        "type": "urn:gatehouse:problem:plugin-refused",
        "title": "The component was refused",
        "status": 422,
        "detail": "the component was refused: not a component",
        "runtime_message": "not a component",
    })
    .to_string();
    let problem = ServerProblem::from_answer("POST /api/v1/plugins".into(), 422, &body);
    assert_eq!(problem.title, "The component was refused");
    assert_eq!(problem.detail, "the component was refused: not a component");
    assert_eq!(
        problem.extensions.keys().collect::<Vec<_>>(),
        ["runtime_message"]
    );
    let error = CliError::Api(problem);
    assert_eq!(error.exit_code(), 1, "a refusal exits 1");

    let proxy =
        ServerProblem::from_answer("GET /api/v1/me".into(), 502, "<html>Bad Gateway</html>");
    assert_eq!(proxy.title, "Bad Gateway");
    assert_eq!(proxy.detail, "<html>Bad Gateway</html>");
    let empty = ServerProblem::from_answer("GET /api/v1/me".into(), 500, "");
    assert!(empty.detail.contains("no detail"), "{}", empty.detail);

    assert_eq!(CliError::Usage(String::new()).exit_code(), 2);
    assert_eq!(CliError::Connection(String::new()).exit_code(), 2);
}

// --- Text ------------------------------------------------------------------------------

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

#[test]
fn timeline_events_render_one_line_each() {
    let events = [
        event(
            1,
            "requested",
            Some("u-maker"),
            json!({ "solution": "contoso_app", "version": "1.0.0.0", "stage": "Prod" }),
        ),
        event(
            2,
            "validation_completed",
            None,
            json!({ "errors": 0, "findings": 1 }),
        ),
        event(3, "pre_deployment_started", None, json!({ "gates": 1 })),
        event(
            4,
            "gate_decision",
            None,
            json!({ "gate": 0, "plugin": "two-person-rule", "decision": {
            "decision": "pending", "message": "0 of 2 approvals", "approvers": ["group:release-managers"], "recheck_after_seconds": null,
        } }),
        ),
        event(
            5,
            "vote",
            Some("u-alice"),
            json!({ "approve": true, "comment": "ship it" }),
        ),
        event(
            6,
            "vote",
            Some("u-bob"),
            json!({ "approve": false, "comment": "" }),
        ),
        event(
            7,
            "pre_deployment_completed",
            None,
            json!({ "status": 30, "reason": "vetoed by u-bob" }),
        ),
        event(
            8,
            "deployment_completed",
            None,
            json!({ "status": "rejected", "reason": "vetoed by u-bob" }),
        ),
        event(
            9,
            "pre_deployment_completed",
            Some("u-admin"),
            json!({ "status": 20, "override": true, "comment": "emergency" }),
        ),
        event(
            10,
            "deployment_started",
            None,
            json!({ "operation": "d1-1" }),
        ),
        event(11, "scheduled", Some("u-maker"), json!({ "for": T0 })),
        event(12, "something_new", None, json!({ "x": 1 })),
        event(
            13,
            "artifact_retrieved",
            None,
            json!({ "exported": true, "from": "dev", "managed": { "sha256": "ab", "size": 510 } }),
        ),
        event(
            14,
            "import_started",
            None,
            json!({ "environment": "qa", "operation": "d1-1", "upload_ms": 0 }),
        ),
        event(
            15,
            "environment_retry",
            None,
            json!({ "step": "importing", "error": "timed out", "attempt": 1 }),
        ),
    ];
    let lines: Vec<String> = events.iter().map(timeline::timeline_line).collect();
    assert_eq!(
        lines,
        [
            "2026-03-01T22:00:01Z  requested                 contoso_app 1.0.0.0 to Prod by u-maker",
            "2026-03-01T22:00:02Z  validation_completed      1 finding(s), 0 error(s)",
            "2026-03-01T22:00:03Z  pre_deployment_started    1 gate(s)",
            "2026-03-01T22:00:04Z  gate_decision             two-person-rule: pending: 0 of 2 approvals (approvers: group:release-managers)",
            "2026-03-01T22:00:05Z  vote                      approve by u-alice: ship it",
            "2026-03-01T22:00:06Z  vote                      reject by u-bob",
            "2026-03-01T22:00:07Z  pre_deployment_completed  rejected (30): vetoed by u-bob",
            "2026-03-01T22:00:08Z  deployment_completed      rejected: vetoed by u-bob",
            "2026-03-01T22:00:09Z  pre_deployment_completed  completed (20), set by u-admin: emergency",
            "2026-03-01T22:00:10Z  deployment_started        importing (operation d1-1)",
            "2026-03-01T22:00:11Z  scheduled                 for 2026-03-01T22:00:00Z by u-maker",
            "2026-03-01T22:00:12Z  something_new             {\"x\":1}",
            "2026-03-01T22:00:13Z  artifact_retrieved        exported from dev (510 bytes managed)",
            "2026-03-01T22:00:14Z  import_started            into qa (operation d1-1)",
            "2026-03-01T22:00:15Z  environment_retry         importing: timed out (attempt 1)",
        ]
    );
    assert_eq!(
        timeline::line(
            T0,
            "waiting",
            "waiting for gate two-person-rule: 1 of 2 approvals"
        ),
        "2026-03-01T22:00:00Z  waiting                   waiting for gate two-person-rule: 1 of 2 approvals"
    );
}

#[test]
fn tables_align_their_columns() {
    let text = render::table(
        &["ID", "NAME", "NOTE"],
        &[
            vec!["1".into(), "a long name".into(), "x".into()],
            vec!["22".into(), "b".into(), String::new()],
        ],
    );
    assert_eq!(text, "ID  NAME         NOTE\n1   a long name  x\n22  b");
    assert_eq!(
        render::fields(&[
            ("id", "1".into()),
            ("skipped", String::new()),
            ("longer", "2".into())
        ]),
        "id      1\nlonger  2"
    );
    assert_eq!(render::time(0), "1970-01-01T00:00:00Z");
}

/// A deployment view as `GET /deployments/{id}` answers it, read and shown in full.
#[test]
fn a_failed_deployment_shows_its_findings() {
    let view = json!({
        "deployment": {
            "id": "d1", "pipeline_id": "p1", "stage_id": "s1", "source_environment_id": "e-dev",
            "target_environment_id": "e-qa", "solution_name": "fabrikam_tools", "version": "1.0.0.0",
            "requested_by": "u-maker", "requested_at": T0, "scheduled_for": null, "notes": "",
            "settings": { "environment_variables": [{ "name": "Key", "value": null, "secret": true }],
                          "connection_references": { "sql": "conn-1" } },
            "status": "failed", "status_reason": "validation found 1 error",
            "pre_deployment_status": null, "pre_deployment_override": null, "gates": [],
            "validation": [{ "plugin_id": "pl1", "plugin_name": "solution-policy", "findings": [{
                "severity": "error", "code": "publisher-prefix", "message": "fabrikam is not allowed",
                "component": null }], "error": null, "log": [], "duration_us": 10 }],
            "attempt": 1, "attempt_started_at": T0, "next_run_at": null, "idempotency_key": null,
            "installed_version": null,
            "artifact": { "name": "fabrikam_tools", "version": "1.0.0.0", "publisher_prefix": "fabrikam",
                          "components": [], "package_size": 1, "package_sha256": "00" },
            "created_at": T0, "updated_at": T0, "finished_at": T0 + 2000, "revision": 3,
        },
        "votes": [],
        "timeline": [{ "deployment_id": "d1", "seq": 1, "at": T0, "kind": "requested", "actor": "u-maker",
                       "detail": { "solution": "fabrikam_tools", "version": "1.0.0.0", "stage": "QA" } }],
    });
    let view: View = serde_json::from_value(view).expect("a deployment view");
    let findings = timeline::findings(&view.deployment);
    assert_eq!(
        findings,
        ["solution-policy error publisher-prefix: fabrikam is not allowed"]
    );
    let names = [("s1".to_owned(), "Release/QA".to_owned())].into();
    let text = timeline::deployment(&view, &names);
    for wanted in [
        "status          failed: validation found 1 error",
        "stage           Release/QA",
        "settings        Key=(secret), sql→conn-1",
        "validation\n  solution-policy error publisher-prefix",
        "timeline\n  2026-03-01T22:00:00Z  requested",
    ] {
        assert!(text.contains(wanted), "{wanted:?} in:\n{text}");
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
    ] {
        assert!(parses(bad).is_err(), "{bad:?} is refused");
    }
}
