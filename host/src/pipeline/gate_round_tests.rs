//! The gate round's rules, one behaviour a user would notice per test.

use super::*;
use crate::pipeline::gate::Principal;
use crate::pipeline::model::{BindingMode, Role};

const NOW: Timestamp = 1_700_000_000_000;

fn binding(id: &str, plugin: &str) -> GateBinding {
    GateBinding {
        id: id.into(),
        plugin_id: plugin.into(),
        config: Default::default(),
        approval_timeout_seconds: None,
        mode: BindingMode::Live,
    }
}

fn names() -> BTreeMap<Id, String> {
    [
        ("p-a".to_owned(), "two-person-rule".to_owned()),
        ("p-b".to_owned(), "change-window".to_owned()),
        ("p-c".to_owned(), "ticket-check".to_owned()),
    ]
    .into()
}

fn answer(decision: Decision) -> GateAnswer {
    GateAnswer {
        result: Ok(decision),
        log: Vec::new(),
        duration_us: 7,
        fuel_used: 11,
    }
}

fn approve() -> GateAnswer {
    answer(Decision::Approve {
        reason: "fine".into(),
    })
}

fn pending(message: &str, recheck: Option<u32>) -> GateAnswer {
    answer(Decision::Pending {
        message: message.into(),
        approvers: vec!["group:prod-approvers".into()],
        recheck_after_seconds: recheck,
    })
}

/// Runs a round to its end, answering each gate asked from `script` by binding id, and
/// says which bindings were asked.
fn play(
    bindings: &[GateBinding],
    progress: &[GateProgress],
    now: Timestamp,
    script: &BTreeMap<Id, GateAnswer>,
) -> (RoundOutcome, Vec<Id>) {
    let plugin_names = names();
    let input = RoundInput {
        bindings,
        progress,
        plugin_names: &plugin_names,
        votes: &[],
        now,
    };
    let mut answers = BTreeMap::new();
    let mut asked = Vec::new();
    loop {
        match run(input, &answers) {
            RoundStep::Evaluate { binding, .. } => {
                asked.push(binding.id.clone());
                let given = script
                    .get(&binding.id)
                    .cloned()
                    .expect("the script answers every gate asked");
                answers.insert(binding.id.clone(), given);
            }
            RoundStep::Done(outcome) => return (outcome, asked),
        }
    }
}

fn script(entries: Vec<(&str, GateAnswer)>) -> BTreeMap<Id, GateAnswer> {
    entries
        .into_iter()
        .map(|(id, a)| (id.to_owned(), a))
        .collect()
}

fn three() -> Vec<GateBinding> {
    vec![
        binding("a", "p-a"),
        binding("b", "p-b"),
        binding("c", "p-c"),
    ]
}

#[test]
fn the_round_stops_at_the_first_reject() {
    let (outcome, asked) = play(
        &three(),
        &[],
        NOW,
        &script(vec![
            ("a", approve()),
            (
                "b",
                answer(Decision::Reject {
                    reason: "outside the change window".into(),
                }),
            ),
            ("c", approve()),
        ]),
    );
    assert_eq!(asked, ["a", "b"], "the third gate is never asked");
    assert_eq!(
        outcome.verdict,
        Verdict::Rejected {
            reason: "gate change-window rejected: outside the change window".into()
        }
    );
    assert_eq!(outcome.events.len(), 2, "one gate decision per gate asked");
}

#[test]
fn the_round_stops_at_the_first_pending() {
    let (outcome, asked) = play(
        &three(),
        &[],
        NOW,
        &script(vec![
            ("a", pending("1 of 2 approvals", None)),
            ("b", approve()),
        ]),
    );
    assert_eq!(asked, ["a"]);
    match outcome.verdict {
        Verdict::Waiting {
            reason,
            recheck_at,
            approval_started,
        } => {
            assert_eq!(reason, "waiting for gate two-person-rule: 1 of 2 approvals");
            assert_eq!(recheck_at, None, "only a vote wakes it");
            assert!(approval_started.is_some(), "the wait for people opens");
        }
        other => panic!("expected a wait, got {other:?}"),
    }
    assert_eq!(outcome.progress.len(), 1);
    assert_eq!(outcome.progress[0].binding_id, "a");
}

