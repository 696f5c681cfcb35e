"""`callmask simulate`: calls walked through the rendered flows, by example and by property."""

from __future__ import annotations

import re

import pytest
from callmask.call_simulation import MAX_STEPS, CallSimulator, gather
from callmask.flow_template import load_template, render_flow
from callmask.settings import number_pattern, parse_settings
from callmask.stack_config import from_files, stack_names
from conftest import TEST_PINS
from flow_fixtures import rendered
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

PIN = TEST_PINS[0]


def simulator(stack: str) -> CallSimulator:
    return CallSimulator(rendered(stack))


@pytest.mark.parametrize("stack", stack_names())
class TestCommittedStacks:
    def test_happy_path_dials_with_the_lines_caller_id(self, stack):
        result = simulator(stack).run([f"{PIN}#", "14155550123#"])
        assert result.outcome == "connected" and result.dialed == "+14155550123"
        dial = next(s.dial for s in result.steps if s.dial)
        assert dial == {"to": "+14155550123", "caller_id": simulator(stack).line_number}
        assert [s.widget for s in result.steps][-1] == "say_goodbye"

    def test_wrong_pin_is_rejected(self, stack):
        result = simulator(stack).run(["13572468#", "14155550123#"])
        assert result.outcome == "rejected_pin" and result.dialed is None
        assert result.steps[-1].widget == "say_invalid_pin"

    def test_no_input_ends_the_call(self, stack):
        result = simulator(stack).run([])
        assert result.outcome == "no_input" and result.steps[-1].widget == "say_no_input"
        assert result.steps[1].event == "timeout"

    def test_disallowed_number_is_refused(self, stack):
        result = simulator(stack).run([f"{PIN}#", "882161234567#"])
        assert result.outcome == "rejected_number" and result.steps[-1].widget == "say_invalid_number"

    def test_busy_callee_still_ends_with_goodbye(self, stack):
        result = simulator(stack).run([f"{PIN}#", "14155550123#"], dial_status="busy")
        assert result.outcome == "connected" and result.steps[-1].widget == "say_goodbye"
        assert next(s for s in result.steps if s.dial).event == "callCompleted"

    def test_caller_hangs_up(self, stack):
        during_pin = simulator(stack).run([], hangup=True)
        assert during_pin.outcome == "hangup" and during_pin.dialed is None
        during_call = simulator(stack).run([f"{PIN}#", "14155550123#"], hangup=True)
        assert next(s for s in during_call.steps if s.dial).event == "hangup"
        assert during_call.steps[-1].widget == "say_goodbye"


def test_prod_allows_uk_numbers_and_dev_does_not():
    assert simulator("prod").run([f"{PIN}#", "442079460000#"]).outcome == "connected"
    assert simulator("dev").run([f"{PIN}#", "442079460000#"]).outcome == "rejected_number"


def test_gather_stops_at_digit_count_or_finish_key():
    assert gather({"finish_on_key": "#", "number_of_digits": 4}, "123456") == "1234"
    assert gather({"finish_on_key": "#"}, "12#34") == "12"
    assert gather({"finish_on_key": "#"}, "#") == ""
    assert gather({"finish_on_key": "#"}, "44207*") == "44207*"


def test_a_trailing_star_also_ends_the_number():
    result = simulator("dev").run([f"{PIN}#", "14155550123*"])
    assert result.outcome == "connected" and result.dialed == "+14155550123"


def test_split_matching_is_trimmed_and_case_insensitive():
    definition = {"initial_state": "t", "states": [
        {"name": "t", "type": "trigger", "transitions": [{"event": "incomingCall", "next": "s"}]},
        {"name": "s", "type": "split-based-on", "properties": {"input": "  Yes "},
         "transitions": [{"event": "noMatch"}, {"event": "match", "next": "ok",
                          "conditions": [{"type": "matches_any_of", "value": "no, YES ,maybe"}]}]},
        {"name": "ok", "type": "say-play", "properties": {"say": "ok"}, "transitions": [{"event": "audioComplete"}]}]}
    assert CallSimulator(definition).run([]).steps[-1].widget == "ok"


def test_a_looping_flow_is_reported():
    definition = {"initial_state": "a", "states": [
        {"name": "a", "type": "say-play", "properties": {"say": "again"},
         "transitions": [{"event": "audioComplete", "next": "a"}]}]}
    with pytest.raises(Exception, match=f"did not end after {MAX_STEPS} widgets"):
        CallSimulator(definition).run([])


# ---- properties ----

digits = st.text(alphabet="0123456789", min_size=0, max_size=16)
keys = st.text(alphabet="0123456789#*", min_size=0, max_size=18)
country_code = st.sampled_from(["1", "44", "33", "49", "61", "81", "353", "91"])


@st.composite
def line_configs(draw):
    length = draw(st.integers(6, 10))
    pin = st.text(alphabet="0123456789", min_size=length, max_size=length).filter(
        lambda p: len(set(p)) > 2 and not _is_run(p))
    pins = draw(st.lists(pin, min_size=1, max_size=3, unique=True))
    codes = draw(st.lists(country_code, min_size=1, max_size=3, unique=True))
    return length, pins, codes


def _is_run(pin: str) -> bool:
    steps = {int(b) - int(a) for a, b in zip(pin, pin[1:])}
    return steps in ({1}, {-1})


def simulator_for(length: int, pins: list[str], codes: list[str]) -> CallSimulator:
    values, _ = from_files("dev")
    values.update(pinLength=length, pins=pins, allowedCountryCodes=codes)
    settings_ = parse_settings(values)
    return CallSimulator(render_flow(load_template(), settings_.flow_values(), settings_.pins))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=line_configs(), presses=st.lists(keys, max_size=4), use_real_pin=st.booleans(),
       number=digits, hangup=st.booleans())
def test_a_call_connects_only_with_a_configured_pin_and_an_allowed_number(config, presses, use_real_pin, number, hangup):
    length, pins, codes = config
    if use_real_pin:
        presses = [pins[0] + "#", number + "#", *presses]
    result = simulator_for(length, pins, codes).run(presses, hangup=hangup)

    assert len(result.steps) < MAX_STEPS and result.outcome in (
        "connected", "rejected_pin", "rejected_number", "no_input", "hangup")
    dials = [s.dial for s in result.steps if s.dial]
    assert (result.outcome == "connected") == bool(dials)
    if dials:
        gathered = [s.digits for s in result.steps if s.digits is not None]
        assert gathered[0] in pins, "dialing needs a configured PIN"
        dialed_digits = gathered[1].rstrip("*")
        assert dials == [{"to": "+" + dialed_digits, "caller_id": "+15005550006"}], "only the checked number is dialed"
        assert re.fullmatch(number_pattern(tuple(codes)), gathered[1])
        assert any(dialed_digits.startswith(code) for code in codes)
        assert 8 <= len(dialed_digits) <= 15


@settings(max_examples=100, deadline=None)
@given(presses=st.lists(keys, max_size=5), status=st.sampled_from(["completed", "busy", "no-answer", "failed"]))
def test_every_call_on_the_committed_flow_ends(presses, status):
    for stack in stack_names():
        result = simulator(stack).run(presses, dial_status=status)
        assert result.steps[-1].type == "say-play" and result.steps[-1].event == "audioComplete"
