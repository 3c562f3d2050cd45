"""Unit tests for the change-ticket decision logic: `python3 -m unittest` from this folder."""

import unittest

import ticket
from ticket import Approve, Ballot, Config, ConfigError, Pending, Reject, Voter

ALICE = Voter(id="alice", display_name="Alice Ames")
BOB = Voter(id="bob", display_name="Bob Brown")
REQUESTER = Voter(id="rita", display_name="Rita Requester")


def decide(notes, votes=(), approvers=("group:change-board",), prefix="CHG"):
    lines = []
    calls = []

    def requester_id():
        calls.append(1)
        return REQUESTER.id

    outcome = ticket.decide(
        Config(prefix=prefix, approvers=approvers),
        notes,
        list(votes),
        requester_id,
        lines.append,
    )
    return outcome, lines, calls


class FindTicketsTest(unittest.TestCase):
    def test_finds_ticket_in_text(self):
        self.assertEqual(ticket.find_tickets("CHG", "Fixes CHG-1234."), ["CHG-1234"])

    def test_finds_distinct_tickets_in_order(self):
        self.assertEqual(
            ticket.find_tickets("CHG", "CHG-2 then (CHG-10), again CHG-2"),
            ["CHG-2", "CHG-10"],
        )

    def test_ignores_other_prefixes_and_glued_text(self):
        for notes in [
            "",
            "no ticket",
            "CHG-",
            "CHG-abc",
            "XCHG-12",
            "CHG-12a",
            "chg-12",
            "INC-12",
            "CHG12",
        ]:
            with self.subTest(notes=notes):
                self.assertEqual(ticket.find_tickets("CHG", notes), [])

    def test_prefix_with_digits(self):
        self.assertEqual(ticket.find_tickets("RFC2", "see RFC2-7"), ["RFC2-7"])


class DecideTest(unittest.TestCase):
    def test_ticket_approves_and_logs(self):
        outcome, lines, calls = decide("Release for CHG-1234")
        self.assertEqual(outcome, Approve("change ticket CHG-1234 is referenced in the notes"))
        self.assertEqual(lines, ["found change ticket CHG-1234 in the deployment notes"])
        self.assertEqual(calls, [], "the requester is not read when a ticket is found")

    def test_ticket_approves_even_after_a_no_vote(self):
        outcome, _, _ = decide("CHG-1", votes=[Ballot(ALICE, False)])
        self.assertIsInstance(outcome, Approve)

    def test_several_tickets(self):
        outcome, _, _ = decide("CHG-1 and CHG-2")
        self.assertEqual(
            outcome, Approve("change tickets CHG-1, CHG-2 are referenced in the notes")
        )

    def test_no_ticket_without_approvers_rejects(self):
        outcome, lines, _ = decide("just a fix", approvers=None)
        self.assertIsInstance(outcome, Reject)
        self.assertIn("no change ticket is referenced", outcome.reason)
        self.assertIn("CHG-1234", outcome.reason)
        self.assertEqual(lines, ["no change ticket like CHG-1234 in the deployment notes"])

    def test_no_ticket_without_approvers_ignores_votes(self):
        outcome, _, calls = decide("", votes=[Ballot(ALICE, True)], approvers=None)
        self.assertIsInstance(outcome, Reject)
        self.assertEqual(calls, [])

    def test_no_ticket_with_approvers_is_pending(self):
        outcome, _, calls = decide("", approvers=("group:change-board", "user:carol"))
        self.assertIsInstance(outcome, Pending)
        self.assertEqual(outcome.approvers, ("group:change-board", "user:carol"))
        self.assertIn("No change ticket", outcome.message)
        self.assertIn("group:change-board, user:carol", outcome.message)
        self.assertEqual(calls, [], "the requester is not read when nobody voted")

    def test_yes_vote_approves(self):
        outcome, _, _ = decide("", votes=[Ballot(ALICE, True)])
        self.assertEqual(outcome, Approve("approved without a ticket by Alice Ames"))

    def test_no_vote_rejects(self):
        outcome, _, _ = decide("", votes=[Ballot(BOB, False)])
        self.assertEqual(outcome, Reject("rejected without a ticket by Bob Brown"))

    def test_requester_votes_do_not_count(self):
        outcome, _, calls = decide("", votes=[Ballot(REQUESTER, True)])
        self.assertIsInstance(outcome, Pending)
        self.assertEqual(len(calls), 1, "the requester is read once")
        outcome, _, _ = decide("", votes=[Ballot(REQUESTER, False)])
        self.assertIsInstance(outcome, Pending)

    def test_first_counted_vote_decides(self):
        outcome, _, calls = decide(
            "",
            votes=[Ballot(REQUESTER, True), Ballot(BOB, False), Ballot(ALICE, True)],
        )
        self.assertEqual(outcome, Reject("rejected without a ticket by Bob Brown"))
        self.assertEqual(len(calls), 1)


class ConfigTest(unittest.TestCase):
    def test_minimal(self):
        self.assertEqual(ticket.check_config([("prefix", "CHG")]), Config("CHG", None))

    def test_with_approvers(self):
        config = ticket.check_config(
            [("prefix", "CHG"), ("approvers", "group:change-board, user:alice")]
        )
        self.assertEqual(config.approvers, ("group:change-board", "user:alice"))

    def test_approvers_separated_by_spaces(self):
        config = ticket.check_config([("prefix", "CHG"), ("approvers", "user:a user:b")])
        self.assertEqual(config.approvers, ("user:a", "user:b"))

    def test_prefix_is_trimmed(self):
        self.assertEqual(ticket.check_config([("prefix", " CHG ")]).prefix, "CHG")

    def assertConfigError(self, pairs, *fragments):
        with self.assertRaises(ConfigError) as raised:
            ticket.check_config(pairs)
        for fragment in fragments:
            self.assertIn(fragment, str(raised.exception))

    def test_missing_prefix(self):
        self.assertConfigError([], "`prefix` is required", "`CHG`")

    def test_empty_prefix(self):
        self.assertConfigError([("prefix", "  ")], "`prefix` is required")

    def test_bad_prefixes(self):
        for bad in ["chg", "CHG-", "1CHG", "CH G", "CHG-1234", "Chg"]:
            with self.subTest(prefix=bad):
                self.assertConfigError([("prefix", bad)], "upper-case letter")

    def test_bad_approvers(self):
        for bad in ["change-board", "role:admins", "user:", "group:", "alice"]:
            with self.subTest(approvers=bad):
                self.assertConfigError(
                    [("prefix", "CHG"), ("approvers", bad)],
                    repr(bad),
                    "`user:<id>` or `group:<name>`",
                )

    def test_empty_approvers(self):
        self.assertConfigError(
            [("prefix", "CHG"), ("approvers", " , ")], "`approvers` is set but empty"
        )

    def test_unknown_and_duplicate_keys(self):
        self.assertConfigError(
            [("prefix", "CHG"), ("approver", "user:a")], "unknown key 'approver'"
        )
        self.assertConfigError(
            [("prefix", "CHG"), ("prefix", "INC")], "`prefix` is set more than once"
        )

    def test_every_problem_is_reported(self):
        self.assertConfigError(
            [("prefix", "chg"), ("approvers", "board")], "`prefix` is 'chg'", "'board'"
        )


if __name__ == "__main__":
    unittest.main()
