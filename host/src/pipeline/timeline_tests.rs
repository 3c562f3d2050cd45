//! The timeline's public shape, pinned: what `GET /events` and webhooks show for each of the
//! seven lifecycle events, and that rows stored by earlier versions still load.

use serde_json::json;

use super::*;
use crate::pipeline::events::event_name;

/// The kind and detail `event` is stored and published with.
fn parts(event: DeploymentEvent) -> (String, serde_json::Value) {
    event.to_parts()
}

#[test]
fn deployment_requested_keeps_its_name_and_fields() {
    let (kind, detail) = parts(DeploymentEvent::Requested {
        solution: "contoso_app".into(),
        version: "1.0.0.0".into(),
        stage: "Prod".into(),
    });
    assert_eq!(event_name(&kind), Some("deployment_requested"));
    assert_eq!(
        detail,
        json!({ "solution": "contoso_app", "version": "1.0.0.0", "stage": "Prod" })
    );
}

#[test]
fn approval_started_keeps_its_name_and_fields() {
    let (kind, detail) = parts(DeploymentEvent::ApprovalStarted {
        gate: 0,
        plugin: "two-person-rule".into(),
        message: "0 of 2 approvals".into(),
    });
    assert_eq!(event_name(&kind), Some("approval_started"));
    assert_eq!(
        detail,
        json!({ "gate": 0, "plugin": "two-person-rule", "message": "0 of 2 approvals" })
    );
}

#[test]
fn approval_completed_keeps_its_name_and_each_shape() {
    let completed = |approved, canceled, by_override, reason: Option<&str>| {
        parts(DeploymentEvent::ApprovalCompleted {
            approved,
            canceled,
            by_override,
            reason: reason.map(str::to_owned),
        })
    };
    let (kind, approved) = completed(true, None, None, None);
    assert_eq!(event_name(&kind), Some("approval_completed"));
    assert_eq!(approved, json!({ "approved": true }));
    assert_eq!(
        completed(false, Some(true), None, None).1,
        json!({ "approved": false, "canceled": true })
    );
    assert_eq!(
        completed(true, None, Some(true), None).1,
        json!({ "approved": true, "override": true })
    );
    assert_eq!(
        completed(false, None, None, Some("gate x rejected: no")).1,
        json!({ "approved": false, "reason": "gate x rejected: no" })
    );
}

#[test]
fn pre_deployment_started_keeps_its_name_and_fields() {
    let (kind, detail) = parts(DeploymentEvent::PreDeploymentStarted { gates: 2 });
    assert_eq!(event_name(&kind), Some("pre_deployment_started"));
    assert_eq!(detail, json!({ "gates": 2 }));
}

#[test]
fn pre_deployment_completed_keeps_its_name_and_each_shape() {
    let (kind, completed) = parts(DeploymentEvent::PreDeploymentCompleted {
        status: 20,
        reason: None,
        by_override: None,
        comment: None,
    });
    assert_eq!(event_name(&kind), Some("pre_deployment_completed"));
    assert_eq!(completed, json!({ "status": 20 }));
    let (_, rejected) = parts(DeploymentEvent::PreDeploymentCompleted {
        status: 30,
        reason: Some("gate x did not approve within 60 s".into()),
        by_override: None,
        comment: None,
    });
    assert_eq!(
        rejected,
        json!({ "status": 30, "reason": "gate x did not approve within 60 s" })
    );
    let (_, set) = parts(DeploymentEvent::PreDeploymentCompleted {
        status: 30,
        reason: None,
        by_override: Some(true),
        comment: Some("freeze".into()),
    });
    assert_eq!(
        set,
        json!({ "status": 30, "override": true, "comment": "freeze" })
    );
}

#[test]
fn deployment_started_keeps_its_name_and_fields() {
    let (kind, detail) = parts(DeploymentEvent::DeploymentStarted {
        operation: "d1-1".into(),
    });
    assert_eq!(event_name(&kind), Some("deployment_started"));
    assert_eq!(detail, json!({ "operation": "d1-1" }));
}

