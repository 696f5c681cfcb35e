"""What callmask hands Twilio is what Twilio's own tools write: URLs with their query parameters in sorted
order (signature-safe), every widget property in the JSON type Studio's exports use, and retired widget
types named as such."""

from __future__ import annotations

import copy
import dataclasses
from urllib.parse import parse_qsl, urlsplit

import pytest
from callmask.studio.call_simulation import CallSimulator, CannotSimulate
from callmask.studio.flow_diagram import draw
from callmask.studio.flow_template import strings_in
from callmask.studio.flow_validation import validate
from callmask.config.stack_config import stack_names
from callmask.studio.widget_library import PROPERTY_TYPES, has_studio_type
from conftest import TEST_PINS
from flow_fixtures import rendered, stack_settings, widget
from studio_corpus import CORPUS

BOTH_MODES = [(stack, mode) for stack in stack_names() for mode in ("studio", "function")]


def rendered_in(stack: str, pin_check: str) -> dict:
    """The stack's flow as rendered with either PIN check (each template, with the stack's values)."""
    from callmask.line.flow_gate import stack_definition
    from callmask.studio.flow_template import flow_file, load_template

    settings = dataclasses.replace(stack_settings(stack), pin_check=pin_check)
    return stack_definition(settings, load_template(flow_file(pin_check)))


def query_keys(url: str) -> list[str]:
    return [key for key, _ in parse_qsl(urlsplit(url).query, keep_blank_values=True)]


@pytest.mark.parametrize("stack, pin_check", BOTH_MODES)
def test_every_url_in_a_rendered_flow_has_sorted_query_parameters(stack, pin_check):
    urls = [text for text in strings_in(rendered_in(stack, pin_check)) if "://" in text and "?" in text]
    assert urls or pin_check == "studio", "the function-mode flow redirects to the Function with a query"
    for url in urls:
        assert query_keys(url) == sorted(query_keys(url)), f"{url}: parameters out of order"


@pytest.mark.parametrize("stack, pin_check", BOTH_MODES)
def test_render_types_every_property_as_studio_writes_it(stack, pin_check):
    definition = rendered_in(stack, pin_check)
    checked = 0
    for state in definition["states"]:
        for key, kind in PROPERTY_TYPES.get(state["type"], {}).items():
            if key in state["properties"]:
                checked += 1
                assert has_studio_type(state["properties"][key], kind), (state["name"], key, state["properties"][key])
    assert checked >= 20
    if pin_check == "function":
        assert widget(definition, "check_pin")["properties"]["timeout"] == str(
            stack_settings(stack).pin_check_timeout), "a TwiML Redirect's timeout is text, as Studio exports it"
    else:
        assert widget(definition, "gather_pin")["properties"]["number_of_digits"] == 8


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_the_corpus_is_typed_as_studio_exports_it(name):
    definition, _ = CORPUS[name]
    assert not [p for p in validate(definition) if "Studio writes" in p.what]


WRONG_TYPES = [
    ("prod", "check_pin", "timeout", 110, "check_pin: property timeout is the number 110, but Studio writes text "
                                          "there. Fix: write timeout as text, e.g. \"110\""),
    ("dev", "gather_pin", "number_of_digits", "eight", "gather_pin: property number_of_digits is text, but Studio "
                                                       "writes a number there"),
    ("dev", "connect_call", "record", "false", "connect_call: property record is text, but Studio writes true or "
                                               "false there"),
    ("dev", "say_goodbye", "loop", True, "say_goodbye: property loop is true or false, but Studio writes a number"),
]


@pytest.mark.parametrize("stack, name, key, value, expected", WRONG_TYPES, ids=[f"{w[1]}.{w[2]}" for w in WRONG_TYPES])
def test_validate_names_a_property_of_the_wrong_type(stack, name, key, value, expected):
    definition = rendered(stack)
    widget(definition, name)["properties"][key] = value
    lines = [p.line("flow") for p in validate(definition, 8, TEST_PINS) if not p.warning]
    assert any(expected in line for line in lines), lines


def test_liquid_stands_for_any_type():
    definition = rendered("dev")
    widget(definition, "gather_pin")["properties"]["timeout"] = "{{flow.variables.wait}}"
    assert not [p for p in validate(definition, 8, TEST_PINS) if "Studio writes" in p.what]


def autopilot_flow() -> dict:
    """A real export's shape: a call handed to an Autopilot assistant, retired by Twilio in 2023."""
    definition = copy.deepcopy(CORPUS["ivr_menu"][0])
    first = definition["states"][0]["transitions"][1]
    bot = {"name": "send_to_bot", "type": "send-to-auto-pilot",
           "transitions": [{"event": "sessionEnded"}, {"event": "failure"}, {"event": "timeout"}],
           "properties": {"chat_channel": "{{trigger.message.ChannelSid}}", "autopilot_assistant_sid": "UA" + "0" * 32,
                          "target_task": "greeting", "timeout": 14400, "offset": {"x": 0, "y": 900}}}
    first["next"] = "send_to_bot"
    definition["states"].append(bot)
    return definition


