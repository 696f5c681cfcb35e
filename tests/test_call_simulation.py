"""`callmask simulate`: calls walked through the rendered flows, by example and by property."""

from __future__ import annotations

import re

import pytest
from callmask.studio.call_simulation import MAX_STEPS, CallSimulator, gather
from callmask.studio.flow_template import load_template, render_flow
import phonenumbers
from callmask.config.destinations import NUMBER_TYPES, number_pattern
from callmask.config.settings import parse_settings, pin_problem
from callmask.config.stack_config import from_files, stack_names
from conftest import TEST_PINS
from flow_fixtures import stack_settings
from flow_fixtures import stack_simulator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

PIN = TEST_PINS[0]


def simulator(stack: str) -> CallSimulator:
    return stack_simulator(stack)


@pytest.mark.parametrize("stack", stack_names())
class TestCommittedStacks:
    def test_happy_path_dials_with_the_lines_caller_id(self, stack):
        result = simulator(stack).run([f"{PIN}#", "14155550123#"])
        assert result.outcome == "connected" and result.dialed == "+14155550123"
        dial = next(s.dial for s in result.steps if s.dial)
        assert dial == {"to": "+14155550123", "caller_id": simulator(stack).line_number}
        assert [s.widget for s in result.steps][-1] == "say_goodbye"

    def test_wrong_pin_is_rejected(self, stack):
        attempts = stack_settings(stack).pin_guard.attempts_per_call
        result = simulator(stack).run(["13572468#"] * attempts + ["14155550123#"])
        assert result.outcome == "rejected_pin" and result.dialed is None
        assert result.steps[-1].widget == "say_invalid_pin"
        said = " ".join(step.say for step in result.steps if step.say)
        assert said.count(stack_settings(stack).prompts.pinRetry) == attempts - 1, "asked again, then refused"

    def test_no_input_ends_the_call(self, stack):
        result = simulator(stack).run([])
        assert result.outcome == "no_input" and result.steps[-1].widget == "say_no_input"
        assert result.steps[1].digits == "" and result.dialed is None

    def test_disallowed_number_is_refused(self, stack):
        result = simulator(stack).run([f"{PIN}#", "882161234567#"])
        assert result.outcome == "rejected_number" and result.steps[-1].widget == "say_invalid_number"

    def test_busy_callee_still_ends_with_goodbye(self, stack):
        result = simulator(stack).run([f"{PIN}#", "14155550123#"], dial_status="busy")
        assert result.outcome == "callee_busy" and result.dialed == "+14155550123"
        assert result.steps[-1].widget == "say_goodbye"
        assert next(s for s in result.steps if s.dial).event == "callCompleted"

    def test_caller_hangs_up(self, stack):
        during_pin = simulator(stack).run([], hangup=True)
        assert during_pin.outcome == "hangup" and during_pin.dialed is None
        during_call = simulator(stack).run([f"{PIN}#", "14155550123#"], hangup=True)
        assert next(s for s in during_call.steps if s.dial).event == "hangup"
        assert during_call.steps[-1].widget == "say_goodbye"


TOLL_FRAUD = {
    "18765230123": "Jamaica, inside +1", "18092345678": "the Dominican Republic, inside +1",
    "14412345678": "Bermuda, inside +1", "19002345678": "US premium rate", "18002345678": "US toll-free",
    "449091234567": "UK premium rate", "447012345678": "UK personal number", "448431234567": "UK shared cost",
    "882161234567": "an international network",
}


@pytest.mark.parametrize("keyed, what", TOLL_FRAUD.items(), ids=list(TOLL_FRAUD.values()))
def test_toll_fraud_destinations_are_refused_on_both_lines(keyed, what):
    for stack in ("dev", "prod"):
        assert simulator(stack).run([f"{PIN}#", keyed + "#"]).outcome == "rejected_number", (stack, what)


def test_ordinary_numbers_of_the_allowed_countries_connect():
    for keyed in ("14155550123", "12125551234", "16135550123", "442079460000", "447400123456"):
        assert simulator("prod").run([f"{PIN}#", keyed + "#"]).outcome == "connected", keyed
    assert simulator("dev").run([f"{PIN}#", "16135550123#"]).outcome == "rejected_number", "dev allows only US"


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
country = st.sampled_from(["US", "CA", "GB", "FR", "DE", "AU", "JP", "IE", "IN", "JM", "DO"])
number_types = st.lists(st.sampled_from(list(NUMBER_TYPES)), min_size=1, max_size=3, unique=True)
PHONE_TYPES = {"fixedLine": phonenumbers.PhoneNumberType.FIXED_LINE, "mobile": phonenumbers.PhoneNumberType.MOBILE,
               "tollFree": phonenumbers.PhoneNumberType.TOLL_FREE,
               "premiumRate": phonenumbers.PhoneNumberType.PREMIUM_RATE,
               "sharedCost": phonenumbers.PhoneNumberType.SHARED_COST, "voip": phonenumbers.PhoneNumberType.VOIP,
               "personalNumber": phonenumbers.PhoneNumberType.PERSONAL_NUMBER,
               "pager": phonenumbers.PhoneNumberType.PAGER, "uan": phonenumbers.PhoneNumberType.UAN,
               "voicemail": phonenumbers.PhoneNumberType.VOICEMAIL}


