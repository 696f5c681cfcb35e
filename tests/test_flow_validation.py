"""`callmask validate`: each rule catches its problem on a broken copy of the committed flow."""

from __future__ import annotations

import pytest
from callmask.studio.flow_validation import SIMPLE_OUTPUT, validate
from callmask.config.stack_config import stack_names
from conftest import TEST_PINS
from flow_fixtures import rendered, stack_settings, transition, widget
from hypothesis import given
from hypothesis import strategies as st


@pytest.mark.parametrize("stack", stack_names())
def test_committed_stacks_are_sound(stack):
    assert validate(rendered(stack), stack_settings(stack).pin_length, TEST_PINS) == []


def problems_after(change, pin_length: int | None = 8) -> list[str]:
    definition = rendered()
    change(definition)
    return [f"{p.widget}: {p.what}" for p in validate(definition, pin_length, TEST_PINS)]


def test_initial_state_must_exist():
    assert "(flow): initial_state 'Start' names no widget" in problems_after(lambda d: d.update(initial_state="Start"))


def test_widget_names_are_unique():
    def duplicate(d):
        widget(d, "say_goodbye")["name"] = "say_no_input"
    assert "say_no_input: 2 widgets share this name" in problems_after(duplicate)


def test_every_next_exists():
    def dangle(d):
        transition(d, "check_pin", "noMatch")["next"] = "say_sorry"
    assert "check_pin: the 'noMatch' transition goes to 'say_sorry', which does not exist" in problems_after(dangle)


def test_a_widget_nothing_leads_to_is_a_warning():
    """Studio accepts widgets left on the canvas; they never run."""
    definition = rendered()
    transition(definition, "check_number", "noMatch")["next"] = "say_invalid_pin"
    (problem,) = validate(definition, 8, TEST_PINS)
    assert problem.warning and f"{problem.widget}: {problem.what}" == (
        "say_invalid_number: no transition leads here, so it never runs")


def test_widget_types_are_studios():
    assert "say_goodbye: unknown widget type 'say'" in problems_after(lambda d: widget(d, "say_goodbye").update(type="say"))


def test_event_names_are_known():
    def rename(d):
        transition(d, "gather_pin", "keypress")["event"] = "digits"
    found = problems_after(rename)
    assert "gather_pin: gather-input-on-call has no event 'digits'" in found
    assert "gather_pin: the 'keypress' event is not listed (it then ends the execution)" in found


def test_an_unlisted_event_is_a_warning():
    """Studio accepts a widget that leaves an event out (the execution ends there); exports list all."""
    definition = rendered()
    gather = widget(definition, "gather_number")
    gather["transitions"] = [t for t in gather["transitions"] if t["event"] != "speech"]
    (problem,) = validate(definition, 8, TEST_PINS)
    assert problem.warning and problem.widget == "gather_number" and "'speech' event is not listed" in problem.what


def test_split_conditions_are_studios():
    def wrong(d):
        transition(d, "check_number", "match")["conditions"][0]["type"] = "ends_with"
    assert "check_number: unknown split condition type 'ends_with'" in problems_after(wrong)


def test_liquid_must_name_an_existing_widget():
    def typo(d):
        widget(d, "check_pin")["properties"]["input"] = "{{widgets.gather_pn.Digits}}"
    assert "check_pin: Liquid refers to widgets.gather_pn, which does not exist" in problems_after(typo)


def test_liquid_naming_a_widget_that_may_not_have_run_is_a_warning():
    definition = rendered()
    widget(definition, "say_no_input")["properties"]["say"] = "You dialed {{widgets.gather_number.Digits}}"
    (problem,) = validate(definition, 8, TEST_PINS)
    assert problem.warning and problem.line("f.json") == (
        "f.json: warning: say_no_input: Liquid refers to widgets.gather_number, which does not always run before "
        "it (Studio then renders it empty). Fix: refer only to widgets every path passes through before say_no_input.")


