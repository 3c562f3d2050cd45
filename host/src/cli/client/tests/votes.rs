//! What `approve` and `reject` wait for, and what they say.

use serde_json::{Value, json};

use super::{T0, event};
use crate::cli::client::render::View;
use crate::cli::client::vote;
use crate::pipeline::model::TimelineEvent;

/// A deployment waiting in Prod for the two-person rule, as `GET /deployments/{id}` shows
/// it, with the timeline `events` and the changes `deployment` makes.
fn waiting_view(events: Vec<TimelineEvent>, deployment: Value) -> View {
    let mut d = json!({
        "id": "d1", "pipeline_id": "p1", "stage_id": "s1", "source_environment_id": "e-qa",
        "target_environment_id": "e-prod", "solution_name": "contoso_app", "version": "1.0.0.1",
        "requested_by": "u-maker", "requested_at": T0, "scheduled_for": null, "notes": "",
        "settings": { "environment_variables": [], "connection_references": {} },
        "status": "pending_approval",
        "status_reason": "waiting for gate two-person-rule: 0 of 2 approvals from group g",
        "pre_deployment_status": 10, "pre_deployment_override": null,
        "gate_bindings": [{ "id": "b1", "plugin_id": "pl1", "config": {} }], "gates": [],
        "validation": [], "attempt": 1, "attempt_started_at": T0, "next_run_at": null,
        "idempotency_key": null, "installed_version": null,
        "artifact": { "name": "contoso_app", "version": "1.0.0.1", "publisher_prefix": "contoso",
                      "components": [], "package_size": 1, "package_sha256": "00" },
        "created_at": T0, "updated_at": T0, "finished_at": null, "revision": 3,
    });
    for (key, value) in deployment.as_object().expect("changes") {
        d[key] = value.clone();
    }
    serde_json::from_value(json!({ "deployment": d, "votes": [], "timeline": events }))
        .expect("a deployment view")
}

fn gate_decision(seq: u32, message: &str) -> TimelineEvent {
    event(
        seq,
        "gate_decision",
        None,
        json!({ "gate": 0, "plugin": "two-person-rule", "decision": {
            "decision": "pending", "message": message, "approvers": [], "recheck_after_seconds": null } }),
    )
}

#[test]
fn a_vote_counts_as_weighed_once_a_round_ran_after_it() {
    let vote = |seq, who: &str| event(seq, "vote", Some(who), json!({ "approve": true }));
    let before = vec![gate_decision(1, "0 of 2 approvals"), vote(2, "u-alice")];
    let view = waiting_view(before.clone(), json!({}));
    assert!(!vote::weighed(&view, "u-alice"), "only the vote so far");
    // Bob's vote after Alice's is not a round.
    let mut with_bob = before.clone();
    with_bob.push(vote(3, "u-bob"));
    assert!(!vote::weighed(
        &waiting_view(with_bob.clone(), json!({})),
        "u-alice"
    ));
    with_bob.push(gate_decision(4, "2 of 2 approvals"));
    assert!(vote::weighed(
        &waiting_view(with_bob.clone(), json!({})),
        "u-alice"
    ));
    assert!(vote::weighed(&waiting_view(with_bob, json!({})), "u-bob"));
    // A round before the vote does not count; a deployment that no longer waits does.
    let mut again = before.clone();
    again.push(gate_decision(3, "1 of 2 approvals"));
    again.push(vote(4, "u-alice"));
    assert!(!vote::weighed(
        &waiting_view(again.clone(), json!({})),
        "u-alice"
    ));
    assert!(vote::weighed(
        &waiting_view(again, json!({ "status": "deploying" })),
        "u-alice"
    ));
}

#[test]
fn a_vote_says_the_state_after_its_round() {
    let names = [("e-prod".to_owned(), "Production".to_owned())].into();
    let recorded = waiting_view(Vec::new(), json!({})).deployment;
    let said = |changes: Value| {
        vote::said(
            true,
            &recorded,
            Some(&waiting_view(Vec::new(), changes)),
            &names,
        )
    };
    assert_eq!(
        said(
            json!({ "status_reason": "waiting for gate two-person-rule: 1 of 2 approvals from group g" })
        ),
        "Approved deployment d1; it is pending_approval, waiting for gate two-person-rule: 1 of \
         2 approvals from group g."
    );
    assert_eq!(
        said(json!({ "status": "deploying", "status_reason": "", "pre_deployment_status": 20 })),
        "Approved deployment d1; every gate approved, and it is deploying contoso_app 1.0.0.1 to \
         Production. Follow it with `gatehouse deployments wait d1`."
    );
    assert_eq!(
        said(json!({ "status": "succeeded", "status_reason": "", "pre_deployment_status": 20 })),
        "Approved deployment d1; every gate approved, and it succeeded: contoso_app 1.0.0.1 is \
         installed in Production."
    );
    assert_eq!(
        said(json!({
            "pre_deployment_status": 20,
            "status_reason": "waiting for another deployment to e-prod to finish",
        })),
        "Approved deployment d1; every gate approved, and it is pending_approval, waiting for \
         another deployment to Production to finish."
    );
    assert_eq!(
        vote::said(
            false,
            &recorded,
            Some(&waiting_view(
                Vec::new(),
                json!({ "status": "rejected", "status_reason": "gate two-person-rule rejected: no", "pre_deployment_status": 30 }),
            )),
            &names
        ),
        "Rejected deployment d1; it is rejected: gate two-person-rule rejected: no."
    );
    assert_eq!(
        vote::said(true, &recorded, None, &names),
        "Approved deployment d1: your vote is recorded; the gate is re-evaluating. See how it \
         went with `gatehouse deployments get d1`."
    );
}
