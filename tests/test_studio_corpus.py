"""The flow tools on a corpus of realistic Studio flows: no false errors, diagrams that match the JSON
transition for transition, and simulations that follow each flow's known paths."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from xml.etree import ElementTree

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from callmask.studio.call_simulation import CallSimulator, CannotSimulate, SimulationError, compare
from callmask.studio.flow_diagram import mermaid, node_ids, svg
from callmask.studio.flow_graph import FlowGraph
from callmask.studio.flow_validation import validate
from callmask.studio.widget_library import OTHER_TYPES, TRIGGER_EVENTS, WIDGET_EVENTS
from studio_corpus import CORPUS, definition, reply, say, split, trigger, widget
from test_cli import run

NAMES = sorted(CORPUS)


def test_the_corpus_covers_the_widget_library():
    flows = [flow for flow, _ in CORPUS.values()]
    used_types = {state["type"] for flow in flows for state in flow["states"]}
    wired_triggers = {t["event"] for flow in flows for t in flow["states"][0]["transitions"] if t.get("next")}
    assert len(CORPUS) >= 20
    assert used_types == set(WIDGET_EVENTS), set(WIDGET_EVENTS) - used_types
    assert wired_triggers == set(TRIGGER_EVENTS)


@pytest.mark.parametrize("name", NAMES)
def test_no_false_errors(name):
    flow, _ = CORPUS[name]
    assert [p.line(name) for p in validate(flow)] == []


@pytest.mark.parametrize("name", NAMES)
def test_the_mermaid_diagram_has_every_widget_and_transition_once(name):
    flow, _ = CORPUS[name]
    graph = FlowGraph(flow)
    ids = node_ids(graph)
    text = mermaid(flow)
    assert len(set(ids.values())) == len(flow["states"])
    drawn = Counter(re.findall(r"^    (\S+) -\.?->\|\"([^\"]*)\"\| (\S+)$", text, re.MULTILINE))
    expected = Counter()
    for state in flow["states"]:
        for transition in state["transitions"]:
            if state["type"] == "trigger" and not transition.get("next"):
                continue  # an event the flow does not handle
            names = [c["friendly_name"] for c in transition.get("conditions", [])]
            label = f"{transition['event']}: {', '.join(names)}" if names else transition["event"]
            target = ids[transition["next"]] if transition.get("next") else "call_ends"
            expected[(ids[state["name"]], label, target)] += 1
    assert drawn == expected


@pytest.mark.parametrize("name", NAMES)
def test_the_svg_is_well_formed_with_a_box_per_widget(name):
    flow, _ = CORPUS[name]
    root = ElementTree.fromstring(svg(flow))
    assert len(root.findall("{http://www.w3.org/2000/svg}rect[@class='widget']")) == len(flow["states"])
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert all(state["name"] in texts for state in flow["states"])


CASES = [(name, index) for name in NAMES for index in range(len(CORPUS[name][1]))]


@pytest.mark.parametrize("name, index", CASES, ids=[f"{n}-{i}" for n, i in CASES])
def test_simulation_follows_the_known_path(name, index):
    flow, executions = CORPUS[name]
    execution = executions[index]
    result = CallSimulator(flow).run(execution.inputs, **execution.options)
    assert [step.widget for step in result.steps] == execution.path


def test_branches_are_tried_in_order_and_the_first_that_holds_wins():
    flow = json.loads(json.dumps(CORPUS["whatsapp_menu"][0]))
    pick = next(s for s in flow["states"] if s["name"] == "pick")
    # The second branch holds for "address": its own `next` is taken, not the first branch's.
    assert CallSimulator(flow).run([reply("address")]).steps[-1].widget == "address"
    # "1" holds for the first branch and for one added last: the first listed wins.
    pick["transitions"].append({"event": "match", "next": "agent_handoff", "conditions": [
        {"friendly_name": "digit", "type": "regex", "value": "\\d"}]})
    assert CallSimulator(flow).run([reply("1")]).steps[-1].widget == "hours"
    assert CallSimulator(flow).run([reply("7")]).steps[-1].widget == "agent_handoff"


def test_the_liquid_filters_studio_uses_render():
    flow, executions = CORPUS["liquid_filters"]
    result = CallSimulator(flow).run([], **executions[0].options)
    body = result.steps[-1].message["body"]
    assert body.startswith("HELLO ADA: 3 items, try 2, data {") and '"items": "a,b,c"' in body


CONDITIONS = [
    ("equal_to", " Yes ", "yes", True), ("equal_to", "yes", "no", False),
    ("not_equal_to", "yes", "no", True), ("not_equal_to", "YES", "yes", False),
    ("matches_any_of", "b", "a, B ,c", True), ("matches_any_of", "d", "a,b", False),
    ("does_not_match_any_of", "d", "a,b", True), ("does_not_match_any_of", "A", "a,b", False),
    ("is_blank", "  ", "", True), ("is_blank", "x", "", False),
    ("is_not_blank", "x", "", True), ("is_not_blank", "", "", False),
    ("regex", "4420", "44\\d+", True), ("regex", "x4420", "44\\d+", False),
    ("contains", "Pay my BILL", "bill", True), ("contains", "pay", "bill", False),
    ("does_not_contain", "pay", "bill", True), ("does_not_contain", "billing", "bill", False),
    ("starts_with", "Agent now", "agent", True), ("starts_with", "my agent", "agent", False),
    ("does_not_start_with", "my agent", "agent", True), ("does_not_start_with", "agent", "agent", False),
    ("less_than", "3", "5", True), ("less_than", "10", "5", False), ("less_than", "abc", "5", False),
    ("greater_than", "10", "5", True), ("greater_than", "5", "5", False),
    ("is_before_time", "08:59", "09:00", True), ("is_before_time", "0930", "09:00", False),
    ("is_after_time", "17:31", "17:30", True), ("is_after_time", "17:00", "17:30", False),
    ("is_before_date", "2026-01-01", "12/31/2026", True), ("is_before_date", "2027-01-01", "2026-12-31", False),
    ("is_after_date", "12/25/2026", "2026-12-20", True), ("is_after_date", "2026-12-20", "2026-12-20", False),
]


@pytest.mark.parametrize("kind, value, target, expected", CONDITIONS)
def test_every_split_condition_type(kind, value, target, expected):
    assert compare(value, kind, target) is expected


def test_what_cannot_be_simulated_is_named():
    flow = definition("chat", trigger(incomingCall="task"),
                      widget("task", "create-task", {"success": "bye"}), say("bye", "Goodbye."))
    with pytest.raises(CannotSimulate, match="widget task: type 'create-task' decides its own event; tell the "
                                             "simulator which with --outcome task=EVENT") as raised:
        CallSimulator(flow).run([])
    assert [s.widget for s in raised.value.result.steps] == ["Trigger"]
    result = CallSimulator(flow).run([], outcomes={"task": "success"})
    assert [s.widget for s in result.steps] == ["Trigger", "task", "bye"]


def test_an_unreadable_time_or_unknown_filter_is_named_not_crashed_on():
    flow = definition("t", trigger(incomingCall="hours"),
                      {"name": "hours", "type": "split-based-on", "properties": {"input": "noon"},
                       "transitions": [{"event": "noMatch"}, {"event": "match", "conditions": [
                           {"friendly_name": "f", "type": "is_before_time", "value": "12:00"}]}]})
    with pytest.raises(CannotSimulate, match="widget hours: cannot read 'noon' and '12:00' as times"):
        CallSimulator(flow).run([])
    flow = definition("f", trigger(incomingCall="hi"), say("hi", "{{ trigger.call.From | shout }}"))
    with pytest.raises(CannotSimulate, match="widget hi: Liquid cannot render .*unknown filter 'shout'"):
        CallSimulator(flow).run([])


def write(tmp_path, flow) -> str:
    path = tmp_path / "flow.json"
    path.write_text(json.dumps(flow))
    return str(path)


def test_simulate_a_messaging_flow_from_the_command(capsys, tmp_path):
    flow, _ = CORPUS["sms_survey"]
    code, out, _ = run(capsys, "simulate", write(tmp_path, flow), "--message", "hi",
                               "--reply", "yes", "--reply", "9")
    assert code == 0 and out.splitlines() == [
        "[Trigger] incoming message",
        "[q_recommend] sends to +14155550123: “Would you recommend us? Reply YES or NO.”",
        "[q_recommend] reply: “yes” -> incomingMessage",
        "[check_recommend] branch: match (If value matches_any_of yes,y,yeah)",
        "[q_score] sends to +14155550123: “From 1 to 10, how was it?”",
        "[q_score] reply: “9” -> incomingMessage",
        "[check_score] branch: noMatch",
        "[thanks] sends to +14155550123: “Thank you!” -> sent",
        "outcome: ended"]


def test_simulate_says_what_it_cannot_play_and_exits_3(capsys, tmp_path):
    flow = definition("chat", trigger(incomingCall="task"), widget("task", "create-task", {"success": None}))
    code, out, _ = run(capsys, "simulate", write(tmp_path, flow), "--json")
    report = json.loads(out)
    assert code == 3 and report["cannot_simulate"].startswith("widget task: type 'create-task'")
    code, out, _ = run(capsys, "simulate", write(tmp_path, flow), "--outcome", "task=success")
    assert code == 0 and "[task] create-task -> success (chosen with --outcome)" in out


def test_simulate_a_rest_flow_with_data_outcomes_and_outputs(capsys, tmp_path):
    flow, _ = CORPUS["outbound_voice_message"]
    code, out, _ = run(capsys, "simulate", write(tmp_path, flow), "--data", "message=Shipped.",
                               "--outcome", "call_user=busy")
    assert code == 0 and out.splitlines()[0] == "[Trigger] execution started by a REST API request"
    assert "[text_user] sends to +14155550123: “We tried to call you: Shipped.”" in out
    flow, _ = CORPUS["vip_function"]
    code, out, _ = run(capsys, "simulate", write(tmp_path, flow), "--output", "is_vip.parsed.vip=true")
    assert code == 0 and "dials +14155550130" in out


@pytest.mark.parametrize("name, argv, expected", [
    ("vip_function", ["--outcome", "nobody=success"], "there is no widget 'nobody' in the flow"),
    ("vip_function", ["--outcome", "is_vip=maybe"], "widget is_vip has no event 'maybe' (it has fail, success)"),
    ("vip_function", ["--outcome", "vip_split=match"],
     "widget vip_split is a split-based-on: its event follows from the flow"),
    ("vip_function", ["--output", "is_vip=1"], "--output 'is_vip=1': expected WIDGET.KEY=VALUE"),
    ("vip_function", ["--data", "novalue"], "--data 'novalue': expected NAME=VALUE"),
    ("whatsapp_menu", ["--press", "1"], "widget menu waits for reply, but the next input is keys '1'"),
])
def test_simulate_bad_choices_are_one_line(capsys, tmp_path, name, argv, expected):
    code, _, err = run(capsys, "simulate", write(tmp_path, CORPUS[name][0]), *argv)
    assert code == 1 and expected in err and len(err.strip().splitlines()) == 1


def test_inputs_no_widget_waited_for_are_reported(capsys, tmp_path):
    flow, _ = CORPUS["vip_function"]
    code, out, _ = run(capsys, "simulate", write(tmp_path, flow), "--reply", "yes")
    assert code == 0 and "not used: reply “yes” (no widget waited for it)" in out


def test_a_flow_that_starts_only_on_messages_is_not_played_as_a_call(capsys, tmp_path):
    flow, _ = CORPUS["sms_survey"]
    code, out, _ = run(capsys, "simulate", write(tmp_path, flow))
    assert code == 0 and out.startswith("[Trigger] incoming message")
    both = definition("two", trigger(incomingMessage="a", incomingRequest="a"), say("a", "hi"))
    code, _, err = run(capsys, "simulate", write(tmp_path, both))
    assert code == 1 and "the flow starts on incomingMessage, incomingRequest: choose one with --trigger" in err


def test_validate_names_errors_studio_would_hit():
    flow = definition("broken", trigger(incomingCall="check"),
                      {"name": "check", "type": "split-based-on", "properties": {"input": "{{ x | "},
                       "transitions": [{"event": "noMatch", "next": "spin"}, {"event": "match", "conditions": [
                           {"friendly_name": "bad", "type": "regex", "value": "([0-9]"}]}]},
                      widget("spin", "set-variables", {"next": "spin"}, variables=[]))
    found = {p.what.split(" (")[0].split(":")[0]: p.warning for p in validate(flow)}
    assert found == {"Liquid `{{` is never closed in '{{ x | '": False, "the regex '([0-9]' is invalid": False,
                     "no path from here ever ends the execution": False}


def test_liquid_python_liquid_cannot_parse_is_a_warning():
    flow = definition("tags", trigger(incomingCall="hi"),
                      say("hi", "{% if trigger.call.From %}hello{% endif %}{% unknowntag %}"))
    (problem,) = validate(flow)
    assert problem.warning and problem.what.startswith("Liquid in ") and "does not parse" in problem.what


def test_a_loop_that_waits_for_the_caller_is_only_a_warning():
    flow = definition("loop", trigger(incomingCall="again"), say("again", "Still here.", "again"))
    (problem,) = validate(flow)
    assert problem.warning and "only the caller hanging up ends it" in problem.what


@pytest.mark.parametrize("kind", sorted(OTHER_TYPES))
def test_types_whose_events_are_unknown_are_accepted_and_played_with_an_outcome(kind):
    flow = definition("other", trigger(incomingMessage="task"), widget("task", kind, {"done": None}))
    assert validate(flow) == []
    assert CallSimulator(flow).run([], outcomes={"task": "done"}).steps[-1].event == "done"


@settings(max_examples=150, deadline=None)
@given(names=st.lists(st.text(min_size=1, max_size=12), min_size=2, max_size=6, unique=True),
       x=st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True)))
def test_any_widget_names_give_well_formed_svg_and_distinct_mermaid_ids(names, x):
    states = [widget(name, "say-play", {"audioComplete": following}, say=name, offset={"x": x, "y": 10})
              for name, following in zip(names, [*names[1:], None])]
    flow = {"initial_state": names[0], "states": states}
    root = ElementTree.fromstring(svg(flow))
    assert len(root.findall("{http://www.w3.org/2000/svg}rect[@class='widget']")) == len(names)
    ids = node_ids(FlowGraph(flow))
    assert len(set(ids.values())) == len(names)
    text = mermaid(flow)
    assert len(text.splitlines()) == 1 + len(names) + len(names) + 1  # header, nodes, edges, the end node


def test_validate_of_plain_liquid_does_not_load_the_liquid_parser(tmp_path):
    flow, _ = CORPUS["ivr_menu"]
    path = write(tmp_path, flow)
    program = ("import sys; from callmask.cli import main; code = main(['validate', sys.argv[1]]); "
               "print(code, 'liquid' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", program, path], capture_output=True, text=True, check=True)
    assert done.stdout.split()[-2:] == ["0", "False"]


def test_an_event_the_flow_does_not_handle_is_said_not_played(capsys, tmp_path):
    flow, _ = CORPUS["ivr_menu"]
    code, _, err = run(capsys, "simulate", write(tmp_path, flow), "--trigger", "incomingMessage")
    assert code == 1 and err.strip() == ("callmask: error: the flow does not handle incomingMessage: its trigger's "
                                         "incomingMessage has no next (it starts on incomingCall)")


def test_an_event_outside_a_confirmed_list_is_an_error_outside_an_unconfirmed_one_a_warning():
    flow, _ = CORPUS["pay_by_phone"]
    flow = json.loads(json.dumps(flow))
    for state in flow["states"]:
        if state["name"] in ("take_payment", "get_account"):
            state["transitions"].append({"event": "partialPayment"})
    found = {p.widget: p.warning for p in validate(flow) if "has no event 'partialPayment'" in p.what}
    assert found == {"get_account": False, "take_payment": True}


@st.composite
def generated_flows(draw):
    """Flows of any shape from the widget library: every event listed, each `next` to any widget or none."""
    kinds = sorted(set(WIDGET_EVENTS) - {"trigger"})
    count = draw(st.integers(1, 12))
    names = [f"w{index}" for index in range(count)]
    target = st.one_of(st.none(), st.sampled_from(names))
    states = [widget("Trigger", "trigger", {event: draw(target) for event in TRIGGER_EVENTS})]
    for name in names:
        kind = draw(st.sampled_from(kinds))
        if kind == "split-based-on":
            branches = [(draw(target), draw(st.sampled_from(["equal_to", "regex", "contains", "is_blank"])),
                         draw(st.sampled_from(["1", "a.*", "", "yes"]))) for _ in range(draw(st.integers(0, 3)))]
            states.append(split(name, "{{widgets.w0.Digits}}", draw(target), *branches))
        else:
            states.append(widget(name, kind, {event: draw(target) for event in WIDGET_EVENTS[kind]},
                                 say="hi {{flow.variables.x}}", body="b", to="+1{{trigger.call.From}}"))
    return definition("generated", *states)


@settings(max_examples=300, deadline=None)
@given(flow=generated_flows(), presses=st.lists(st.sampled_from(["1", "yes", ""]), max_size=3),
       trigger_event=st.sampled_from(TRIGGER_EVENTS))
def test_any_generated_flow_validates_draws_and_simulates_without_a_false_error(flow, presses, trigger_event):
    errors = [p.what for p in validate(flow) if not p.warning]
    assert all(what.startswith("no path from here ever ends the execution") for what in errors), errors
    edges = [t for s in flow["states"] for t in s["transitions"] if t.get("next") or s["type"] != "trigger"]
    assert len(re.findall(r"^    \S+ -\.?->\|", mermaid(flow), re.MULTILINE)) == len(edges)
    ElementTree.fromstring(svg(flow))
    try:
        CallSimulator(flow).run(presses, trigger=trigger_event)
    except CannotSimulate:
        pytest.fail("every widget of the library with known events can be played")
    except SimulationError as error:  # a loop past the step limit, an input the flow cannot take, an unwired trigger
        assert re.search(r"loops|waits for|does not handle", str(error)), error
