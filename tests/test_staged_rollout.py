"""Staged rollout through the providers, over real HTTP to the spec-validated fake: with `publish` false a
change is a draft revision only the flow's test users reach, until `publish` is true again; `refresh` tells
drift of the draft and of the published revision apart, and `up` repairs each. Calls are played through
the revision Studio would pick for the caller. The same through the real CLI: test_engine_lifecycle.py."""

from __future__ import annotations

import pytest
from callmask.local.twilio import LocalTwilio
from conftest import TEST_PINS
from line_driver import Line

LINE_NUMBER, TESTER, CALLER = "+14155550142", "+14155550199", "+14155550123"
NEW_GOODBYE = "Staged goodbye."
OLD_GOODBYE = "The call has ended. Goodbye."
DESTINATION = "14155550777"


@pytest.fixture
def line(twilio: LocalTwilio) -> Line:
    twilio.own_number(LINE_NUMBER)
    staged = Line("dev", {"mode": "number", "number": LINE_NUMBER}, release=False)
    staged.up()
    return staged


def goodbye_heard(twilio: LocalTwilio, caller: str) -> str:
    """What the caller hears when the connected call ends: the flow's last prompt."""
    execution = twilio.place_call(LINE_NUMBER, caller, [TEST_PINS[0] + "#", DESTINATION + "#"])
    flow = twilio.flows[execution["flow_sid"]]
    definition = flow["revisions"][execution["revision"] - 1]["definition"]
    say = next(s for s in definition["states"] if s["name"] == "say_goodbye")
    return say["properties"]["say"]


def flow_state(line: Line) -> dict:
    return line.state["flow"][1]


def stage(line: Line, **prompts: str) -> None:
    line.publish, line.test_users, line.prompts = False, [TESTER], prompts
    line.up()


def test_a_draft_reaches_only_test_users_until_it_is_published(twilio, line):
    stage(line, goodbye=NEW_GOODBYE)
    (flow,) = twilio.flows.values()
    assert [r["status"] for r in flow["revisions"]] == ["published", "draft"]
    assert flow["test_users"] == [TESTER]
    assert (flow_state(line)["live_revision"], flow_state(line)["draft_revision"]) == (1, 2)
    assert goodbye_heard(twilio, TESTER) == NEW_GOODBYE
    assert goodbye_heard(twilio, CALLER) == OLD_GOODBYE, "every other caller keeps the published revision"

    writes = len(twilio.writes())
    line.up()
    assert len(twilio.writes()) == writes, "an unchanged staged stack writes nothing"
    line.refresh()
    assert flow_state(line)["drift"] == ""

    line.publish = True
    line.up()
    assert [r["status"] for r in flow["revisions"]] == ["published", "draft", "published"]
    assert flow["revisions"][2]["definition"] == flow["revisions"][1]["definition"], \
        "the definition test users tried is the one published"
    assert (flow_state(line)["live_revision"], flow_state(line)["draft_revision"]) == (3, None)
    assert goodbye_heard(twilio, CALLER) == NEW_GOODBYE
    writes = len(twilio.writes())
    line.up()
    assert len(twilio.writes()) == writes


def test_turning_publish_off_alone_writes_nothing(twilio, line):
    line.publish, line.test_users = False, [TESTER]
    line.up()
    assert [c.path for c in twilio.writes()][-1].endswith("/TestUsers"), "only the test users are set"
    assert len(twilio.flows[flow_state(line)["sid"]]["revisions"]) == 1
    line.publish = True
    writes = len(twilio.writes())
    line.up()
    assert len(twilio.writes()) == writes, "nothing is waiting to be published"


def test_refresh_tells_drift_of_the_published_revision_from_drift_of_the_draft(twilio, line):
    stage(line, goodbye=NEW_GOODBYE)
    flow_sid = flow_state(line)["sid"]
    published = twilio.flows[flow_sid]["revisions"][0]["definition"]
    flow_state(line).update(live_revision=1.0, draft_revision=2.0)  # as the engine's state gives numbers back

    twilio.edit_flow_in_console(flow_sid, lambda d: d["states"][1]["properties"].update(say="Published by hand"))
    line.refresh()
    drift = flow_state(line)["drift"]
    assert "published revision 3 was published outside callmask (callmask published revision 1)" in drift
    assert "draft revision 2 is no longer the latest" in drift
    line.up()
    assert twilio.published_revision(flow_sid)["definition"] == published, "the published revision is put back"
    assert goodbye_heard(twilio, TESTER) == NEW_GOODBYE, "and the draft written again"
    line.refresh()
    assert flow_state(line)["drift"] == ""

    twilio.edit_flow_in_console(flow_sid, lambda d: d["states"][1]["properties"].update(say="Draft by hand"),
                                status="draft")
    line.refresh()
    drift = flow_state(line)["drift"]
    assert "draft revision" in drift and "published outside" not in drift
    line.up()
    line.refresh()
    assert flow_state(line)["drift"] == ""
    assert goodbye_heard(twilio, CALLER) == OLD_GOODBYE


def test_a_console_draft_on_a_published_stack_and_changed_test_users_are_drift(twilio, line):
    line.test_users = [TESTER]
    line.up()
    flow_sid = flow_state(line)["sid"]
    twilio.edit_flow_in_console(flow_sid, lambda d: d["states"][1]["properties"].update(say="x"), status="draft")
    twilio.set_test_users_in_console(flow_sid, [TESTER, CALLER])
    line.refresh()
    drift = flow_state(line)["drift"]
    assert "draft revision 2 was saved outside callmask" in drift and "test users changed" in drift
    line.up()
    assert twilio.flows[flow_sid]["test_users"] == [TESTER]
    assert twilio.flows[flow_sid]["status"] == "published"
    line.refresh()
    assert flow_state(line)["drift"] == ""
