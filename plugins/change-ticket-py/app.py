"""The `change-ticket` approval gate for Gatehouse, as a componentize-py component.

Build from this directory with:

    componentize-py -d ../../wit -w approver componentize app \
        -o ../../target/plugins/change-ticket-py.wasm

The decision itself lives in `ticket.py`; this module only adapts it to the
`gatehouse:plugin@0.1.0` contract.
"""

from typing import List, Tuple

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import host, types

import ticket


class Plugin(exports.Plugin):
    def describe(self) -> types.PluginInfo:
        return types.PluginInfo(
            name=ticket.NAME,
            version=ticket.VERSION,
            description=ticket.DESCRIPTION,
            config_keys=list(ticket.CONFIG_KEYS),
        )

    def check_config(self, config: List[Tuple[str, str]]) -> None:
        try:
            ticket.check_config(config)
        except ticket.ConfigError as error:
            raise Err(str(error))


class Approval(exports.Approval):
    def evaluate(
        self, deployment: types.Deployment, votes: List[types.Vote]
    ) -> types.Decision:
        try:
            config = ticket.parse_config(host.config("prefix"), host.config("approvers"))
        except ticket.ConfigError as error:
            host.log(host.Level.ERROR, f"configuration is unusable: {error}")
            return types.Decision_Reject(
                f"the change-ticket gate is misconfigured, ask an admin to fix it: {error}"
            )

        outcome = ticket.decide(
            config,
            deployment.notes(),
            [
                ticket.Ballot(
                    voter=ticket.Voter(id=v.voter.id, display_name=v.voter.display_name),
                    approve=v.approve,
                )
                for v in votes
            ],
            requester_id=lambda: deployment.requested_by().id,
            log=lambda line: host.log(host.Level.INFO, line),
        )

        if isinstance(outcome, ticket.Approve):
            return types.Decision_Approve(outcome.reason)
        if isinstance(outcome, ticket.Reject):
            return types.Decision_Reject(outcome.reason)
        return types.Decision_Pending(
            types.Pending(
                message=outcome.message,
                approvers=list(outcome.approvers),
                recheck_after_seconds=None,
            )
        )
