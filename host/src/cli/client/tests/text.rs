//! The text for people: timeline lines, tables, a deployment in full, solutions.

use serde_json::json;

use super::{T0, event};
use crate::cli::client::render::{self, People, View};
use crate::cli::client::{solutions, timeline};

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
        event(
            12,
            "something_new",
            Some("u-admin"),
            json!({ "step_taken": "retried", "gone": null }),
        ),
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
    // Bob is no longer a user: he is shown by his id.
    let people: People = [
        ("u-maker", "Maker"),
        ("u-alice", "Alice"),
        ("u-admin", "Ada"),
    ]
    .into_iter()
    .map(|(id, name)| (id.to_owned(), name.to_owned()))
    .collect();
    let lines: Vec<String> = events
        .iter()
        .map(|e| timeline::timeline_line(e, &people))
        .collect();
    assert_eq!(
        lines,
        [
            "2026-03-01T22:00:01Z  requested                 contoso_app 1.0.0.0 to Prod by Maker",
            "2026-03-01T22:00:02Z  validation_completed      1 finding(s), 0 error(s)",
            "2026-03-01T22:00:03Z  pre_deployment_started    1 gate(s)",
            "2026-03-01T22:00:04Z  gate_decision             two-person-rule: pending: 0 of 2 approvals (approvers: group:release-managers)",
            "2026-03-01T22:00:05Z  vote                      approve by Alice: ship it",
            "2026-03-01T22:00:06Z  vote                      reject by u-bob",
            "2026-03-01T22:00:07Z  pre_deployment_completed  rejected (30): vetoed by u-bob",
            "2026-03-01T22:00:08Z  deployment_completed      rejected: vetoed by u-bob",
            "2026-03-01T22:00:09Z  pre_deployment_completed  completed (20), set by Ada: emergency",
            "2026-03-01T22:00:10Z  deployment_started        importing (operation d1-1)",
            "2026-03-01T22:00:11Z  scheduled                 for 2026-03-01T22:00:00Z by Maker",
            "2026-03-01T22:00:12Z  something_new             step taken retried, by Ada",
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
        "people": { "u-maker": "Mia Maker" },
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
        "requested       2026-03-01T22:00:00Z by Mia Maker",
        "settings        Key=(secret), sql→conn-1",
        "validation\n  solution-policy error publisher-prefix",
        "timeline\n  2026-03-01T22:00:00Z  requested                 fabrikam_tools 1.0.0.0 to QA by Mia Maker",
    ] {
        assert!(text.contains(wanted), "{wanted:?} in:\n{text}");
    }
    assert!(!text.contains("u-maker"), "people by name, not id:\n{text}");
}

#[test]
fn solutions_show_where_each_version_is_installed_by_whom_and_when() {
    let found: Vec<solutions::Solution> = serde_json::from_value(json!([
        { "name": "contoso_app", "installations": [
            { "version": "1.0.0.2", "environment_id": "e-qa", "environment_name": "QA",
              "current": true, "pipeline_id": "p", "stage_id": "s", "deployment_id": "d3",
              "requested_by": "u-maker", "requested_by_name": "Mia Maker", "installed_at": T0 + 2000 },
            { "version": "1.0.0.1", "environment_id": "e-qa", "environment_name": "QA",
              "current": false, "pipeline_id": "p", "stage_id": "s", "deployment_id": "d1",
              "requested_by": "u-maker", "requested_by_name": "Mia Maker", "installed_at": T0 },
        ] },
        { "name": "contoso_new", "installations": [] },
    ]))
    .expect("solutions");
    let backups = [("contoso_app".to_owned(), "1.0.0.1".to_owned())].into();
    assert_eq!(
        solutions::installations(&found, &backups),
        "SOLUTION     VERSION  ENVIRONMENT  STATE      BY         WHEN                  BACKUP\n\
         contoso_app  1.0.0.2  QA           installed  Mia Maker  2026-03-01T22:00:02Z  -\n\
         contoso_app  1.0.0.1  QA           replaced   Mia Maker  2026-03-01T22:00:00Z  stored\n\
         \n\
         Requested, but not installed anywhere yet: contoso_new"
    );
}
