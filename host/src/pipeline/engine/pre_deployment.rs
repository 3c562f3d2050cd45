//! `pending_approval`: the gates of the pre-deployment step, then the move to deploying.

use std::collections::BTreeMap;

use super::worker::Round;
use super::*;

impl Engine {
    /// `pending_approval`: a round of the gates, in order, or the move to deploying once
    /// the step is complete.
    pub(super) async fn pre_deployment(
        &self,
        mut d: DeploymentRecord,
        round: &mut Round,
    ) -> Result<DeploymentRecord, StoreError> {
        let (_, view) = self.round_context(&d, round).await?;
        if d.pre_deployment_status == Some(PreDeploymentStatus::Pending)
            && !d.gate_bindings.is_empty()
        {
            let now = now_ms();
            if d.next_run_at.is_some_and(|at| at > now) {
                return Ok(d);
            }
            let votes = gate_round::counted_votes(self.gate_votes(&d).await?, d.attempt_started_at);
            let mut plugin_names = BTreeMap::new();
            for binding in &d.gate_bindings {
                if !plugin_names.contains_key(&binding.plugin_id) {
                    let name = self.plugin_name(&binding.plugin_id).await;
                    plugin_names.insert(binding.plugin_id.clone(), name);
                }
            }
            // The round decides; this loop only asks the plugins it names.
            let mut answers = BTreeMap::new();
            let outcome = loop {
                let input = gate_round::RoundInput {
                    bindings: &d.gate_bindings,
                    progress: &d.gates,
                    plugin_names: &plugin_names,
                    votes: &votes,
                    now,
                };
                match gate_round::run(input, &answers) {
                    gate_round::RoundStep::Evaluate { binding, votes } => {
                        let outcome = self
                            .gates
                            .evaluate(
                                &binding.plugin_id,
                                view.clone(),
                                votes,
                                &binding.config,
                                now,
                            )
                            .await;
                        let answer = gate_round::GateAnswer {
                            result: outcome.result,
                            log: outcome.log,
                            duration_us: outcome.duration_us,
                            fuel_used: outcome.fuel_used,
                        };
                        answers.insert(binding.id.clone(), answer);
                    }
                    gate_round::RoundStep::Done(outcome) => break outcome,
                }
            };
            let approved = outcome.verdict == gate_round::Verdict::Approved;
            let events: Vec<TimelineEvent> = gate_round::apply(&mut d, outcome, now_ms())
                .into_iter()
                .map(|e| event(&d, e, None))
                .collect();
            if !approved {
                self.save_round(&mut d, round, events).await?;
                return Ok(d);
            }
            // Saved with the move to deploying, or with the wait for the target.
            round.defer(events);
        }
        if d.pre_deployment_status == Some(PreDeploymentStatus::Pending) {
            // A step without gates waits for an admin or an external system.
            return Ok(d);
        }
        self.start_deploying(d, round).await
    }

    /// The deployment's votes, with their voters; the store keeps only counted votes.
    async fn gate_votes(&self, d: &DeploymentRecord) -> Result<Vec<gate::Vote>, StoreError> {
        let votes = self.store.votes(&d.id).await?;
        let mut out = Vec::with_capacity(votes.len());
        for v in votes {
            let voter = self.store.get_user(&v.voter_id).await?;
            out.push(gate::Vote {
                voter: gate::Principal {
                    id: voter.id,
                    display_name: voter.display_name,
                    groups: voter.groups,
                },
                approve: v.approve,
                comment: v.comment,
                at: v.at,
            });
        }
        Ok(out)
    }

    /// The deployment moved to `deploying`, and the event that says so.
    pub(super) fn deploying(d: &DeploymentRecord) -> (DeploymentRecord, TimelineEvent) {
        let mut next = d.clone();
        next.status = DeploymentStatus::Deploying;
        next.status_reason = String::new();
        next.next_run_at = Some(now_ms());
        next.updated_at = now_ms();
        let started = DeploymentEvent::DeploymentStarted {
            operation: next.operation_id(),
        };
        let started = event(&next, started, None);
        (next, started)
    }

    /// What a deployment handed a free target becomes: `deploying`, when its
    /// pre-deployment step is done, as [`Self::start_deploying`] would make it.
    pub(super) fn start_on_hand_over(
        d: &DeploymentRecord,
    ) -> Option<(DeploymentRecord, Vec<TimelineEvent>)> {
        let step_done = d.pre_deployment_status != Some(PreDeploymentStatus::Pending);
        (d.status == DeploymentStatus::PendingApproval && step_done).then(|| {
            let (next, started) = Self::deploying(d);
            (next, vec![started])
        })
    }

    /// Takes the target if no other deployment is deploying to it; otherwise waits.
    async fn start_deploying(
        &self,
        d: DeploymentRecord,
        round: &mut Round,
    ) -> Result<DeploymentRecord, StoreError> {
        let (mut next, started) = Self::deploying(&d);
        let mut events = round.unsaved.clone();
        events.push(started);
        // If the target is busy, the deployment waits, saved in the same write when it
        // has something to save: the first wait, or steps deferred in this advance. The
        // deployment that holds the target hands it over when it finishes; the timer is
        // only a backstop.
        let wait = format!(
            "waiting for another deployment to {} to finish",
            d.target_environment_id
        );
        let mut waiting = d.clone();
        waiting.status_reason = wait.clone();
        waiting.next_run_at = Some(now_ms() + BUSY_TARGET_RECHECK.as_millis() as u64);
        waiting.updated_at = now_ms();
        let save_wait =
            round.dirty || d.status_reason != wait || d.next_run_at.is_none_or(|at| at <= now_ms());
        let otherwise = save_wait.then_some((&waiting, round.unsaved.as_slice()));
        match self
            .store
            .save_deployment_if_target_free(&next, &events, otherwise)
            .await?
        {
            TargetClaim::Taken(revision) => {
                round.unsaved.clear();
                round.dirty = false;
                next.revision = revision;
                Ok(next)
            }
            TargetClaim::Busy(saved) => {
                round.target_busy = true;
                if let Some(revision) = saved {
                    round.unsaved.clear();
                    round.dirty = false;
                    waiting.revision = revision;
                    return Ok(waiting);
                }
                Ok(d)
            }
        }
    }
}
