//! `approve` and `reject`: the vote, then the state of the pre-deployment step once the
//! engine has weighed it.
//!
//! The server records a vote and answers at once; the engine runs the gates' round right
//! after. The deployment in that answer is from before the round, so it would say
//! "0 of 2 approvals" after the first approval, and "1 of 2" after the last. This waits,
//! briefly, for the round that follows the vote, and tells its outcome instead.

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::commands::{connect, emit, environment_names, typed};
use super::http::Api;
use super::render::View;
use super::timeline::reason;
use super::{CliError, VoteArgs};
use crate::cli::Output;
use crate::pipeline::model::{DeploymentRecord, DeploymentStatus, PreDeploymentStatus};

/// How long the command waits for the round after the vote. A round takes milliseconds;
/// this leaves room for a busy server, and past it the command says that the gate is
/// still re-evaluating rather than show the state from before the vote.
const EVALUATED_WITHIN: Duration = Duration::from_secs(10);

/// How often it looks meanwhile.
const POLL: Duration = Duration::from_millis(200);

/// How long a vote waits for a deployment that was just requested, and is still queued
/// or validating, to reach its approval step: an approver who runs `approve` right after
/// the maker's `deploy` should not be told to try again.
const REACHES_APPROVAL_WITHIN: Duration = Duration::from_secs(30);

pub async fn vote(args: VoteArgs, approve: bool) -> Result<ExitCode, CliError> {
    let api = connect(&args.global)?;
    let id = args.id.trim();
    let me = api.get("/me").await?;
    let voter = me["id"].as_str().unwrap_or_default().to_owned();
    until_past_the_early_steps(&api, id).await;
    let body = json!({ "approve": approve, "comment": args.comment });
    let recorded = api
        .post(&format!("/deployments/{id}/votes"), Some(&body))
        .await?;
    let d: DeploymentRecord = typed(&recorded, "deployment")?;
    // A step without gates has no round to wait for: an admin or a system completes it.
    let weighed = if d.gate_bindings.is_empty() {
        None
    } else {
        after_the_round(&api, &d.id, &voter).await
    };
    let names = match (&weighed, args.global.output) {
        (Some(_), Output::Text) => environment_names(&api).await,
        _ => HashMap::new(),
    };
    let shown = weighed
        .as_ref()
        .map_or(&recorded, |(value, _)| &value["deployment"]);
    emit(args.global.output, shown, || {
        Ok(said(
            approve,
            &d,
            weighed.as_ref().map(|(_, view)| view),
            &names,
        ))
    })
}

/// Waits, up to [`REACHES_APPROVAL_WITHIN`], while the deployment is queued or
/// validating, so that a vote cast right after the request meets the approval step. The
/// server judges the vote either way: this only spares a needless refusal.
async fn until_past_the_early_steps(api: &Api, id: &str) {
    let deadline = Instant::now() + REACHES_APPROVAL_WITHIN;
    let mut said = false;
    loop {
        let Ok(value) = api.get(&format!("/deployments/{id}")).await else {
            return;
        };
        let Ok(d) = typed::<DeploymentRecord>(&value["deployment"], "deployment") else {
            return;
        };
        let early = matches!(
            d.status,
            DeploymentStatus::Queued | DeploymentStatus::Validating
        );
        if !early || Instant::now() + POLL > deadline {
            return;
        }
        if !said {
            eprintln!(
                "Deployment {id} is {}; waiting for it to reach its approval step...",
                d.status
            );
            said = true;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The deployment once a round has run after `voter`'s latest vote; `None` when none has
/// within [`EVALUATED_WITHIN`], or the server stopped answering.
async fn after_the_round(api: &Api, id: &str, voter: &str) -> Option<(Value, View)> {
    let deadline = Instant::now() + EVALUATED_WITHIN;
    loop {
        let value = api.get(&format!("/deployments/{id}")).await.ok()?;
        let view: View = typed(&value, "deployment").ok()?;
        if weighed(&view, voter) {
            return Some((value, view));
        }
        if Instant::now() + POLL > deadline {
            return None;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Whether the engine has weighed `voter`'s latest vote: the deployment no longer waits
/// for approval, or something other than a vote happened after it (a round writes each
/// gate it asks, and every way the step ends).
pub fn weighed(view: &View, voter: &str) -> bool {
    if view.deployment.status != DeploymentStatus::PendingApproval {
        return true;
    }
    let Some(vote) = view
        .timeline
        .iter()
        .rev()
        .find(|e| e.kind == "vote" && e.actor.as_deref() == Some(voter))
    else {
        return false;
    };
    view.timeline
        .iter()
        .any(|e| e.seq > vote.seq && e.kind != "vote")
}

/// What the vote did, in a sentence: the step's state after the round, or that the round
/// has not run yet. `names` maps environment ids to names.
pub fn said(
    approve: bool,
    recorded: &DeploymentRecord,
    after: Option<&View>,
    names: &HashMap<String, String>,
) -> String {
    let verb = if approve { "Approved" } else { "Rejected" };
    let id = &recorded.id;
    let Some(view) = after else {
        if recorded.gate_bindings.is_empty() {
            return format!(
                "{verb} deployment {id}: your vote is recorded. Its pre-deployment step has no \
                 gates: it waits for an admin or an external system to complete (20) or \
                 reject (30) it."
            );
        }
        return format!(
            "{verb} deployment {id}: your vote is recorded; the gate is re-evaluating. See how \
             it went with `gatehouse deployments get {id}`."
        );
    };
    let d = &view.deployment;
    let why = reason(&d.status_reason, names);
    let target = names
        .get(&d.target_environment_id)
        .cloned()
        .unwrap_or_else(|| d.target_environment_id.clone());
    let approved = d.pre_deployment_status == Some(PreDeploymentStatus::Completed);
    let step = if approved {
        "every gate approved, and "
    } else {
        ""
    };
    let state = match d.status {
        DeploymentStatus::Succeeded => format!(
            "it succeeded: {} {} is installed in {target}",
            d.solution_name, d.version
        ),
        DeploymentStatus::Deploying => format!(
            "it is deploying {} {} to {target}. Follow it with `gatehouse deployments wait {id}`",
            d.solution_name, d.version
        ),
        DeploymentStatus::PendingApproval if !why.is_empty() => {
            format!("it is pending_approval, {why}")
        }
        status if !why.is_empty() => format!("it is {status}: {why}"),
        status => format!("it is {status}"),
    };
    format!("{verb} deployment {id}; {step}{state}.")
}