@st.composite
def line_configs(draw):
    length = draw(st.integers(6, 10))
    pin = st.text(alphabet="0123456789", min_size=length, max_size=length).filter(
        lambda p: pin_problem(p, length) is None)  # a PIN the settings accept
    pins = draw(st.lists(pin, min_size=1, max_size=3, unique=True))
    countries = draw(st.lists(country, min_size=1, max_size=3, unique=True))
    return length, pins, countries, draw(number_types)


def simulator_for(length: int, pins: list[str], countries: list[str], types: list[str]) -> CallSimulator:
    values, _ = from_files("dev")
    values.update(pinLength=length, pins=pins, allowedCountries=countries, allowedNumberTypes=types)
    settings_ = parse_settings(values)
    return CallSimulator(render_flow(load_template(), settings_.flow_values(), settings_.pins), pins=settings_.pins)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=line_configs(), presses=st.lists(keys, max_size=4), use_real_pin=st.booleans(),
       number=digits, hangup=st.booleans())
def test_a_call_connects_only_with_a_configured_pin_and_an_allowed_number(config, presses, use_real_pin, number, hangup):
    length, pins, countries, types = config
    if use_real_pin:
        presses = [pins[0] + "#", number + "#", *presses]
    result = simulator_for(length, pins, countries, types).run(presses, hangup=hangup)

    assert len(result.steps) < MAX_STEPS and result.outcome in (
        "connected", "rejected_pin", "rejected_number", "no_input", "hangup")
    dials = [s.dial for s in result.steps if s.dial]
    assert (result.outcome == "connected") == bool(dials)
    if dials:
        # the PIN may be keyed at any attempt of the call: the last one keyed opened it
        keyed_pins = [s.digits for s in result.steps if s.widget == "gather_pin"]
        (keyed_number,) = [s.digits for s in result.steps if s.widget == "gather_number"]
        assert keyed_pins[-1] in pins and len(keyed_pins) <= 3, "dialing needs a configured PIN, within the attempts"
        dialed_digits = keyed_number.rstrip("*")
        assert dials == [{"to": "+" + dialed_digits, "caller_id": "+15005550006"}], "only the checked number is dialed"
        assert re.fullmatch(number_pattern(tuple(countries), tuple(types)), keyed_number)
        assert_allowed_destination("+" + dialed_digits, countries, types)


def assert_allowed_destination(e164: str, countries: list[str], types: list[str]) -> None:
    """libphonenumber's own reading of the dialed number: one of the allowed countries and types."""
    parsed = phonenumbers.parse(e164)
    assert any(phonenumbers.is_valid_number_for_region(parsed, country) for country in countries)
    assert phonenumbers.number_type(parsed) in allowed_phone_types(types)


def allowed_phone_types(types: list[str]) -> set[int]:
    either = {phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE} if {"fixedLine", "mobile"} & set(types) else set()
    return {PHONE_TYPES[kind] for kind in types} | either


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(countries=st.lists(country, min_size=1, max_size=3, unique=True), types=number_types,
       destination=country, kind=st.sampled_from(list(NUMBER_TYPES)))
def test_an_example_number_connects_exactly_when_its_country_and_type_are_allowed(countries, types, destination,
                                                                                  kind):
    example = phonenumbers.example_number_for_type(destination, PHONE_TYPES[kind])
    if example is None:
        return  # that country has no such range
    digits_keyed = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)[1:]
    result = simulator_for(8, TEST_PINS, countries, types).run([f"{PIN}#", digits_keyed + "#"])
    # libphonenumber's own reading of the number is the oracle: within a shared calling code a number is
    # valid for some countries only (+1 876 is Jamaica's; NANP toll-free is every NANP country's), and in
    # NANP countries fixed-line and mobile ranges are one.
    allowed = any(phonenumbers.is_valid_number_for_region(example, c) for c in countries) and \
        phonenumbers.number_type(example) in allowed_phone_types(types)
    assert (result.outcome == "connected") == allowed, (digits_keyed, kind)


@settings(max_examples=100, deadline=None)
@given(presses=st.lists(keys, max_size=5), status=st.sampled_from(["completed", "busy", "no-answer", "failed"]))
def test_every_call_on_the_committed_flow_ends(presses, status):
    for stack in stack_names():
        result = simulator(stack).run(presses, dial_status=status)
        assert result.steps[-1].type == "say-play" and result.steps[-1].event == "audioComplete"
