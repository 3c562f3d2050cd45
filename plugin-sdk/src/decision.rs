//! Builders for what an approval gate answers.

use crate::bindings::types::{Decision, Pending, Principal, Vote};

impl Decision {
    /// The deployment may go ahead. Final for this gate in this deployment.
    pub fn approve(reason: impl Into<String>) -> Decision {
        Decision::Approve(reason.into())
    }

    /// The deployment is rejected; `reason` is shown to the requester.
    pub fn reject(reason: impl Into<String>) -> Decision {
        Decision::Reject(reason.into())
    }

    /// Not decided yet; `message` is shown to the requester and the approvers, such as
    /// `1 of 2 approvals`. Name who may vote with [`Decision::approvers`] and when to ask
    /// again without a vote with [`Decision::recheck_after`].
    pub fn pending(message: impl Into<String>) -> Decision {
        Decision::Pending(Pending {
            message: message.into(),
            approvers: Vec::new(),
            recheck_after_seconds: None,
        })
    }

    /// Sets who may vote on a pending decision: entries made with [`user`] or [`group`].
    /// Does nothing to an approval or a rejection, which nobody votes on.
    pub fn approvers<I>(mut self, approvers: I) -> Decision
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        if let Decision::Pending(pending) = &mut self {
            pending.approvers = approvers.into_iter().map(Into::into).collect();
        }
        self
    }

    /// Asks the host to evaluate a pending decision again after `seconds` even if nobody
    /// votes, such as when a time window opens. Does nothing to an approval or a rejection,
    /// which are final.
    pub fn recheck_after(mut self, seconds: u32) -> Decision {
        if let Decision::Pending(pending) = &mut self {
            pending.recheck_after_seconds = Some(seconds);
        }
        self
    }

    /// Whether this is an approval.
    pub fn is_approve(&self) -> bool {
        matches!(self, Decision::Approve(_))
    }

    /// Whether this is a rejection.
    pub fn is_reject(&self) -> bool {
        matches!(self, Decision::Reject(_))
    }

    /// The pending details, when the decision is pending.
    pub fn as_pending(&self) -> Option<&Pending> {
        match self {
            Decision::Pending(pending) => Some(pending),
            _ => None,
        }
    }
}

/// An approver entry naming one user: `user:<id>`.
pub fn user(id: &str) -> String {
    format!("user:{id}")
}

/// An approver entry naming a group: `group:<name>`.
pub fn group(name: &str) -> String {
    format!("group:{name}")
}

impl Principal {
    /// Whether the user belongs to the group with this name.
    pub fn is_in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
}

impl Vote {
    /// The voter's user id.
    pub fn voter_id(&self) -> &str {
        &self.voter.id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_builder_sets_approvers_and_recheck() {
        let decision = Decision::pending("1 of 2 approvals")
            .approvers([group("release-managers"), user("alice")])
            .recheck_after(60);
        assert_eq!(
            decision,
            Decision::Pending(Pending {
                message: "1 of 2 approvals".into(),
                approvers: vec!["group:release-managers".into(), "user:alice".into()],
                recheck_after_seconds: Some(60),
            })
        );
    }

    #[test]
    fn final_decisions_ignore_pending_settings() {
        let decision = Decision::approve("ok")
            .approvers(["user:bob"])
            .recheck_after(5);
        assert_eq!(decision, Decision::Approve("ok".into()));
    }
}
