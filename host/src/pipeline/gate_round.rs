//! The gate round, the rule at the heart of the pre-deployment step, as pure functions:
//! which gate to ask next, what its answer means, who may vote, and what an admin's 20 or
//! 30 does. The worker does the I/O around them: it asks the plugins and saves the result.

use std::collections::BTreeMap;

use super::gate::{Decision, LogLine, Timestamp, Vote};
use super::model::{
    DeploymentRecord, DeploymentStatus, GateBinding, GateProgress, Grantee, Id,
    PreDeploymentOverride, PreDeploymentStatus, User,
};
use super::timeline::DeploymentEvent;

/// A plugin's answer to one evaluation, as the worker got it.
#[derive(Debug, Clone, PartialEq)]
pub struct GateAnswer {
    /// The decision, or why the plugin could not give one.
    pub result: Result<Decision, String>,
    pub log: Vec<LogLine>,
    pub duration_us: u64,
    pub fuel_used: u64,
}

/// What a round works from: the deployment's snapshot of bindings, its progress, and the
/// time. `plugin_names` names each bound plugin, for reasons people read.
#[derive(Debug, Clone, Copy)]
pub struct RoundInput<'a> {
    pub bindings: &'a [GateBinding],
    pub progress: &'a [GateProgress],
    pub plugin_names: &'a BTreeMap<Id, String>,
    /// The votes of the current attempt, handed to each gate asked.
    pub votes: &'a [Vote],
    pub now: Timestamp,
}

/// What the round needs next.
#[derive(Debug, Clone, PartialEq)]
pub enum RoundStep<'a> {
    /// Ask this binding's plugin, with these votes, and run the round again with its answer.
    Evaluate {
        binding: &'a GateBinding,
        votes: &'a [Vote],
    },
    /// The round is over.
    Done(RoundOutcome),
}

/// How the round left the pre-deployment step.
#[derive(Debug, Clone, PartialEq)]
pub struct RoundOutcome {
    /// Progress for every binding reached, in snapshot order.
    pub progress: Vec<GateProgress>,
    pub verdict: Verdict,
    /// The gate decisions of this round, in order.
    pub events: Vec<DeploymentEvent>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Every gate approved: the step completes (20).
    Approved,
    /// A gate rejected, failed or ran out of time: the step is rejected (30).
    Rejected { reason: String },
    /// A gate is pending. `recheck_at` is the earliest time something changes without a
    /// vote (a recheck the gate asked for, or an approval timeout); none waits for a vote.
    Waiting {
        reason: String,
        recheck_at: Option<Timestamp>,
        /// Set when this round's pending gate opens the wait for people.
        approval_started: Option<DeploymentEvent>,
    },
}

/// Runs the round as far as the answers given allow. The gates are asked in snapshot
/// order: an approval is final, and the round stops at the first gate that does not
/// approve. `answers` holds this round's answers by binding id.
pub fn run<'a>(input: RoundInput<'a>, answers: &BTreeMap<Id, GateAnswer>) -> RoundStep<'a> {
    let now = input.now;
    let approval_was_open = input
        .progress
        .iter()
        .any(|g| matches!(g.decision, Some(Decision::Pending { .. })));
    let mut progress: Vec<GateProgress> = Vec::with_capacity(input.bindings.len());
    let mut events = Vec::new();
    let mut wait_until: Option<Timestamp> = None;
    // Gates after the one the round stops at keep what they had.
    let done = |mut progress: Vec<GateProgress>, verdict, events| {
        for binding in &input.bindings[progress.len()..] {
            progress.extend(
                input
                    .progress
                    .iter()
                    .find(|g| g.binding_id == binding.id)
                    .cloned(),
            );
        }
        RoundStep::Done(RoundOutcome {
            progress,
            verdict,
            events,
        })
    };
    for (index, binding) in input.bindings.iter().enumerate() {
        let name = input
            .plugin_names
            .get(&binding.plugin_id)
            .cloned()
            .unwrap_or_else(|| binding.plugin_id.clone());
        let mut gate = input
            .progress
            .iter()
            .find(|g| g.binding_id == binding.id)
            .cloned()
            .unwrap_or_else(|| fresh(binding, &name));
        if gate.approved {
            progress.push(gate);
            continue;
        }
        let started_at = *gate.started_at.get_or_insert(now);
        if let Some(timeout) = binding.approval_timeout_seconds {
            let deadline = started_at + timeout * 1000;
            if now >= deadline {
                progress.push(gate);
                let reason = format!("gate {name} did not approve within {timeout} s");
                return done(progress, Verdict::Rejected { reason }, events);
            }
            wait_until = Some(deadline);
        }
        let Some(answer) = answers.get(&binding.id) else {
            return RoundStep::Evaluate {
                binding,
                votes: input.votes,
            };
        };
        gate.evaluations += 1;
        gate.evaluated_at = Some(now);
        gate.log = answer.log.clone();
        gate.duration_us = answer.duration_us;
        gate.fuel_used = answer.fuel_used;
        let decision = match &answer.result {
            Err(cause) => {
                gate.error = Some(cause.clone());
                gate.decision = None;
                progress.push(gate);
                let reason = format!("gate {name} failed, so the deployment is rejected: {cause}");
                return done(progress, Verdict::Rejected { reason }, events);
            }
            Ok(decision) => decision.clone(),
        };
        gate.error = None;
        events.push(DeploymentEvent::GateDecision {
            gate: index,
            binding: Some(binding.id.clone()),
            plugin: name.clone(),
            decision: decision.clone(),
        });
        let verdict = match &decision {
            Decision::Approve { .. } => {
                gate.approved = true;
                None
            }
            Decision::Reject { reason } => Some(Verdict::Rejected {
                reason: format!("gate {name} rejected: {reason}"),
            }),
            Decision::Pending {
                message,
                recheck_after_seconds,
                ..
            } => {
                if let Some(secs) = recheck_after_seconds {
                    let at = now + u64::from(*secs) * 1000;
                    wait_until = Some(wait_until.map_or(at, |w| w.min(at)));
                }
                Some(Verdict::Waiting {
                    reason: format!("waiting for gate {name}: {message}"),
                    recheck_at: wait_until,
                    approval_started: (!approval_was_open).then(|| {
                        DeploymentEvent::ApprovalStarted {
                            gate: index,
                            plugin: name.clone(),
                            message: message.clone(),
                        }
                    }),
                })
            }
        };
        gate.decision = Some(decision);
        progress.push(gate);
        if let Some(verdict) = verdict {
            return done(progress, verdict, events);
        }
    }
    done(progress, Verdict::Approved, events)
}

