"""Offline checks of a rendered Studio definition: structure, Studio's vocabulary, Liquid references,
and the security of the call path (dialing only after a matched PIN and a matched number)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from callmask.studio.flow_graph import (
    DIGITS_REFERENCE,
    WIDGET_REFERENCE,
    FlowGraph,
    conditions,
    listed,
)
from callmask.studio.flow_template import strings_in
from callmask.studio.widget_library import (
    CONDITION_TYPES,
    JSON_TYPE_NAMES,
    OPTIONAL_EVENTS,
    PROPERTY_TYPES,
    RETIRED_TYPES,
    UNCONFIRMED_EVENT_LISTS,
    WIDGET_EVENTS,
    WIDGET_TYPES,
    has_studio_type,
)

# Liquid output of a path or literal through simple filters (`{{widgets.a.Digits | remove: "*"}}`) is well
# formed by this grammar and needs no parser; anything else is parsed by python-liquid.
LIQUID = re.compile(r"\{\{|\{%")
_PATH = r"[A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*|\[\d+\])*"
_VALUE = rf"""(?:"[^"{{}}]*"|'[^'{{}}]*'|-?\d+(?:\.\d+)?|{_PATH})"""
_FILTER = rf"\|\s*[A-Za-z_][\w-]*\s*(?::\s*{_VALUE}\s*(?:,\s*{_VALUE}\s*)*)?"
SIMPLE_OUTPUT = re.compile(rf"\{{\{{-?\s*{_VALUE}\s*(?:{_FILTER})*-?\}}\}}")
# Widgets that run without waiting for anyone: a loop of only these never ends.
INSTANT_TYPES = {"split-based-on", "set-variables"}
# A TwiML Redirect waits four hours by default; the line's PIN check must hand back the call far sooner.
DEFAULT_REDIRECT_TIMEOUT = 14400
MAX_PIN_CHECK_TIMEOUT = 600


@dataclass(frozen=True)
class Problem:
    widget: str
    what: str
    fix: str
    warning: bool = False  # doubtful, but Studio accepts it and the call goes on

    def line(self, source: str) -> str:
        return f"{source}: {'warning: ' if self.warning else ''}{self.widget}: {self.what}. Fix: {self.fix}."


def validate(definition: Any, pin_length: int | None = None, pins: list[str] | tuple[str, ...] | None = None
             ) -> list[Problem]:
    """Every problem found, in a stable order. The structural checks apply to any flow; the dial-out
    rules (PIN gate, allowed destinations, PINs only where they belong) only when the line's `pins` are
    given: the stack's own flow, or where the user asks for them."""
    if shape := shape_problems(definition):
        return shape
    graph = FlowGraph(definition, pins)
    checks = GENERIC_CHECKS + (DIAL_OUT_CHECKS if pins is not None else ())
    return [problem for check in checks for problem in check(graph, pin_length)]


def shape_problems(definition: Any) -> list[Problem]:
    """Problems that make a document unreadable as a flow; the other checks need none of these."""
    if not isinstance(definition, dict) or not isinstance(definition.get("states"), list):
        return [Problem("(flow)", "not a Studio definition (no `states` list)", "give a flow definition JSON object")]
    problems = []
    for index, state in enumerate(definition["states"]):
        if not isinstance(state, dict):
            problems.append(Problem(f"states[{index}]", "is not an object", "make every state a widget object"))
            continue
        name = state.get("name") if isinstance(state.get("name"), str) else f"states[{index}]"
        expected = {"name": str, "type": str, "transitions": list, "properties": dict}
        for key, kind in expected.items():
            if not isinstance(state.get(key), kind):
                problems.append(Problem(name, f"`{key}` is missing or not a {kind.__name__}",
                                        f"give the widget a `{key}` ({kind.__name__})"))
        if isinstance(state.get("transitions"), list) and not all(map(_well_shaped, state["transitions"])):
            problems.append(Problem(name, "a transition is not an object with an `event` text, an optional `next` "
                                    "text and an optional `conditions` list of objects",
                                    "write transitions as {\"event\": ..., \"next\": ...}"))
        offset = state.get("properties", {}).get("offset") if isinstance(state.get("properties"), dict) else None
        if offset is not None and not (isinstance(offset, dict) and all(
                isinstance(offset.get(axis, 0), (int, float)) and not isinstance(offset.get(axis, 0), bool)
                for axis in ("x", "y"))):
            problems.append(Problem(name, "`properties.offset` is not {x: number, y: number}",
                                    "give the widget's canvas position as numbers"))
    if not isinstance(definition.get("initial_state"), str):
        problems.append(Problem("(flow)", "`initial_state` is missing or not text", "name the trigger widget"))
    return problems


