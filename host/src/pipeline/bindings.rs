//! The identity of gate bindings: ids given once and kept, and the snapshot of a stage's
//! gates a deployment answers to from the moment its pre-deployment step starts.

use std::collections::HashSet;

use super::model::{
    DeploymentRecord, DeploymentStatus, GateBinding, PipelineRecord, PreDeploymentStatus,
    StageRecord, new_id,
};

/// Gives each gate about to be stored on stage `stage_id` of `pipeline` its id: a gate sent
/// back with the id it has on that stage keeps it; any other gate, new or copied, gets a
/// new one, so an id never names two gates of the pipeline.
pub fn assign_gate_ids(
    pipeline: &PipelineRecord,
    stage_id: Option<&str>,
    gates: &mut [GateBinding],
) {
    let existing: HashSet<&str> = stage_id
        .and_then(|id| pipeline.stage(id))
        .map(|stage| stage.gates.iter().map(|g| g.id.as_str()).collect())
        .unwrap_or_default();
    let mut kept: HashSet<String> = HashSet::new();
    for gate in gates {
        let keep =
            !gate.id.is_empty() && existing.contains(gate.id.as_str()) && !kept.contains(&gate.id);
        if !keep {
            gate.id = new_id();
        }
        kept.insert(gate.id.clone());
    }
}

/// Gives an id to every gate of a stored pipeline that has none, or shares one with
/// another gate; says whether anything changed. For pipelines stored before gates had ids.
pub fn give_missing_ids(pipeline: &mut PipelineRecord) -> bool {
    let mut seen: HashSet<String> = HashSet::new();
    let mut changed = false;
    for gate in pipeline.stages.iter_mut().flat_map(|s| s.gates.iter_mut()) {
        if gate.id.is_empty() || seen.contains(&gate.id) {
            gate.id = new_id();
            changed = true;
        }
        seen.insert(gate.id.clone());
    }
    changed
}

/// The bindings a deployment answers to: its stage's gates as they are now.
pub fn snapshot(stage: &StageRecord) -> Vec<GateBinding> {
    stage.gates.clone()
}