def test_an_older_trigger_without_conversations_is_fine():
    definition = rendered()
    trigger = widget(definition, "Trigger")
    trigger["transitions"] = [t for t in trigger["transitions"]
                              if t["event"] not in ("incomingConversationMessage", "incomingParent")]
    assert validate(definition, 8, TEST_PINS) == []


def test_pin_gather_length_matches_pin_length():
    def nine(d):
        widget(d, "gather_pin")["properties"]["number_of_digits"] = 9
    assert "gather_pin: number_of_digits is 9 but PINs have 8 digits" in problems_after(nine)
    assert "gather_pin: number_of_digits is 9 but PINs have 8 digits" in problems_after(nine, pin_length=None)


def test_dialing_requires_a_matched_pin_check():
    def skip_pin(d):
        transition(d, "check_pin", "noMatch")["next"] = "gather_number"
    assert "connect_call: can be reached without a matched PIN check" in problems_after(skip_pin)


def test_dialing_requires_a_matched_number_check():
    def skip_number(d):
        transition(d, "gather_number", "keypress")["next"] = "connect_call"
    found = problems_after(skip_number)
    assert "connect_call: can be reached without a matched number check" in found


def test_dialing_uses_the_checked_digits():
    def other_digits(d):
        widget(d, "connect_call")["properties"]["to"] = "+{{widgets.gather_pin.Digits}}"
    assert "connect_call: `to` does not dial the digits that the number check examined" in problems_after(other_digits)


def test_no_pin_outside_the_pin_condition():
    def leak(d):
        widget(d, "say_goodbye")["properties"]["say"] = "Your PIN was 24681357."
    assert "say_goodbye: a PIN appears outside the PIN condition" in problems_after(leak)


def test_nothing_but_the_pin_check_reads_the_pin_back():
    def read_back(d):
        widget(d, "connect_call")["properties"]["caller_id"] = "+{{widgets.gather_pin.Digits}}"
    assert problems_after(read_back) == [
        "connect_call: reads the PIN gather widgets.gather_pin (the caller's PIN)"]


def test_not_a_definition():
    assert [p.what for p in validate([])] == ["not a Studio definition (no `states` list)"]


def test_malformed_widgets_are_reported_not_crashed_on():
    definition = rendered()
    widget(definition, "say_goodbye")["properties"] = "say goodbye"
    widget(definition, "check_pin")["transitions"].append("noMatch")
    definition["states"].append(["not", "a", "widget"])
    found = [f"{p.widget}: {p.what}" for p in validate(definition, 8)]
    assert found == ["check_pin: a transition is not an object with an `event` text, an optional `next` text and "
                     "an optional `conditions` list of objects",
                     "say_goodbye: `properties` is missing or not a dict",
                     f"states[{len(definition['states']) - 1}]: is not an object"]


def test_the_dial_out_rules_apply_only_with_the_lines_pins():
    """A menu that compares the caller's key with "1" is no PIN check: without the line's PINs a flow
    gets only the structural checks, and with them only splits comparing with those PINs are PIN checks."""
    menu = rendered()
    widget(menu, "check_pin")["transitions"][1]["conditions"][0].update(type="equal_to", value="1")
    widget(menu, "gather_pin")["properties"]["number_of_digits"] = 1
    assert validate(menu) == []
    found = [f"{p.widget}: {p.what}" for p in validate(menu, 8, TEST_PINS)]
    assert "connect_call: can be reached without a matched PIN check" in found
    assert not any("PIN appears" in line or "number_of_digits" in line for line in found)


# python-liquid reserves words Studio's Liquid may not (`a.limit`): those only ever get a warning.
RESERVED = {"and", "or", "not", "contains", "in", "empty", "nil", "null", "true", "false", "blank", "with", "for",
            "if", "else", "limit", "offset", "reversed", "as", "by", "cols", "required"}