def _well_shaped(transition: Any) -> bool:
    return (isinstance(transition, dict) and isinstance(transition.get("event"), str)
            and isinstance(transition.get("next"), (str, type(None)))
            and isinstance(transition.get("conditions", []), (list, type(None)))
            and all(isinstance(c, dict) for c in listed(transition.get("conditions"))))


def _structure(graph: FlowGraph, _pin_length: int | None) -> Iterator[Problem]:
    if graph.initial not in graph.by_name:
        yield Problem("(flow)", f"initial_state {graph.initial!r} names no widget",
                      "set initial_state to the name of the trigger widget")
    for name, count in Counter(s.get("name") for s in graph.states).items():
        if count > 1:
            yield Problem(str(name), f"{count} widgets share this name", "give every widget a unique name")
    for edge in graph.edges:
        if edge.target is not None and edge.target not in graph.by_name:
            yield Problem(edge.source, f"the {edge.event!r} transition goes to {edge.target!r}, which does not exist",
                          "point `next` at an existing widget, or remove `next` to end the call there")
    reachable = graph.reachable()
    if graph.initial in graph.by_name:
        for state in graph.states:
            if state.get("name") not in reachable:
                yield Problem(str(state.get("name")), "no transition leads here, so it never runs",
                              "connect it from another widget or delete it", warning=True)


def _vocabulary(graph: FlowGraph, _pin_length: int | None) -> Iterator[Problem]:
    for state in graph.states:
        name, kind = str(state.get("name")), state.get("type")
        if kind not in WIDGET_TYPES:
            yield Problem(name, f"unknown widget type {kind!r}", "use a Studio widget type such as say-play")
            continue
        if kind in RETIRED_TYPES:
            year, replaced = RETIRED_TYPES[kind]
            yield Problem(name, f"{kind} is a retired widget type (retired by Twilio in {year}): it no longer runs",
                          replaced, warning=True)
        properties = state.get("properties") or {}
        for key, expected in PROPERTY_TYPES.get(str(kind), {}).items():
            if key in properties and not has_studio_type(properties[key], expected):
                yield Problem(name, f"property {key} is {_json_type(properties[key])}, but Studio writes "
                              f"{JSON_TYPE_NAMES[expected]} there", f"write {key} as {JSON_TYPE_NAMES[expected]}"
                              + (f", e.g. \"{properties[key]}\"" if expected is str and isinstance(
                                  properties[key], int) else ""))
        events = [t.get("event") for t in listed(state.get("transitions")) if isinstance(t, dict)]
        for event in events:
            if kind in WIDGET_EVENTS and event not in WIDGET_EVENTS[kind]:
                yield Problem(name, f"{kind} has no event {event!r}",
                              f"use one of {', '.join(sorted(WIDGET_EVENTS[kind]))}",
                              warning=kind in UNCONFIRMED_EVENT_LISTS)
        for event in unlisted_events(state):
            yield Problem(name, f"the {event!r} event is not listed (it then ends the execution)",
                          "list every event of the widget, without `next` where the call should end", warning=True)
        for condition in conditions(state):
            if condition.get("type") not in CONDITION_TYPES:
                yield Problem(name, f"unknown split condition type {condition.get('type')!r}",
                              "use a Studio condition such as equal_to, matches_any_of or regex")
            elif condition.get("type") == "regex" and not LIQUID.search(str(condition.get("value", ""))):
                try:
                    re.compile(str(condition.get("value", "")))
                except re.error as error:
                    yield Problem(name, f"the regex {str(condition.get('value'))[:60]!r} is invalid ({error})",
                                  "write a regular expression that compiles")


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return "text"
    return "a list" if isinstance(value, list) else "an object" if isinstance(value, dict) else "null"


def unlisted_events(state: dict[str, Any]) -> list[str]:
    """The widget's events its transitions leave out (Studio ends the execution on them)."""
    events = {t.get("event") for t in listed(state.get("transitions")) if isinstance(t, dict)}
    return [e for e in WIDGET_EVENTS.get(str(state.get("type")), ()) if e not in OPTIONAL_EVENTS and e not in events]