/// Progress of a gate not asked yet.
fn fresh(binding: &GateBinding, name: &str) -> GateProgress {
    GateProgress {
        binding_id: binding.id.clone(),
        plugin_id: binding.plugin_id.clone(),
        plugin_name: name.to_owned(),
        approved: false,
        decision: None,
        error: None,
        log: Vec::new(),
        started_at: None,
        evaluated_at: None,
        evaluations: 0,
        duration_us: 0,
        fuel_used: 0,
    }
}

/// Applies a round's outcome to the deployment; answers the timeline events it adds.
/// `Approved` leaves the deployment due now, to move on to deploying.
pub fn apply(
    d: &mut DeploymentRecord,
    outcome: RoundOutcome,
    now: Timestamp,
) -> Vec<DeploymentEvent> {
    let approval_was_open = approval_open(d);
    d.gates = outcome.progress;
    let mut events = outcome.events;
    match outcome.verdict {
        Verdict::Waiting {
            reason,
            recheck_at,
            approval_started,
        } => {
            events.extend(approval_started);
            d.status_reason = reason;
            d.next_run_at = recheck_at;
        }
        Verdict::Rejected { reason } => {
            if approval_was_open {
                events.push(DeploymentEvent::ApprovalCompleted {
                    approved: false,
                    canceled: None,
                    by_override: None,
                    reason: Some(reason.clone()),
                });
            }
            d.pre_deployment_status = Some(PreDeploymentStatus::Rejected);
            events.push(DeploymentEvent::PreDeploymentCompleted {
                status: PreDeploymentStatus::Rejected as u16,
                reason: Some(reason.clone()),
                by_override: None,
                comment: None,
            });
            events.push(finish(d, DeploymentStatus::Rejected, reason, now));
        }
        Verdict::Approved => {
            if approval_was_open {
                events.push(DeploymentEvent::ApprovalCompleted {
                    approved: true,
                    canceled: None,
                    by_override: None,
                    reason: None,
                });
            }
            d.pre_deployment_status = Some(PreDeploymentStatus::Completed);
            d.status_reason = "every gate approved".into();
            events.push(DeploymentEvent::PreDeploymentCompleted {
                status: PreDeploymentStatus::Completed as u16,
                reason: None,
                by_override: None,
                comment: None,
            });
            d.next_run_at = Some(now);
        }
    }
    events
}

/// Ends the deployment with `status`, and the event that says so.
pub fn finish(
    d: &mut DeploymentRecord,
    status: DeploymentStatus,
    reason: String,
    now: Timestamp,
) -> DeploymentEvent {
    d.status = status;
    d.status_reason = reason.clone();
    d.next_run_at = None;
    d.finished_at = Some(now);
    DeploymentEvent::DeploymentCompleted {
        status,
        reason: Some(reason),
    }
}

