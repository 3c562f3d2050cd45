//! Waits until enough distinct members of a group approve; any member's veto rejects. The
//! requester's own vote and votes from outside the group never count. See the README.

use std::collections::BTreeMap;

use gatehouse_plugin_sdk::prelude::*;

/// How many approvals from which group a deployment needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub group: String,
    pub required: u32,
}

impl Rule {
    /// Reads `group` (required) and `required` (default 2, at least 1).
    pub fn from_config(config: &Config) -> Result<Rule, ConfigError> {
        let group = config.require("group")?;
        let required = config.parse_or("required", 2_u32)?;
        if required == 0 {
            return Err(ConfigError::invalid(
                "required",
                "0",
                "a gate that needs no approvals approves everything; use 1 or more, or unbind the gate",
            ));
        }
        Ok(Rule { group, required })
    }

    /// Decides on the votes cast so far on a deployment requested by `requester_id`.
    pub fn decide(&self, requester_id: &str, votes: &[Vote]) -> Decision {
        let eligible = votes
            .iter()
            .filter(|vote| vote.voter_id() != requester_id && vote.voter.is_in_group(&self.group));

        // Keyed by user id: two people may share a display name.
        let mut approvers = BTreeMap::new();
        for vote in eligible {
            if !vote.approve {
                let reason = match vote.comment.trim() {
                    "" => String::new(),
                    comment => format!(": {comment}"),
                };
                return Decision::reject(format!("vetoed by {}{reason}", vote.voter.display_name));
            }
            approvers.insert(vote.voter_id(), vote.voter.display_name.as_str());
        }

        let count = approvers.len() as u32;
        if count >= self.required {
            let names: Vec<_> = approvers.into_values().collect();
            Decision::approve(format!("approved by {}", names.join(", ")))
        } else {
            Decision::pending(format!(
                "{count} of {} approvals from group {}",
                self.required, self.group
            ))
            .approvers([group(&self.group)])
        }
    }
}

struct TwoPersonRule;

impl Plugin for TwoPersonRule {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "two-person-rule",
            env!("CARGO_PKG_VERSION"),
            "Waits for approvals from a number of group members other than the requester; any member's veto rejects.",
        )
        .config_keys(["group", "required"])
    }

    fn check_config(config: &Config) -> Result<(), String> {
        Rule::from_config(config)?;
        Ok(())
    }
}

impl Approver for TwoPersonRule {
    fn evaluate(deployment: &Deployment, votes: &[Vote]) -> Decision {
        match Rule::from_config(&Config::binding()) {
            Ok(rule) => rule.decide(&deployment.requested_by().id, votes),
            Err(error) => Decision::reject(error.to_string()),
        }
    }
}

export_approver!(TwoPersonRule);

#[cfg(test)]
mod tests {
    use gatehouse_plugin_sdk::Principal;

    use super::*;

    const REQUESTER: &str = "u-maker";

    fn rule() -> Rule {
        Rule::from_config(&Config::from_pairs([("group", "release-managers")])).unwrap()
    }

    fn vote(id: &str, groups: &[&str], approve: bool) -> Vote {
        Vote {
            voter: Principal {
                id: id.to_owned(),
                display_name: format!("{id} (name)"),
                groups: groups.iter().map(|g| g.to_string()).collect(),
            },
            approve,
            comment: String::new(),
            at: 1_767_600_000_000,
        }
    }

    fn member(id: &str, approve: bool) -> Vote {
        vote(id, &["developers", "release-managers"], approve)
    }

    #[test]
    fn without_votes_it_waits_for_the_group() {
        assert_eq!(
            rule().decide(REQUESTER, &[]),
            Decision::pending("0 of 2 approvals from group release-managers")
                .approvers(["group:release-managers"])
        );
    }

    #[test]
    fn one_approval_is_one_of_two() {
        let decision = rule().decide(REQUESTER, &[member("alice", true)]);
        assert_eq!(
            decision.as_pending().unwrap().message,
            "1 of 2 approvals from group release-managers"
        );
    }

    #[test]
    fn two_distinct_members_approve() {
        let decision = rule().decide(REQUESTER, &[member("bob", true), member("alice", true)]);
        assert_eq!(
            decision,
            Decision::approve("approved by alice (name), bob (name)")
        );
    }

    #[test]
    fn members_with_the_same_display_name_count_separately() {
        let mut other_alice = member("alice-2", true);
        other_alice.voter.display_name = "alice (name)".to_owned();
        let decision = rule().decide(REQUESTER, &[member("alice", true), other_alice]);
        assert!(decision.is_approve());
    }

    #[test]
    fn the_same_member_twice_counts_once() {
        let decision = rule().decide(REQUESTER, &[member("alice", true), member("alice", true)]);
        assert!(decision.as_pending().unwrap().message.starts_with("1 of 2"));
    }

    #[test]
    fn the_requesters_own_vote_never_counts() {
        let decision = rule().decide(REQUESTER, &[member(REQUESTER, true), member("alice", true)]);
        assert!(decision.as_pending().unwrap().message.starts_with("1 of 2"));
        // Nor does the requester's veto.
        let decision = rule().decide(REQUESTER, &[member(REQUESTER, false)]);
        assert!(decision.as_pending().is_some());
    }

    #[test]
    fn votes_from_outside_the_group_do_not_count() {
        let outsider = vote("mallory", &["developers"], true);
        let decision = rule().decide(REQUESTER, &[outsider, member("alice", true)]);
        assert!(decision.as_pending().unwrap().message.starts_with("1 of 2"));
        let outsider_veto = vote("mallory", &["developers"], false);
        assert!(
            rule()
                .decide(REQUESTER, &[outsider_veto])
                .as_pending()
                .is_some()
        );
    }

    #[test]
    fn a_members_veto_rejects_even_after_enough_approvals() {
        let mut veto = member("carol", false);
        veto.comment = "  not during the audit ".to_owned();
        let decision = rule().decide(
            REQUESTER,
            &[member("alice", true), member("bob", true), veto],
        );
        assert_eq!(
            decision,
            Decision::reject("vetoed by carol (name): not during the audit")
        );
    }

    #[test]
    fn required_is_configurable() {
        let one =
            Rule::from_config(&Config::from_pairs([("group", "ops"), ("required", "1")])).unwrap();
        let decision = one.decide(REQUESTER, &[vote("dave", &["ops"], true)]);
        assert_eq!(decision, Decision::approve("approved by dave (name)"));
    }

    #[test]
    fn bad_configuration_is_refused() {
        let error = |pairs: &[(&str, &str)]| {
            Rule::from_config(&Config::from_pairs(pairs.iter().copied()))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            error(&[]),
            "config key `group` is not set; add it to the binding"
        );
        assert!(error(&[("group", "ops"), ("required", "0")]).contains("use 1 or more"));
        assert!(error(&[("group", "ops"), ("required", "two")]).contains("`two`"));
    }
}