def test_a_retired_widget_is_named_with_its_year_and_replacement_and_the_tools_work_around_it():
    definition = autopilot_flow()
    found = [p for p in validate(definition) if p.widget == "send_to_bot"]
    assert [p.warning for p in found] == [True]
    assert "send-to-auto-pilot is a retired widget type (retired by Twilio in 2023)" in found[0].what
    assert "Connect Virtual Agent" in found[0].fix and "unknown widget type" not in found[0].what
    assert "send_to_bot" in draw(definition, "mermaid") and "<svg" in draw(definition, "svg")
    with pytest.raises(CannotSimulate, match="retired by Twilio in 2023"):
        CallSimulator(definition).run([])
    assert CallSimulator(definition).run([], outcomes={"send_to_bot": "sessionEnded"}).outcome == "ended"


# ---- the picture a reviewer looks at ----
SVG = "{http://www.w3.org/2000/svg}"
PICTURES = [(name, flow) for name, (flow, _) in sorted(CORPUS.items())] + \
    [(f"stack {stack}", rendered(stack)) for stack in stack_names()]


def boxes(root, kind: str) -> list[tuple[float, float, float, float]]:
    return [tuple(float(r.get(k)) for k in ("x", "y", "width", "height")) for r in root.iter(f"{SVG}rect")
            if r.get("class") == kind]


def overlap(a, b) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def on_border(point, box, slack: float = 1.0) -> bool:
    x, y = point
    inside = box[0] - slack <= x <= box[0] + box[2] + slack and box[1] - slack <= y <= box[1] + box[3] + slack
    near = min(abs(x - box[0]), abs(x - box[0] - box[2]), abs(y - box[1]), abs(y - box[1] - box[3])) <= slack
    return inside and near


@pytest.mark.parametrize("name, flow", PICTURES, ids=[name for name, _ in PICTURES])
def test_the_svg_shows_prompts_arrowheads_on_borders_ends_and_no_label_on_a_box(name, flow):
    from xml.etree import ElementTree

    root = ElementTree.fromstring(draw(flow, "svg"))
    widgets, labels = boxes(root, "widget"), boxes(root, "label")
    assert len(widgets) == len(flow["states"])
    for index, label in enumerate(labels):
        assert not any(overlap(label, box) for box in widgets), f"a label sits on a widget in {name}"
        assert not any(overlap(label, other) for other in labels[index + 1:]), f"labels overlap in {name}"
    ends = [(float(c.get("cx")), float(c.get("cy"))) for c in root.iter(f"{SVG}circle") if c.get("class") == "end"]
    for line in (e for e in root.iter(f"{SVG}line") if e.get("class") == "edge"):
        start, end = (float(line.get("x1")), float(line.get("y1"))), (float(line.get("x2")), float(line.get("y2")))
        assert line.get("marker-end") == "url(#arrow)"
        assert any(on_border(start, box, 7) for box in widgets), f"an edge starts inside a widget in {name}"
        assert any(on_border(end, box, 7) for box in widgets) or any(
            abs(((end[0] - cx) ** 2 + (end[1] - cy) ** 2) ** 0.5 - 11) < 1 for cx, cy in ends), \
            f"an arrowhead is hidden under a box in {name}"
    ending = {s["name"] for s in flow["states"] if s["type"] != "trigger" and any(
        "next" not in t for t in s["transitions"])}
    assert len(ends) == len(ending), "every widget with an event that ends the call has an end marker"
    summaries = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "summary"]
    said = [s for s in flow["states"] if s["type"] == "say-play" and s["properties"].get("say")]
    assert len(summaries) >= len(said) and all(any(
        s["properties"]["say"].startswith(text.rstrip("…")) for text in summaries) for s in said)


def test_the_functions_packages_are_pinned_alike_in_package_json_the_lock_file_and_the_build():
    import json

    from callmask.function.pin_function import FUNCTIONS_DIR, build_dependencies

    package = json.loads((FUNCTIONS_DIR / "package.json").read_text())["dependencies"]
    locked = json.loads((FUNCTIONS_DIR / "package-lock.json").read_text())["packages"]
    assert package["twilio"].startswith("6.") and "@twilio/runtime-handler" in package
    for name, version in package.items():
        assert locked[f"node_modules/{name}"]["version"] == version, f"{name} differs in the lock file"
    assert build_dependencies() == [{"name": name, "version": version} for name, version in sorted(package.items())]
