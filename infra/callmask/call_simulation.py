"""Walks one call through a rendered Studio definition the way Studio would, without a phone.

Liquid is rendered with python-liquid; splits follow Studio's documented semantics (trimmed,
case-insensitive; `regex` must match the whole input; `matches_any_of` takes a comma list); gathers
stop at `number_of_digits` or `finish_on_key`, and time out when the caller has nothing more to press.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Callable


from callmask.flow_graph import FlowGraph, split_list

MAX_STEPS = 200
DIAL_STATUSES = ("completed", "answered", "busy", "no-answer", "failed", "canceled")
DEFAULT_CALLER = "+14155550123"
DEFAULT_LINE_NUMBER = "+15005550006"


class SimulationError(Exception):
    pass


@dataclass
class Step:
    widget: str
    type: str
    event: str | None
    say: str | None = None
    digits: str | None = None
    dial: dict[str, str] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None or key == "event"}


@dataclass
class CallResult:
    steps: list[Step] = field(default_factory=list)
    outcome: str = "ended"
    dialed: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"steps": [s.as_dict() for s in self.steps], "outcome": self.outcome, "dialed": self.dialed}


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _compare(value: str, kind: str, target: str) -> bool:
    value, target = value.strip().lower(), target.strip().lower()
    tests: dict[str, Callable[[], bool]] = {
        "equal_to": lambda: value == target,
        "not_equal_to": lambda: value != target,
        "matches_any_of": lambda: value in {item.lower() for item in split_list(target)},
        "does_not_match_any_of": lambda: value not in {item.lower() for item in split_list(target)},
        "is_blank": lambda: value == "",
        "is_not_blank": lambda: value != "",
        "regex": lambda: re.fullmatch(target, value, re.IGNORECASE) is not None,
        "contains": lambda: target in value,
        "does_not_contain": lambda: target not in value,
        "starts_with": lambda: value.startswith(target),
        "does_not_start_with": lambda: not value.startswith(target),
        "less_than": lambda: None not in (_number(value), _number(target)) and _number(value) < _number(target),
        "greater_than": lambda: None not in (_number(value), _number(target)) and _number(value) > _number(target),
    }
    if kind not in tests:
        raise SimulationError(f"split condition {kind!r} is not simulated")
    return tests[kind]()


class CallSimulator:
    """Built once per definition (templates compiled once), then `run` for each call."""

    def __init__(self, definition: dict[str, Any], line_number: str = DEFAULT_LINE_NUMBER):
        self.graph = FlowGraph(definition)
        self.line_number = line_number
        self.liquid = None  # python-liquid loads on the first template: validate and diagram never need it
        self.templates: dict[str, Any] = {}
        self.pin_checks = {s["name"] for s in self.graph.pin_checks}
        self.number_checks = {s["name"] for s in self.graph.number_checks}

    def render(self, text: Any, context: dict[str, Any]) -> str:
        text = str(text if text is not None else "")
        if "{" not in text:
            return text
        if text not in self.templates:
            if self.liquid is None:
                from liquid import Environment
                self.liquid = Environment()
            self.templates[text] = self.liquid.from_string(text)
        return self.templates[text].render(**context)

    def run(self, presses: list[str], dial_status: str = "completed", hangup: bool = False,
            caller: str = DEFAULT_CALLER) -> CallResult:
        if dial_status not in DIAL_STATUSES:
            raise SimulationError(f"dial status {dial_status!r} is not one of {', '.join(DIAL_STATUSES)}")
        context = {"trigger": {"call": {"From": caller, "Caller": caller, "To": self.line_number,
                                        "Called": self.line_number}},
                   "flow": {"channel": {"address": self.line_number}, "data": {}, "variables": {}},
                   "contact": {"channel": {"address": caller}}, "widgets": {}}
        pending, result = list(presses), CallResult()
        current = self.graph.initial
        while current is not None:
            if len(result.steps) >= MAX_STEPS:
                raise SimulationError(f"the call did not end after {MAX_STEPS} widgets: the flow loops")
            state = self.graph.by_name.get(current)
            if state is None:
                raise SimulationError(f"the flow moves to {current!r}, which does not exist")
            step = self.step(state, context, pending, result, dial_status, hangup)
            result.steps.append(step)
            if step.event is None:  # the caller hung up
                result.outcome = "hangup"
                break
            current = next((t.get("next") for t in state.get("transitions") or [] if t.get("event") == step.event), None)
        return result

    def step(self, state, context, pending, result, dial_status, hangup) -> Step:
        name, kind, props = state["name"], state.get("type"), state.get("properties", {})
        step = Step(name, kind, None)
        if kind == "trigger":
            step.event = "incomingCall"
        elif kind == "say-play":
            step.say, step.event = self.render(props.get("say"), context), "audioComplete"
        elif kind == "gather-input-on-call":
            step.say = self.render(props.get("say"), context)
            if not pending and hangup:
                return step
            digits = gather(props, pending.pop(0) if pending else "")
            context["widgets"][name] = {"Digits": digits}
            step.digits, step.event = digits, "keypress" if digits else "timeout"
            if not digits and result.outcome == "ended":
                result.outcome = "no_input"
        elif kind == "split-based-on":
            step.event = self.split(state, context)
            if step.event == "noMatch" and result.outcome == "ended":
                if name in self.pin_checks:
                    result.outcome = "rejected_pin"
                elif name in self.number_checks:
                    result.outcome = "rejected_number"
        elif kind == "connect-call-to":
            to, caller_id = self.render(props.get("to"), context), self.render(props.get("caller_id"), context)
            step.dial = {"to": to, "caller_id": caller_id}
            context["widgets"][name] = {"DialCallStatus": dial_status}
            step.event = "hangup" if hangup else "callCompleted"
            # Twilio ends the dial with callCompleted whatever the callee did; DialCallStatus tells.
            answered = dial_status in ("completed", "answered")
            result.outcome, result.dialed = "connected" if answered else f"callee_{dial_status}", to
        else:
            raise SimulationError(f"widget {name}: type {kind!r} is not simulated")
        return step

    def split(self, state, context) -> str:
        value = self.render(state.get("properties", {}).get("input"), context)
        for transition in state.get("transitions") or []:
            if transition.get("event") != "match":
                continue
            tests = transition.get("conditions") or []
            if tests and all(_compare(value, c.get("type"), self.render(c.get("value"), context)) for c in tests):
                return "match"
        return "noMatch"


def gather(props: dict[str, Any], pressed: str) -> str:
    """The digits a gather submits for what the caller pressed (control key excluded)."""
    finish, limit = props.get("finish_on_key", "#"), props.get("number_of_digits")
    digits = ""
    for key in pressed:
        if finish and key == finish:
            break
        digits += key
        if limit and len(digits) >= limit:
            break
    return digits