/// Whether a gate of the deployment's current attempt waits for approvers: between the
/// `approval_started` and `approval_completed` events.
pub fn approval_open(d: &DeploymentRecord) -> bool {
    d.status == DeploymentStatus::PendingApproval
        && d.gates
            .iter()
            .any(|g| matches!(g.decision, Some(Decision::Pending { .. })))
}

/// The votes that count in this attempt: those cast since it started.
pub fn counted_votes(votes: Vec<Vote>, attempt_started_at: Timestamp) -> Vec<Vote> {
    votes
        .into_iter()
        .filter(|v| v.at >= attempt_started_at)
        .collect()
}

/// Why a vote is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VoteRefusal {
    #[error("deployment is {0} and is not waiting for approval")]
    NotWaiting(DeploymentStatus),
    #[error("you requested this deployment; your own vote never counts")]
    OwnDeployment,
    #[error("you are not among the approvers the pending gate named")]
    NotAnApprover,
}

/// Whether `user`'s vote on `d` counts: the deployment waits for a gate, the user did not
/// request it, and the pending gate names them (`user:<id>` or one of their
/// `group:<name>`) or they are an admin.
pub fn may_vote(user: &User, d: &DeploymentRecord) -> Result<(), VoteRefusal> {
    if d.status != DeploymentStatus::PendingApproval
        || d.pre_deployment_status != Some(PreDeploymentStatus::Pending)
    {
        return Err(VoteRefusal::NotWaiting(d.status));
    }
    if d.requested_by == user.id {
        return Err(VoteRefusal::OwnDeployment);
    }
    if user.is_admin() || pending_gate_names(user, d) {
        return Ok(());
    }
    Err(VoteRefusal::NotAnApprover)
}

/// Whether the pending gate named the user (or one of their groups) as an approver.
pub fn pending_gate_names(user: &User, d: &DeploymentRecord) -> bool {
    d.gates
        .iter()
        .find(|g| !g.approved)
        .and_then(|g| match &g.decision {
            Some(Decision::Pending { approvers, .. }) => Some(approvers),
            _ => None,
        })
        .is_some_and(|approvers| {
            approvers
                .iter()
                .filter_map(|a| a.parse::<Grantee>().ok())
                .any(|g| user.matches(&g))
        })
}

/// Why an admin's 20 or 30 is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OverrideRefusal {
    #[error("status must be 20 (completed) or 30 (rejected)")]
    NotAnOutcome,
    #[error("deployment is {0} and its pre-deployment step is not pending")]
    NotPending(DeploymentStatus),
}

/// Completes (20) or rejects (30) a pending pre-deployment step from outside, whatever the
/// gates say; answers the timeline events. A 20 leaves the deployment due now, to deploy.
pub fn override_step(
    d: &mut DeploymentRecord,
    by: &User,
    status: PreDeploymentStatus,
    comment: &str,
    now: Timestamp,
) -> Result<Vec<DeploymentEvent>, OverrideRefusal> {
    if status == PreDeploymentStatus::Pending {
        return Err(OverrideRefusal::NotAnOutcome);
    }
    if d.status != DeploymentStatus::PendingApproval
        || d.pre_deployment_status != Some(PreDeploymentStatus::Pending)
    {
        return Err(OverrideRefusal::NotPending(d.status));
    }
    let mut events = Vec::new();
    if approval_open(d) {
        events.push(DeploymentEvent::ApprovalCompleted {
            approved: status == PreDeploymentStatus::Completed,
            canceled: None,
            by_override: Some(true),
            reason: None,
        });
    }
    d.pre_deployment_status = Some(status);
    d.pre_deployment_override = Some(PreDeploymentOverride {
        status,
        by: by.id.clone(),
        at: now,
        comment: comment.to_owned(),
    });
    events.push(DeploymentEvent::PreDeploymentCompleted {
        status: status as u16,
        reason: None,
        by_override: Some(true),
        comment: Some(comment.to_owned()),
    });
    if status == PreDeploymentStatus::Rejected {
        d.status = DeploymentStatus::Rejected;
        d.status_reason = format!("pre-deployment step rejected by {}", by.display_name);
        d.next_run_at = None;
        d.finished_at = Some(now);
        events.push(DeploymentEvent::DeploymentCompleted {
            status: DeploymentStatus::Rejected,
            reason: None,
        });
    } else {
        d.status_reason = format!("pre-deployment step completed by {}", by.display_name);
        d.next_run_at = Some(now);
    }
    Ok(events)
}

#[cfg(test)]
#[path = "gate_round_tests.rs"]
mod tests;