/// Gives a deployment stored before snapshots existed, and still in its pre-deployment
/// step, the snapshot of its stage as it is now, with its progress moved from positions
/// to binding ids; says whether anything changed.
pub fn snapshot_in_flight(d: &mut DeploymentRecord, stage: &StageRecord) -> bool {
    let in_flight = d.status == DeploymentStatus::PendingApproval
        && d.pre_deployment_status == Some(PreDeploymentStatus::Pending);
    if !in_flight || !d.gate_bindings.is_empty() {
        return false;
    }
    d.gate_bindings = snapshot(stage);
    for (progress, binding) in d.gates.iter_mut().zip(&d.gate_bindings) {
        if progress.binding_id.is_empty() {
            progress.binding_id = binding.id.clone();
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::model::{BindingMode, GateProgress};

    fn gate(id: &str, plugin: &str) -> GateBinding {
        GateBinding {
            id: id.into(),
            plugin_id: plugin.into(),
            config: Default::default(),
            approval_timeout_seconds: None,
            mode: BindingMode::Live,
        }
    }

    fn stage(id: &str, gates: Vec<GateBinding>) -> StageRecord {
        StageRecord {
            id: id.into(),
            name: id.into(),
            description: String::new(),
            previous_stage_id: None,
            target_environment_id: "qa".into(),
            pre_deployment_step_required: true,
            gates,
        }
    }

    fn pipeline(stages: Vec<StageRecord>) -> PipelineRecord {
        PipelineRecord {
            id: "p".into(),
            name: "p".into(),
            description: String::new(),
            development_environment_ids: vec!["dev".into()],
            stages,
            validators: Vec::new(),
            settings: Default::default(),
            shares: Vec::new(),
            created_at: 0,
            updated_at: 0,
            revision: 0,
        }
    }

    #[test]
    fn a_gate_sent_back_with_its_id_keeps_it_and_a_new_gate_gets_one() {
        let p = pipeline(vec![stage("prod", vec![gate("g-1", "two-person")])]);
        let mut sent = vec![gate("", "change-window"), gate("g-1", "two-person")];
        assign_gate_ids(&p, Some("prod"), &mut sent);
        assert_eq!(sent[1].id, "g-1", "a reordered gate keeps its id");
        assert!(!sent[0].id.is_empty() && sent[0].id != "g-1");
    }

    #[test]
    fn an_id_from_another_stage_or_sent_twice_is_replaced() {
        let p = pipeline(vec![
            stage("qa", vec![gate("g-qa", "two-person")]),
            stage("prod", vec![gate("g-prod", "two-person")]),
        ]);
        let mut sent = vec![
            gate("g-qa", "two-person"),
            gate("g-prod", "two-person"),
            gate("g-prod", "two-person"),
            gate("made-up", "two-person"),
        ];
        assign_gate_ids(&p, Some("prod"), &mut sent);
        let ids: HashSet<&str> = sent.iter().map(|g| g.id.as_str()).collect();
        assert_eq!(ids.len(), 4, "every gate has its own id: {sent:?}");
        assert!(!ids.contains("g-qa") && !ids.contains("made-up"));
        assert_eq!(sent[1].id, "g-prod");
    }

    #[test]
    fn a_new_stage_gets_new_ids_for_every_gate() {
        let p = pipeline(vec![stage("qa", vec![gate("g-qa", "two-person")])]);
        let mut sent = vec![gate("g-qa", "two-person")];
        assign_gate_ids(&p, None, &mut sent);
        assert_ne!(sent[0].id, "g-qa");
    }

    #[test]
    fn stored_gates_without_ids_get_unique_ones_once() {
        let mut p = pipeline(vec![
            stage("qa", vec![gate("", "a"), gate("", "b")]),
            stage("prod", vec![gate("kept", "a")]),
        ]);
        assert!(give_missing_ids(&mut p));
        let ids: HashSet<String> = p
            .stages
            .iter()
            .flat_map(|s| s.gates.iter().map(|g| g.id.clone()))
            .collect();
        assert_eq!(ids.len(), 3);
        assert!(ids.contains("kept"));
        assert!(!give_missing_ids(&mut p), "a second pass changes nothing");
    }

    fn progress(plugin: &str) -> GateProgress {
        GateProgress {
            binding_id: String::new(),
            plugin_id: plugin.into(),
            plugin_name: plugin.into(),
            approved: true,
            decision: None,
            error: None,
            log: Vec::new(),
            started_at: Some(1),
            evaluated_at: Some(1),
            evaluations: 1,
            duration_us: 0,
            fuel_used: 0,
        }
    }

    fn waiting_deployment() -> DeploymentRecord {
        let json = serde_json::json!({
            "id": "d", "pipeline_id": "p", "stage_id": "prod", "source_environment_id": "dev",
            "target_environment_id": "qa", "solution_name": "crm", "version": "1.0.0.0",
            "requested_by": "maker", "requested_at": 0, "scheduled_for": null, "notes": "",
            "settings": {}, "status": "pending_approval", "status_reason": "",
            "pre_deployment_status": 10, "pre_deployment_override": null, "gates": [],
            "validation": [], "attempt": 1, "next_run_at": null, "idempotency_key": null,
            "installed_version": null,
            "artifact": { "name": "crm", "version": "1.0.0.0", "publisher_prefix": "con",
                          "components": [], "package_size": 0, "package_sha256": "" },
            "created_at": 0, "updated_at": 0, "finished_at": null, "revision": 1,
        });
        serde_json::from_value(json).expect("a deployment stored before snapshots")
    }

    #[test]
    fn an_in_flight_deployment_gets_its_stage_as_snapshot_with_progress_by_id() {
        let mut d = waiting_deployment();
        d.gates = vec![progress("a")];
        let s = stage("prod", vec![gate("g-a", "a"), gate("g-b", "b")]);
        assert!(snapshot_in_flight(&mut d, &s));
        assert_eq!(d.gate_bindings, s.gates);
        assert_eq!(d.gates[0].binding_id, "g-a");
        assert!(d.gates[0].approved, "progress is kept");
        assert!(!snapshot_in_flight(&mut d, &s), "taken once");
    }

    #[test]
    fn a_finished_deployment_keeps_no_snapshot() {
        let mut d = waiting_deployment();
        d.status = DeploymentStatus::Succeeded;
        d.pre_deployment_status = Some(PreDeploymentStatus::Completed);
        assert!(!snapshot_in_flight(
            &mut d,
            &stage("prod", vec![gate("g", "a")])
        ));
        assert!(d.gate_bindings.is_empty());
    }
}
