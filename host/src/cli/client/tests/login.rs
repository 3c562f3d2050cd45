//! The saved login, server addresses, deployment settings and times, names or ids, and
//! problem documents.

use std::ffi::OsString;

use serde_json::{Value, json};

use super::usage;
use crate::cli::client::CliError;
use crate::cli::client::config::{self, SavedLogin};
use crate::cli::client::http::{ServerProblem, normalize_server};
use crate::cli::client::{deploy, resolve};

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
