"""The change-ticket gate's decision logic, free of any WebAssembly bindings.

`app.py` adapts this module to the `gatehouse:plugin` contract; keeping the logic here
lets `test_ticket.py` exercise it with plain `python3 -m unittest`.
"""

import re
from dataclasses import dataclass
from typing import Callable, Iterable, List, Optional, Sequence, Tuple, Union

NAME = "change-ticket"
VERSION = "0.1.0"
DESCRIPTION = (
    "Approves a deployment whose notes reference a change ticket such as CHG-1234; "
    "without one it rejects, or asks the configured approvers to vote."
)
CONFIG_KEYS = ["prefix", "approvers"]

_PREFIX_RE = re.compile(r"[A-Z][A-Z0-9]*")
_APPROVER_RE = re.compile(r"(user|group):(\S+)")


class ConfigError(Exception):
    """The binding's configuration is unusable; the text says how to fix it."""


@dataclass(frozen=True)
class Config:
    prefix: str
    # None when `approvers` is not set: a missing ticket then rejects.
    approvers: Optional[Tuple[str, ...]]


@dataclass(frozen=True)
class Voter:
    id: str
    display_name: str


@dataclass(frozen=True)
class Ballot:
    """The parts of a vote the gate reads."""

    voter: Voter
    approve: bool


@dataclass(frozen=True)
class Approve:
    reason: str


@dataclass(frozen=True)
class Reject:
    reason: str


@dataclass(frozen=True)
class Pending:
    message: str
    approvers: Tuple[str, ...]


Outcome = Union[Approve, Reject, Pending]


def parse_config(prefix: Optional[str], approvers: Optional[str]) -> Config:
    """Validates the two keys; raises ConfigError listing every problem found."""
    problems: List[str] = []

    value = (prefix or "").strip()
    if not value:
        problems.append(
            "`prefix` is required: set it to the change-ticket prefix, such as `CHG` "
            "for tickets like CHG-1234"
        )
    elif not _PREFIX_RE.fullmatch(value):
        problems.append(
            f"`prefix` is {prefix!r}: use an upper-case letter followed by upper-case "
            "letters or digits, such as `CHG`, without the hyphen or the number"
        )

    entries: Optional[Tuple[str, ...]] = None
    if approvers is not None:
        entries = tuple(e for e in re.split(r"[\s,]+", approvers) if e)
        if not entries:
            problems.append(
                "`approvers` is set but empty: list who may approve a deployment "
                "without a ticket, such as `group:change-board` or `user:alice`, "
                "separated by commas, or remove the key so that a missing ticket rejects"
            )
        for entry in entries:
            if not _APPROVER_RE.fullmatch(entry):
                problems.append(
                    f"`approvers` entry {entry!r} is not `user:<id>` or `group:<name>`: "
                    "write each entry as `user:<id>` or `group:<name>`, separated by "
                    "commas, such as `group:change-board, user:alice`"
                )

    if problems:
        raise ConfigError("; ".join(problems))
    return Config(prefix=value, approvers=entries)


def check_config(pairs: Sequence[Tuple[str, str]]) -> Config:
    """Checks the configuration an admin binds; raises ConfigError if it is unusable."""
    seen = {}
    problems: List[str] = []
    for key, value in pairs:
        if key not in CONFIG_KEYS:
            problems.append(
                f"unknown key {key!r}: this plugin reads only `prefix` and `approvers`; "
                "remove it or fix its spelling"
            )
        elif key in seen:
            problems.append(f"`{key}` is set more than once: keep a single value")
        else:
            seen[key] = value
    try:
        config = parse_config(seen.get("prefix"), seen.get("approvers"))
    except ConfigError as error:
        problems.append(str(error))
    if problems:
        raise ConfigError("; ".join(problems))
    return config


def find_tickets(prefix: str, notes: str) -> List[str]:
    """The distinct ticket ids `<prefix>-<digits>` in the notes, in order of appearance."""
    pattern = re.compile(
        r"(?<![A-Za-z0-9])" + re.escape(prefix) + r"-[0-9]+(?![A-Za-z0-9])"
    )
    found: List[str] = []
    for match in pattern.finditer(notes):
        if match.group(0) not in found:
            found.append(match.group(0))
    return found


def decide(
    config: Config,
    notes: str,
    votes: Iterable[Ballot],
    requester_id: Callable[[], str],
    log: Callable[[str], None] = lambda _line: None,
) -> Outcome:
    """The gate's decision.

    `requester_id` is called only when votes have to be counted, since reading the
    requester is a host call.
    """
    tickets = find_tickets(config.prefix, notes)
    if tickets:
        log(f"found change ticket {', '.join(tickets)} in the deployment notes")
        if len(tickets) == 1:
            return Approve(f"change ticket {tickets[0]} is referenced in the notes")
        return Approve(f"change tickets {', '.join(tickets)} are referenced in the notes")

    log(f"no change ticket like {config.prefix}-1234 in the deployment notes")
    example = f"{config.prefix}-1234"
    if config.approvers is None:
        return Reject(
            f"no change ticket is referenced: add the ticket id, such as {example}, "
            "to the deployment notes and request the deployment again"
        )

    # Votes arrive oldest first; the first one that counts decides, because an approval
    # is final and the host asks again after every vote.
    requester = None
    for vote in votes:
        if requester is None:
            requester = requester_id()
        if vote.voter.id == requester:
            continue
        if vote.approve:
            return Approve(f"approved without a ticket by {vote.voter.display_name}")
        return Reject(f"rejected without a ticket by {vote.voter.display_name}")

    return Pending(
        message=(
            f"No change ticket (such as {example}) is referenced in the deployment "
            f"notes: waiting for {', '.join(config.approvers)} to approve without one. "
            "The requester's own vote does not count."
        ),
        approvers=config.approvers,
    )