#[test]
fn an_approval_is_final_and_not_asked_again() {
    let bindings = three();
    let (first, _) = play(
        &bindings,
        &[],
        NOW,
        &script(vec![
            ("a", approve()),
            ("b", pending("after 18:00", Some(60))),
        ]),
    );
    let (second, asked) = play(
        &bindings,
        &first.progress,
        NOW + 60_000,
        &script(vec![("b", approve()), ("c", approve())]),
    );
    assert_eq!(asked, ["b", "c"], "the approved gate is skipped");
    assert_eq!(second.verdict, Verdict::Approved);
    assert_eq!(second.progress[0].evaluations, 1);
    assert!(second.progress.iter().all(|g| g.approved));
}

#[test]
fn a_gate_that_does_not_approve_in_time_rejects_without_being_asked() {
    let mut bindings = three();
    bindings[0].approval_timeout_seconds = Some(3600);
    let (first, _) = play(
        &bindings,
        &[],
        NOW,
        &script(vec![("a", pending("0 of 2 approvals", None))]),
    );
    match &first.verdict {
        Verdict::Waiting { recheck_at, .. } => {
            assert_eq!(
                *recheck_at,
                Some(NOW + 3_600_000),
                "looks again at the deadline"
            )
        }
        other => panic!("expected a wait, got {other:?}"),
    }
    let (late, asked) = play(
        &bindings,
        &first.progress,
        NOW + 3_600_000,
        &BTreeMap::new(),
    );
    assert!(asked.is_empty());
    assert_eq!(
        late.verdict,
        Verdict::Rejected {
            reason: "gate two-person-rule did not approve within 3600 s".into()
        }
    );
}

#[test]
fn a_plugin_error_fails_closed_naming_the_plugin_and_the_cause() {
    let failed = GateAnswer {
        result: Err("the plugin ran out of fuel".into()),
        log: Vec::new(),
        duration_us: 1,
        fuel_used: 1_000_000,
    };
    let (outcome, asked) = play(&three(), &[], NOW, &script(vec![("a", failed)]));
    assert_eq!(asked, ["a"]);
    assert_eq!(
        outcome.verdict,
        Verdict::Rejected {
            reason: "gate two-person-rule failed, so the deployment is rejected: the plugin ran out of fuel"
                .into()
        }
    );
    let gate = &outcome.progress[0];
    assert_eq!(gate.error.as_deref(), Some("the plugin ran out of fuel"));
    assert!(!gate.approved && gate.decision.is_none());
    assert!(outcome.events.is_empty(), "no decision was made");
}

#[test]
fn the_earliest_recheck_time_wins() {
    let mut bindings = three();
    bindings[0].approval_timeout_seconds = Some(600);
    let (soon, _) = play(
        &bindings,
        &[],
        NOW,
        &script(vec![("a", pending("waiting for the ticket", Some(30)))]),
    );
    assert!(
        matches!(soon.verdict, Verdict::Waiting { recheck_at: Some(at), .. } if at == NOW + 30_000)
    );
    let (late, _) = play(
        &bindings,
        &[],
        NOW,
        &script(vec![("a", pending("waiting for the ticket", Some(3600)))]),
    );
    assert!(
        matches!(late.verdict, Verdict::Waiting { recheck_at: Some(at), .. } if at == NOW + 600_000),
        "the approval deadline comes before the asked recheck: {:?}",
        late.verdict
    );
}

#[test]
fn progress_follows_the_binding_id_not_the_position() {
    let bindings = three();
    let (first, _) = play(
        &bindings,
        &[],
        NOW,
        &script(vec![("a", approve()), ("b", pending("1 of 2", None))]),
    );
    // The same snapshot, in another order: the approval stays with gate "a".
    let reordered = vec![
        bindings[1].clone(),
        bindings[0].clone(),
        bindings[2].clone(),
    ];
    let (again, asked) = play(
        &reordered,
        &first.progress,
        NOW + 1,
        &script(vec![("b", pending("1 of 2", None))]),
    );
    assert_eq!(asked, ["b"]);
    assert_eq!(again.progress[0].binding_id, "b");
    assert_eq!(again.progress[1].binding_id, "a");
    assert!(again.progress[1].approved);
}