def _liquid_syntax(graph: FlowGraph, _pin_length: int | None) -> Iterator[Problem]:
    """An output or tag never closed breaks the widget at run time: an error. What python-liquid cannot
    parse beyond that is a warning, since its parser is stricter than Studio's in places (`a.limit`).
    The parser is loaded only for text with more than simple outputs."""
    environment = None
    for state in graph.states:
        for text in strings_in(state):
            if not LIQUID.search(text):
                continue
            if opening := _unclosed(text):
                yield Problem(str(state.get("name")), f"Liquid `{opening}` is never closed in {text[:60]!r}",
                              "close every {{ with }} and every {% with %}")
                break
            if not LIQUID.search(SIMPLE_OUTPUT.sub("", text)):
                continue
            if environment is None:
                from liquid import Environment
                from liquid.exceptions import LiquidError
                environment = Environment()
            try:
                environment.parse(text)
            except LiquidError as error:
                yield Problem(str(state.get("name")), f"Liquid in {text[:60]!r} does not parse "
                              f"({str(error).splitlines()[0]}), so it cannot be simulated",
                              "check the tags and filters against Studio's Liquid", warning=True)
                break


def _unclosed(text: str) -> str | None:
    """The first `{{` or `{%` with no closing `}}` or `%}` after it."""
    for opening, closing in (("{{", "}}"), ("{%", "%}")):
        start = text.find(opening)
        while start != -1:
            end = text.find(closing, start + 2)
            if end == -1:
                return opening
            start = text.find(opening, end + 2)
    return None


def _endless(graph: FlowGraph, _pin_length: int | None) -> Iterator[Problem]:
    """Widgets from which no transition ever ends the execution. Studio would loop forever through
    widgets that wait for no one; elsewhere only the caller hanging up ends it."""
    can_end = {e.source for e in graph.edges if e.target is None or e.target not in graph.by_name}
    can_end |= {str(s.get("name")) for s in graph.states if unlisted_events(s)}
    pending = list(can_end)
    while pending:
        for source in graph.predecessors.get(pending.pop(), []):
            if source not in can_end:
                can_end.add(source)
                pending.append(source)
    stuck = [s for s in graph.states if s.get("name") in graph.reachable() and s.get("name") not in can_end]
    if stuck:
        names = ", ".join(str(s.get("name")) for s in stuck[:5]) + (" …" if len(stuck) > 5 else "")
        instant = all(s.get("type") in INSTANT_TYPES for s in stuck)
        yield Problem(str(stuck[0].get("name")),
                      f"no path from here ever ends the execution ({names})"
                      + ("" if instant else ": only the caller hanging up ends it"),
                      "give the loop a way out: a transition without `next`, or to a widget that ends",
                      warning=not instant)


def _liquid_references(graph: FlowGraph, _pin_length: int | None) -> Iterator[Problem]:
    reachable = graph.reachable()
    for state in graph.states:
        name = str(state.get("name"))
        referenced = sorted({m for text in strings_in(state) for m in WIDGET_REFERENCE.findall(text)})
        for target in referenced:
            if target not in graph.by_name:
                yield Problem(name, f"Liquid refers to widgets.{target}, which does not exist",
                              "refer to an existing widget's output")
            elif name in reachable and not graph.strictly_dominates(target, name):
                yield Problem(name, f"Liquid refers to widgets.{target}, which does not always run before it "
                              "(Studio then renders it empty)",
                              f"refer only to widgets every path passes through before {name}", warning=True)


def _pin_gather(graph: FlowGraph, pin_length: int | None) -> Iterator[Problem]:
    for check in graph.literal_pin_checks:
        gather = graph.by_name.get(graph.digits_source(check) or "")
        if gather is None or gather.get("type") != "gather-input-on-call":
            yield Problem(str(check.get("name")), "the PIN check does not examine a gather widget's Digits",
                          "set its input to {{widgets.<pin gather>.Digits}}")
            continue
        pins = graph.pins_of(check)
        expected = pin_length if pin_length is not None else len(pins[0])
        digits = gather.get("properties", {}).get("number_of_digits")
        if digits != expected:
            yield Problem(str(gather.get("name")), f"number_of_digits is {digits!r} but PINs have {expected} digits",
                          "set number_of_digits to pinLength")
        if any(len(pin) != expected for pin in pins):
            yield Problem(str(check.get("name")), f"not every PIN has {expected} digits", "make every PIN pinLength long")


