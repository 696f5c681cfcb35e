"""`callmask calls`: the stack flow's executions read back over real HTTP from the spec-validated fake, where
the calls were played through the deployed definition. Every outcome, paging, `--since`, and one-line
errors for missing credentials, 401, 403 and a deleted flow; never a PIN. Through the real CLI (the stack's
credentials as Pulumi takes them): test_engine_lifecycle.py."""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timedelta, timezone

import pytest
from callmask.operations import call_audit
from callmask.function import pin_function
from callmask.operations.command_flow import load_stack_flow
from callmask.operations.deployed_stack import DeployedStack, StackUnreadable
from callmask.local.twilio import ACCOUNT_SID, AUTH_TOKEN, LocalTwilio
from conftest import TEST_PINS
from flow_fixtures import FAST_KDF, stack_settings
from line_driver import Line

LINE_NUMBER, CALLER = "+14155550142", "+14155550123"
CREDENTIALS = {"twilio:accountSid": ACCOUNT_SID, "twilio:authToken": AUTH_TOKEN}
NOW = datetime.now(timezone.utc)
DAY_AGO = NOW - timedelta(hours=24)


@pytest.fixture
def stack(request) -> str:
    """dev checks its PINs in Studio, prod in its Function (the default here)."""
    return getattr(request, "param", "prod")


BOTH_MODES = pytest.mark.parametrize("stack", ["dev", "prod"], indirect=True)


@pytest.fixture
def deployed(twilio: LocalTwilio, stack, monkeypatch) -> DeployedStack:
    monkeypatch.setattr(pin_function, "kdf", lambda: FAST_KDF)
    twilio.own_number(LINE_NUMBER)
    line = Line(stack, {"mode": "number", "number": LINE_NUMBER}, release=False, countries=("US", "CA", "GB"))
    line.pin_check = stack_settings(stack).pin_check
    line.up()
    return DeployedStack(stack, CREDENTIALS, {"flowSid": line.state["flow"][0]})


@pytest.fixture
def roles(stack) -> call_audit.FlowRoles:
    flow = load_stack_flow(stack, argparse.Namespace(pins=None, placeholders_announced=True))
    return call_audit.FlowRoles(flow.definition, flow.pins, flow.allowed_countries,
                                flow.settings.pin_guard.attempts_per_call)


def accepted(stack: str) -> str:
    return "PIN accepted (alice)" if stack_settings(stack).checks_pin_in_function else "PIN accepted"


@BOTH_MODES
def test_every_outcome_newest_first_with_no_pin(twilio, deployed, roles, stack):
    pin, other = TEST_PINS
    twilio.place_call(LINE_NUMBER, CALLER, [pin + "#", "14155550777#"], duration=185)
    twilio.place_call(LINE_NUMBER, CALLER, [pin + "#", "14155550777#"], dial_status="busy")
    twilio.place_call(LINE_NUMBER, CALLER, [other + "#", "14155550777#"], dial_status="no-answer")  # bob's
    twilio.place_call(LINE_NUMBER, "+442079460000", [pin + "#", "18765550123#"])
    twilio.place_call(LINE_NUMBER, CALLER, [pin + "#", other + "#"])  # a PIN keyed in as the number
    twilio.place_call(LINE_NUMBER, CALLER, ["13572468#"] * 3)  # every attempt of the call wrong
    twilio.place_call(LINE_NUMBER, CALLER, [])
    twilio.place_call(LINE_NUMBER, CALLER, [pin + "#"], hangup=True)
    records = call_audit.read_calls(deployed, roles, DAY_AGO, TEST_PINS)
    ok, bob = accepted(stack), accepted(stack).replace("alice", "bob")
    assert [(r.pin, r.outcome) for r in records] == [
        (ok, "hung up"), ("", "no input"), ("PIN refused (attempt 3/3)", "refused PIN"), (ok, "refused number"),
        (ok, "refused number"), (bob, "no answer"), (ok, "busy"), (ok, "connected")]
    connected = records[-1]
    assert (connected.destination, connected.country, connected.allowed, connected.duration_seconds) == \
        ("+14155550777", "US", True, 185)
    jamaica = records[4]
    assert (jamaica.destination, jamaica.country, jamaica.allowed, jamaica.caller) == \
        ("+18765550123", "JM", False, "+4420******00")
    assert records[3].destination == "(withheld: holds a PIN of the line, 8 digits)"
    printed = call_audit.table(records, stack, DAY_AGO) + call_audit.as_json(records)
    assert "JM  !! NOT ALLOWED" in printed and "!! 2 asked for destinations outside" in printed
    for secret in (*TEST_PINS, "13572468", CALLER):
        assert secret not in printed
    assert json.loads(call_audit.as_json(records))[-1]["duration_seconds"] == 185


@BOTH_MODES
def test_a_destination_outside_the_allowed_countries_that_was_dialed_is_called_out(twilio, deployed, roles):
    twilio.edit_flow_in_console(deployed.flow_sid, lambda d: next(
        s for s in d["states"] if s["name"] == "check_number")["transitions"][1]["conditions"][0].update(value=".*"))
    twilio.place_call(LINE_NUMBER, CALLER, [TEST_PINS[0] + "#", "18765550123#"])
    (record,) = call_audit.read_calls(deployed, roles, DAY_AGO, TEST_PINS)
    assert (record.outcome, record.allowed) == ("connected", False)
    assert "!! 1 of them were DIALED" in call_audit.table([record], "prod", DAY_AGO)