identifier = st.from_regex(r"[A-Za-z_][A-Za-z0-9_-]{0,6}", fullmatch=True).filter(lambda word: word not in RESERVED)
path = st.builds(lambda first, rest: ".".join([first, *rest]), identifier, st.lists(identifier, max_size=3))
literal = st.one_of(st.from_regex(r'"[^"{}]{0,6}"', fullmatch=True), st.from_regex(r"'[^'{}]{0,6}'", fullmatch=True),
                    st.integers(-99, 99).map(str), path)
liquid_filter = st.builds(lambda name, args: f" | {name}" + (": " + ", ".join(args) if args else ""),
                          identifier, st.lists(literal, max_size=2))
simple_output = st.builds(lambda subject, filters: "{{ " + subject + "".join(filters) + " }}",
                          literal, st.lists(liquid_filter, max_size=3))


@given(text=simple_output)
def test_what_validation_takes_for_simple_liquid_python_liquid_parses(text):
    """The grammar that spares loading the Liquid parser accepts only what the parser accepts (its reserved
    words aside)."""
    from liquid import Environment
    assert SIMPLE_OUTPUT.fullmatch(text)
    Environment().parse(text)


# ---- a PIN checked by the line's Function (prod: callmask:pinCheck function) ----

def function_problems_after(change) -> list[str]:
    definition = rendered("prod")
    change(definition)
    return [f"{p.widget}: {p.what}" for p in validate(definition, 8, TEST_PINS) if not p.warning]


def verdict_branch(definition: dict, value: str) -> dict:
    return next(t for t in widget(definition, "pin_verdict")["transitions"]
                if t["event"] == "match" and t["conditions"][0]["value"] == value)


def test_the_function_flow_holds_no_pin_and_its_verdict_is_the_pin_gate():
    definition = rendered("prod")
    assert not any(pin in str(definition) for pin in TEST_PINS)
    assert widget(definition, "check_pin")["type"] == "add-twiml-redirect"
    # Sending the `noinput` verdict on to the number prompt opens the line without a PIN.
    found = function_problems_after(lambda d: verdict_branch(d, "noinput").update(next="gather_number"))
    assert "connect_call: can be reached without a matched PIN check" in found
    # So does a redirect whose time-out or failure skips the verdict.
    found = function_problems_after(lambda d: transition(d, "check_pin", "timeout").update(next="gather_number"))
    assert "connect_call: can be reached without a matched PIN check" in found
    found = function_problems_after(lambda d: verdict_branch(d, "ok")["conditions"][0].update(type="not_equal_to"))
    assert "pin_verdict: no branch matches exactly the verdict ok, so no PIN ever passes" in found
    assert "connect_call: can be reached without a matched PIN check" in found


@pytest.mark.parametrize("change, expected", [
    (lambda d: widget(d, "check_pin")["properties"].pop("timeout"),
     "check_pin: timeout is 14400 (Studio's default is 14400 s, four hours)"),
    (lambda d: widget(d, "check_pin")["properties"].update(timeout="3600"), "check_pin: timeout is 3600"),
    (lambda d: widget(d, "check_pin")["properties"].update(url="http://pin.example.com/pin-check?flowSid={{flow.flow_sid}}"),
     "check_pin: the PIN-check URL is not https"),
    (lambda d: widget(d, "check_pin")["properties"].update(url="https://pin.example.com/pin-check"),
     "check_pin: the URL does not pass flowSid={{flow.flow_sid}}"),
    (lambda d: transition(d, "check_pin", "return").update(next="say_invalid_pin"),
     "check_pin: the return transition goes to 'say_invalid_pin', not to the verdict check pin_verdict"),
    (lambda d: widget(d, "say_goodbye")["properties"].update(say=f"Your PIN {TEST_PINS[0]} worked."),
     "say_goodbye: a PIN appears outside the PIN condition"),
])
def test_each_function_rule_names_its_widget(change, expected):
    assert any(problem.startswith(expected) for problem in function_problems_after(change)), \
        function_problems_after(change)