def _call_path_security(graph: FlowGraph, _pin_length: int | None) -> Iterator[Problem]:
    dials = [s for s in graph.of_type("connect-call-to") if s.get("name") in graph.reachable()]
    guards = (("PIN", graph.pin_checks), ("number", graph.number_checks))
    number_sources = {graph.digits_source(check) for check in graph.number_checks}
    for dial in dials:
        name = str(dial.get("name"))
        for label, checks in guards:
            cut = frozenset(e for check in checks for e in graph.pass_edges(check))
            if name in graph.reachable(without=cut):
                yield Problem(name, f"can be reached without a matched {label} check",
                              f"let the only way to {name} go through the `match` of the {label} check")
        target = DIGITS_REFERENCE.search(str(dial.get("properties", {}).get("to", "")))
        if not target or target.group(1) not in number_sources:
            yield Problem(name, "`to` does not dial the digits that the number check examined",
                          "set `to` to +{{widgets.<number gather>.Digits}}")


def _pin_literals(graph: FlowGraph, _pin_length: int | None) -> Iterator[Problem]:
    pins = graph.known_pins or set(graph.pins())
    if not pins:
        return
    for state in graph.states:
        if state in graph.literal_pin_checks:  # its condition values are where the PINs belong
            state = {**state, "transitions": [
                {**t, "conditions": [{k: v for k, v in c.items() if k != "value"} for c in listed(t.get("conditions"))]}
                for t in state["transitions"]]}
        if any(pin in text for text in strings_in(state) for pin in pins):
            yield Problem(str(state.get("name")), "a PIN appears outside the PIN condition",
                          "keep PINs only in the PIN check's condition value")


def _pin_readback(graph: FlowGraph, _pin_length: int | None) -> Iterator[Problem]:
    """Only the PIN check may read what the caller keyed at the PIN gather: anything else would speak it,
    send it or pass it on (and Studio would keep it in more places)."""
    gathers = {graph.digits_source(check) for check in graph.literal_pin_checks} - {None}
    for state in graph.states:
        if state in graph.literal_pin_checks:
            continue
        read = sorted(gathers & {m for text in strings_in(state) for m in WIDGET_REFERENCE.findall(text)})
        for gather in read:
            yield Problem(str(state.get("name")), f"reads the PIN gather widgets.{gather} (the caller's PIN)",
                          f"refer to widgets.{gather} only in the PIN check")


def _pin_function(graph: FlowGraph, _pin_length: int | None) -> Iterator[Problem]:
    """A PIN checked by a Function: the flow hands it the call with a TwiML Redirect that comes back soon,
    over https, with the way back (the flow's SID) in its URL, and reads its verdict right away."""
    for check in graph.verdict_checks:
        redirect = graph.verdict_source(check) or {}
        name, props = str(redirect.get("name")), redirect.get("properties") or {}
        timeout = str(props.get("timeout", DEFAULT_REDIRECT_TIMEOUT)).strip()
        if not timeout.isdigit() or not 0 < int(timeout) <= MAX_PIN_CHECK_TIMEOUT:
            yield Problem(name, f"timeout is {timeout or 'empty'} (Studio's default is {DEFAULT_REDIRECT_TIMEOUT} s, "
                          "four hours): an execution whose Function never answers would wait that long",
                          f"set timeout to at most {MAX_PIN_CHECK_TIMEOUT} seconds")
        url = str(props.get("url", ""))
        if not url.startswith("https://"):
            yield Problem(name, "the PIN-check URL is not https (the call's keypresses would travel in clear)",
                          "give the Function's https:// URL")
        if "flowSid={{flow.flow_sid}}" not in url.replace(" ", ""):
            yield Problem(name, "the URL does not pass flowSid={{flow.flow_sid}}, so the Function cannot return "
                          "the verdict to this flow", "append ?flowSid={{flow.flow_sid}} to the URL")
        back = next((t.get("next") for t in listed(redirect.get("transitions")) if t.get("event") == "return"), None)
        if back != check.get("name"):
            yield Problem(name, f"the return transition goes to {back!r}, not to the verdict check "
                          f"{check.get('name')}", f"point return at {check.get('name')}")
        if not graph.pass_edges(check):
            yield Problem(str(check.get("name")), "no branch matches exactly the verdict ok, so no PIN ever passes",
                          "add a match branch: equal_to ok")


GENERIC_CHECKS = (_structure, _vocabulary, _liquid_syntax, _liquid_references, _endless)
DIAL_OUT_CHECKS = (_pin_gather, _pin_function, _call_path_security, _pin_literals, _pin_readback)