#[test]
fn a_wait_already_open_is_not_opened_again() {
    let bindings = three();
    let (first, _) = play(
        &bindings,
        &[],
        NOW,
        &script(vec![("a", pending("0 of 2", None))]),
    );
    let (second, _) = play(
        &bindings,
        &first.progress,
        NOW + 1,
        &script(vec![("a", pending("1 of 2", None))]),
    );
    assert!(matches!(
        second.verdict,
        Verdict::Waiting {
            approval_started: None,
            ..
        }
    ));
}

fn user(id: &str, role: Role, groups: &[&str]) -> User {
    User {
        id: id.into(),
        name: id.into(),
        display_name: id.to_uppercase(),
        role,
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        created_at: 0,
    }
}

/// A deployment requested by `maker`, waiting for a gate that names `approvers`.
fn waiting_for(approvers: &[&str]) -> DeploymentRecord {
    let json = serde_json::json!({
        "id": "d", "pipeline_id": "p", "stage_id": "prod", "source_environment_id": "dev",
        "target_environment_id": "qa", "solution_name": "crm", "version": "1.0.0.0",
        "requested_by": "maker", "requested_at": 0, "scheduled_for": null, "notes": "",
        "settings": {}, "status": "pending_approval", "status_reason": "",
        "pre_deployment_status": 10, "pre_deployment_override": null,
        "gate_bindings": [{ "id": "a", "plugin_id": "p-a" }],
        "gates": [{
            "binding_id": "a", "plugin_id": "p-a", "plugin_name": "two-person-rule",
            "approved": false, "error": null, "log": [], "started_at": 1, "evaluated_at": 1,
            "evaluations": 1, "duration_us": 0, "fuel_used": 0,
            "decision": { "decision": "pending", "message": "0 of 2", "approvers": approvers,
                          "recheck_after_seconds": null },
        }],
        "validation": [], "attempt": 1, "next_run_at": null, "idempotency_key": null,
        "installed_version": null,
        "artifact": { "name": "crm", "version": "1.0.0.0", "publisher_prefix": "con",
                      "components": [], "package_size": 0, "package_sha256": "" },
        "created_at": 0, "updated_at": 0, "finished_at": null, "revision": 1,
    });
    serde_json::from_value(json).expect("a waiting deployment")
}

#[test]
fn a_vote_counts_only_from_an_approver_the_pending_gate_names() {
    let d = waiting_for(&["group:prod-approvers", "user:carol"]);
    let in_group = user("alice", Role::User, &["prod-approvers"]);
    let named = user("carol", Role::User, &[]);
    let outsider = user("bob", Role::User, &["qa-approvers"]);
    let admin = user("root", Role::Admin, &[]);
    assert_eq!(may_vote(&in_group, &d), Ok(()));
    assert_eq!(may_vote(&named, &d), Ok(()));
    assert_eq!(may_vote(&admin, &d), Ok(()), "an admin may always vote");
    assert_eq!(may_vote(&outsider, &d), Err(VoteRefusal::NotAnApprover));
}

#[test]
fn the_requesters_own_vote_never_counts_even_as_an_approver_or_admin() {
    let d = waiting_for(&["user:maker"]);
    let maker = user("maker", Role::Admin, &[]);
    assert_eq!(may_vote(&maker, &d), Err(VoteRefusal::OwnDeployment));
}

#[test]
fn no_vote_is_taken_once_the_step_is_over() {
    let mut d = waiting_for(&["user:carol"]);
    d.pre_deployment_status = Some(PreDeploymentStatus::Completed);
    assert_eq!(
        may_vote(&user("carol", Role::User, &[]), &d),
        Err(VoteRefusal::NotWaiting(DeploymentStatus::PendingApproval))
    );
}

#[test]
fn votes_of_an_earlier_attempt_do_not_count() {
    let vote = |at| Vote {
        voter: Principal {
            id: "carol".into(),
            display_name: "Carol".into(),
            groups: Vec::new(),
        },
        approve: true,
        comment: String::new(),
        at,
    };
    let counted = counted_votes(vec![vote(5), vote(10), vote(15)], 10);
    assert_eq!(counted.iter().map(|v| v.at).collect::<Vec<_>>(), [10, 15]);
}