#[test]
fn deployment_completed_keeps_its_name_and_fields() {
    let (kind, detail) = parts(DeploymentEvent::DeploymentCompleted {
        status: DeploymentStatus::Canceled,
        reason: Some("canceled by Maker".into()),
    });
    assert_eq!(event_name(&kind), Some("deployment_completed"));
    assert_eq!(
        detail,
        json!({ "status": "canceled", "reason": "canceled by Maker" })
    );
    let (_, by_override) = parts(DeploymentEvent::DeploymentCompleted {
        status: DeploymentStatus::Rejected,
        reason: None,
    });
    assert_eq!(by_override, json!({ "status": "rejected" }));
}

fn row(kind: &str, actor: Option<&str>, detail: serde_json::Value) -> TimelineEvent {
    TimelineEvent {
        deployment_id: "d1".into(),
        seq: 1,
        at: 1_772_402_400_000,
        kind: kind.into(),
        actor: actor.map(str::to_owned),
        detail,
    }
}

#[test]
fn rows_stored_before_typed_events_load_as_the_same_event() {
    // Today's shape, as stored: a gate decision without a binding id.
    let stored = row(
        "gate_decision",
        None,
        json!({ "gate": 0, "plugin": "two-person-rule", "decision": {
            "decision": "pending", "message": "1 of 2 approvals",
            "approvers": ["group:prod-approvers"], "recheck_after_seconds": null } }),
    );
    assert_eq!(
        stored.event(),
        DeploymentEvent::GateDecision {
            gate: 0,
            binding: None,
            plugin: "two-person-rule".into(),
            decision: Decision::Pending {
                message: "1 of 2 approvals".into(),
                approvers: vec!["group:prod-approvers".into()],
                recheck_after_seconds: None,
            },
        }
    );
    // Written back, it is the row it was.
    assert_eq!(
        stored.event().to_parts(),
        (stored.kind.clone(), stored.detail.clone())
    );
    let canceled = row("canceled", Some("u-maker"), json!({}));
    assert_eq!(canceled.event(), DeploymentEvent::Canceled {});
}

#[test]
fn a_kind_this_version_does_not_know_is_kept_as_it_is() {
    let stored = row("something_new", None, json!({ "x": 1 }));
    let event = stored.event();
    assert_eq!(
        event,
        DeploymentEvent::Other {
            kind: "something_new".into(),
            detail: json!({ "x": 1 }),
        }
    );
    assert_eq!(
        event.to_parts(),
        ("something_new".into(), json!({ "x": 1 }))
    );
    // A known kind with a detail it cannot read is kept too, not lost.
    let odd = row("vote", None, json!({ "approve": "maybe" }));
    assert!(matches!(odd.event(), DeploymentEvent::Other { .. }));
}

#[test]
fn events_read_as_sentences_not_json() {
    let waiting = row(
        "gate_decision",
        None,
        json!({ "gate": 0, "plugin": "two-person-rule", "decision": {
            "decision": "pending", "message": "1 of 2 approvals",
            "approvers": ["group:prod-approvers"], "recheck_after_seconds": 60 } }),
    );
    assert_eq!(
        waiting.sentence(),
        "two-person-rule: pending: 1 of 2 approvals (approvers: group:prod-approvers) (rechecked in 60 s)"
    );
    let started = row(
        "approval_started",
        None,
        json!({ "gate": 0, "plugin": "two-person-rule", "message": "0 of 2 approvals" }),
    );
    assert_eq!(
        started.sentence(),
        "gate two-person-rule waits for approvers: 0 of 2 approvals"
    );
    let canceled = row(
        "approval_completed",
        Some("u-maker"),
        json!({ "approved": false, "canceled": true }),
    );
    assert_eq!(canceled.sentence(), "not approved, canceled by u-maker");
    let vote = row(
        "vote",
        Some("u-alice"),
        json!({ "approve": true, "comment": "ship it" }),
    );
    assert_eq!(vote.sentence(), "approve by u-alice: ship it");
    let moved = row("rescheduled", Some("u-maker"), json!({ "for": null }));
    assert_eq!(moved.sentence(), "as soon as possible by u-maker");
}