def test_pages_through_every_execution_since_the_moment_asked(twilio, deployed, roles, monkeypatch):
    monkeypatch.setattr(call_audit, "PAGE_SIZE", 2)
    for _ in range(5):
        twilio.place_call(LINE_NUMBER, CALLER, [])
    twilio.place_call(LINE_NUMBER, CALLER, [], when=NOW - timedelta(days=3))
    assert len(call_audit.read_calls(deployed, roles, DAY_AGO, TEST_PINS)) == 5
    since = call_audit.since_moment("7d", NOW)
    assert len(call_audit.read_calls(deployed, roles, since, TEST_PINS)) == 6
    assert len([c for c in twilio.reads("/Executions") if c.path.endswith("/Executions")]) == 3 + 3


@pytest.mark.parametrize("text, expected", [
    ("30m", NOW - timedelta(minutes=30)), ("24h", DAY_AGO), ("7d", NOW - timedelta(days=7)),
    ("2026-11-30", datetime(2026, 11, 30, tzinfo=timezone.utc)),
    ("2026-11-30T08:00:00+01:00", datetime(2026, 11, 30, 7, tzinfo=timezone.utc))])
def test_since_takes_durations_and_dates(text, expected):
    assert call_audit.since_moment(text, NOW) == expected


def test_a_since_that_is_neither_is_one_line():
    with pytest.raises(StackUnreadable, match=r"^--since 'yesterday': expected a duration such as 30m"):
        call_audit.since_moment("yesterday", NOW)


@pytest.mark.parametrize("status, expected", [
    (401, "stack prod: Twilio refused the credentials (HTTP 401): check twilio:accountSid"),
    (403, "stack prod: these credentials may not read Studio executions (HTTP 403)"),
    (503, "stack prod: cannot read Studio executions: Twilio had a temporary server error")])
def test_twilio_refusals_are_one_line(twilio, deployed, roles, status, expected):
    twilio.fail("GET", r"/Executions$", status=status, times=10)
    with pytest.raises(StackUnreadable) as raised:
        call_audit.read_calls(deployed, roles, DAY_AGO, TEST_PINS)
    assert str(raised.value).startswith(expected) and "\n" not in str(raised.value)


def test_a_deleted_flow_and_missing_credentials_are_one_line(twilio, deployed, roles):
    del twilio.flows[deployed.flow_sid]
    with pytest.raises(StackUnreadable, match=r"flow FW\w+ no longer exists on Twilio .*pulumi refresh --stack prod"):
        call_audit.read_calls(deployed, roles, DAY_AGO, TEST_PINS)
    without = DeployedStack("prod", {}, deployed.outputs)
    with pytest.raises(StackUnreadable, match=r"^stack prod: Twilio credentials are missing: set twilio:accountSid"):
        call_audit.read_calls(without, roles, DAY_AGO, TEST_PINS)


@pytest.mark.parametrize("stack", ["dev"], indirect=True)
def test_an_execution_and_a_step_keep_the_context_studio_keeps(twilio, deployed):
    """What Studio keeps, and so what `calls` must drop: the fake's executions hold the gathered digits."""
    made = twilio.place_call(LINE_NUMBER, CALLER, ["13572468#"] * 3)
    flow = deployed.client().studio.v2.flows(deployed.flow_sid)
    execution = flow.executions(made["sid"]).fetch()
    assert execution.contact_channel_address == CALLER and execution.status == "ended"
    assert execution.context["widgets"]["gather_pin"]["Digits"] == "13572468"
    first = list(flow.executions(made["sid"]).steps.stream())[0]
    assert (first.transitioned_from, first.name, first.transitioned_to) == ("Trigger", "incomingCall", "gather_pin")
    second = list(flow.executions(made["sid"]).steps.stream())[1]
    assert flow.executions(made["sid"]).steps(second.sid).step_context().fetch().context == {
        "widgets": {"gather_pin": {"Digits": "13572468", "SpeechResult": "", "Confidence": ""}}}


def test_a_function_that_never_returned_a_verdict_is_a_failed_pin_check():
    roles = call_audit.FlowRoles(load_stack_flow("prod", argparse.Namespace(
        pins=None, placeholders_announced=True)).definition, TEST_PINS, ("US",))
    timed_out = [("Trigger", "incomingCall"), ("check_pin", "timeout")]
    assert call_audit.outcome(timed_out, roles, None, {}) == "PIN check failed"
    assert call_audit.pin_verdict(timed_out, roles, {}) == ""
    returned = [("Trigger", "incomingCall"), ("check_pin", "return"), ("pin_verdict", "match")]
    forged = {"check_pin": {"verdict": "ok", "label": "a\\nb 24681357"}}  # only a label as settings allow shows
    assert call_audit.pin_verdict(returned, roles, forged) == "PIN accepted"