#[test]
fn a_20_completes_the_step_and_lets_the_deployment_go_on() {
    let mut d = waiting_for(&["user:carol"]);
    let admin = user("root", Role::Admin, &[]);
    let events = override_step(
        &mut d,
        &admin,
        PreDeploymentStatus::Completed,
        "emergency",
        NOW,
    )
    .expect("a pending step takes a 20");
    assert_eq!(
        d.pre_deployment_status,
        Some(PreDeploymentStatus::Completed)
    );
    assert_eq!(
        d.status,
        DeploymentStatus::PendingApproval,
        "it deploys next"
    );
    assert_eq!(d.next_run_at, Some(NOW));
    assert_eq!(d.status_reason, "pre-deployment step completed by ROOT");
    let kinds: Vec<String> = events.iter().map(|e| e.to_parts().0).collect();
    assert_eq!(kinds, ["approval_completed", "pre_deployment_completed"]);
    let override_ = d.pre_deployment_override.expect("the override is recorded");
    assert_eq!(
        (override_.by.as_str(), override_.comment.as_str()),
        ("root", "emergency")
    );
}

#[test]
fn a_30_rejects_the_deployment() {
    let mut d = waiting_for(&["user:carol"]);
    let admin = user("root", Role::Admin, &[]);
    let events = override_step(&mut d, &admin, PreDeploymentStatus::Rejected, "", NOW)
        .expect("a pending step takes a 30");
    assert_eq!(d.status, DeploymentStatus::Rejected);
    assert_eq!(d.finished_at, Some(NOW));
    assert_eq!(d.next_run_at, None);
    let kinds: Vec<String> = events.iter().map(|e| e.to_parts().0).collect();
    assert_eq!(
        kinds,
        [
            "approval_completed",
            "pre_deployment_completed",
            "deployment_completed"
        ]
    );
    assert_eq!(
        override_step(&mut d, &admin, PreDeploymentStatus::Completed, "", NOW),
        Err(OverrideRefusal::NotPending(DeploymentStatus::Rejected)),
        "a step ends once"
    );
    assert_eq!(
        override_step(
            &mut waiting_for(&[]),
            &admin,
            PreDeploymentStatus::Pending,
            "",
            NOW
        ),
        Err(OverrideRefusal::NotAnOutcome)
    );
}

#[test]
fn applying_a_rejection_closes_the_wait_and_ends_the_deployment() {
    let mut d = waiting_for(&["user:carol"]);
    let outcome = RoundOutcome {
        progress: d.gates.clone(),
        verdict: Verdict::Rejected {
            reason: "gate two-person-rule rejected: vetoed".into(),
        },
        events: Vec::new(),
    };
    let events = apply(&mut d, outcome, NOW);
    let kinds: Vec<String> = events.iter().map(|e| e.to_parts().0).collect();
    assert_eq!(
        kinds,
        [
            "approval_completed",
            "pre_deployment_completed",
            "deployment_completed"
        ]
    );
    assert_eq!(d.status, DeploymentStatus::Rejected);
    assert_eq!(d.pre_deployment_status, Some(PreDeploymentStatus::Rejected));
    assert_eq!(d.status_reason, "gate two-person-rule rejected: vetoed");
}

#[test]
fn applying_an_approval_completes_the_step_with_20() {
    let mut d = waiting_for(&["user:carol"]);
    let outcome = RoundOutcome {
        progress: Vec::new(),
        verdict: Verdict::Approved,
        events: Vec::new(),
    };
    let events = apply(&mut d, outcome, NOW);
    assert_eq!(
        d.pre_deployment_status,
        Some(PreDeploymentStatus::Completed)
    );
    assert_eq!(d.next_run_at, Some(NOW));
    assert_eq!(
        events.last().map(|e| e.to_parts()),
        Some((
            "pre_deployment_completed".to_owned(),
            serde_json::json!({ "status": 20 })
        ))
    );
}
