"""Walks one execution through a Studio definition the way Studio would, with no phone and no network.

An execution starts at one trigger event (a call, a message, a REST API request, a parent flow) and
follows each widget's event to its `next`; a transition without `next` ends it. Liquid is rendered with
python-liquid plus Studio's `to_json`; splits follow Studio's semantics (match branches in order, the
first that holds wins; trimmed, case-insensitive text; `regex` matches the whole input); gathers stop at
`number_of_digits` or `finish_on_key`. What others decide (a Function, a web server, the callee, a
subflow) takes its first event unless the user picks one. Anything else it cannot play stops the walk
with `CannotSimulate`, naming the widget and why.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time
from typing import Any, Callable

from callmask.studio import twiml_call
from callmask.studio.flow_graph import FlowGraph, listed, split_list
from callmask.studio.widget_library import EXTERNAL_OUTCOME_TYPES, RETIRED_TYPES, TRIGGER_EVENTS, WIDGET_EVENTS

MAX_STEPS = 500
DIAL_STATUSES = ("completed", "answered", "busy", "no-answer", "failed", "canceled")
DEFAULT_CALLER = "+14155550123"
DEFAULT_LINE_NUMBER = "+15005550006"
SIMULATED_ACCOUNT = "AC" + "0" * 32


class SimulationError(Exception):
    """The simulation was asked something impossible (bad input, a flow that loops)."""


class CannotSimulate(SimulationError):
    """The walk reached something the simulator cannot play; `result` holds the steps up to there."""

    def __init__(self, widget: str, reason: str, result: CallResult | None = None):
        super().__init__(f"widget {widget}: {reason}")
        self.result = result


@dataclass(frozen=True)
class CallerInput:
    """What the caller or sender does at the next widget that waits for them."""
    kind: str  # "keys" or "speech" at a gather, "reply" at a send-and-wait-for-reply
    value: str


@dataclass
class Step:
    widget: str
    type: str
    event: str | None
    say: str | None = None
    play: str | None = None
    digits: str | None = None
    speech: str | None = None
    dial: dict[str, str] | None = None
    message: dict[str, str] | None = None
    reply: str | None = None
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None or key == "event"}


@dataclass
class CallResult:
    trigger: str = "incomingCall"
    steps: list[Step] = field(default_factory=list)
    outcome: str = "ended"
    dialed: str | None = None
    unused: list[CallerInput] = field(default_factory=list)  # inputs no widget waited for
    # Where each step went (None: the execution ended there) and the Liquid context at the end, as Studio
    # keeps them for an execution (its Steps and Context).
    next_widgets: list[str | None] = field(default_factory=list, repr=False)
    context: dict[str, Any] = field(default_factory=dict, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {"trigger": self.trigger, "steps": [s.as_dict() for s in self.steps], "outcome": self.outcome,
                "dialed": self.dialed, "unused_inputs": [asdict(given) for given in self.unused]}


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _moment(text: str, kind: str) -> time | date | None:
    formats = ("%H:%M", "%H:%M:%S", "%H%M") if kind == "time" else ("%Y-%m-%d", "%m/%d/%Y", "%Y/%m/%d")
    for layout in formats:
        try:
            parsed = datetime.strptime(text.strip(), layout)
        except ValueError:
            continue
        return parsed.time() if kind == "time" else parsed.date()
    return None


def _ordered(value: str, target: str, kind: str, before: bool) -> bool:
    first, second = _moment(value, kind), _moment(target, kind)
    if first is None or second is None:
        raise ValueError(f"cannot read {value!r} and {target!r} as {kind}s (HH:MM, or YYYY-MM-DD / MM/DD/YYYY)")
    return first < second if before else first > second


def _numeric(value: str, target: str, less: bool) -> bool:
    first, second = _number(value), _number(target)
    if first is None or second is None:
        return False
    return first < second if less else first > second


def compare(value: str, kind: str, target: str) -> bool:
    """One split condition, as Studio evaluates it; ValueError when it cannot be decided offline."""
    raw_value, raw_target = value.strip(), target.strip()
    value, target = raw_value.lower(), raw_target.lower()
    tests: dict[str, Callable[[], bool]] = {
        "equal_to": lambda: value == target,
        "not_equal_to": lambda: value != target,
        "matches_any_of": lambda: value in {item.lower() for item in split_list(target)},
        "does_not_match_any_of": lambda: value not in {item.lower() for item in split_list(target)},
        "is_blank": lambda: value == "",
        "is_not_blank": lambda: value != "",
        "regex": lambda: re.fullmatch(raw_target, raw_value, re.IGNORECASE) is not None,
        "contains": lambda: target in value,
        "does_not_contain": lambda: target not in value,
        "starts_with": lambda: value.startswith(target),
        "does_not_start_with": lambda: not value.startswith(target),
        "less_than": lambda: _numeric(value, target, less=True),
        "greater_than": lambda: _numeric(value, target, less=False),
        "is_before_time": lambda: _ordered(value, target, "time", before=True),
        "is_after_time": lambda: _ordered(value, target, "time", before=False),
        "is_before_date": lambda: _ordered(value, target, "date", before=True),
        "is_after_date": lambda: _ordered(value, target, "date", before=False),
    }
    if kind not in tests:
        raise ValueError(f"split condition {kind!r} is not one of Studio's")
    try:
        return tests[kind]()
    except re.error as error:
        raise ValueError(f"invalid regex {raw_target!r}: {error}") from None


def _set_path(target: dict[str, Any], path: list[str], value: Any) -> None:
    for key in path[:-1]:
        if not isinstance(target.get(key), dict):
            target[key] = {}
        target = target[key]
    target[path[-1]] = value


class CallSimulator:
    """Built once per definition (templates compiled once), then `run` for each execution.

    `pins`: the line's PINs when known; only then is a failed PIN check reported as `rejected_pin` (and a
    failed number check as `rejected_number`): the dial-out roles are never guessed."""

    def __init__(self, definition: dict[str, Any], line_number: str = DEFAULT_LINE_NUMBER,
                 pins: list[str] | tuple[str, ...] | None = None, twiml_service: twiml_call.TwimlService | None = None):
        """`twiml_service`: what answers a TwiML Redirect widget's URL (the line's PIN-check Function);
        without one, the widget takes its first event."""
        self.graph = FlowGraph(definition, pins)
        self.line_number = line_number
        self.twiml_service = twiml_service
        self.liquid = None  # python-liquid loads on the first template: validate and diagram never need it
        self.templates: dict[str, Any] = {}
        self.pin_checks = self.graph.pin_check_names
        self.number_checks = {str(s.get("name")) for s in self.graph.number_checks}

    # ---- Liquid ----
    def render(self, text: Any, context: dict[str, Any], widget: str = "") -> str:
        text = str(text if text is not None else "")
        if "{" not in text:
            return text
        try:
            if text not in self.templates:
                self.templates[text] = self._environment().from_string(text)
            return self.templates[text].render(**context)
        except Exception as error:
            from liquid.exceptions import LiquidError
            if not isinstance(error, LiquidError):
                raise
            raise CannotSimulate(widget, f"Liquid cannot render {text[:80]!r}: "
                                         f"{str(error).splitlines()[0]}") from None

    def _environment(self) -> Any:
        if self.liquid is None:
            from liquid import Environment
            self.liquid = Environment()
            self.liquid.filters["to_json"] = lambda value: json.dumps(value, default=str)
        return self.liquid

    # ---- an execution ----
    def run(self, inputs: list[str | CallerInput], dial_status: str = "completed", hangup: bool = False,
            caller: str = DEFAULT_CALLER, trigger: str | None = None, message: str = "",
            data: dict[str, str] | None = None, outcomes: dict[str, str] | None = None,
            outputs: dict[str, dict[str, Any]] | None = None) -> CallResult:
        """`inputs`: what the caller does at each widget that waits (plain text is keys); `outcomes`: the
        event chosen at a named widget; `outputs`: values a named widget returns (e.g. a Function's
        `parsed`), as nested dicts."""
        if dial_status not in DIAL_STATUSES:
            raise SimulationError(f"dial status {dial_status!r} is not one of {', '.join(DIAL_STATUSES)}")
        self._check_choices(outcomes or {}, outputs or {})
        trigger = self.choose_trigger(trigger)
        result = CallResult(trigger=trigger)
        walk = _Walk(self, [i if isinstance(i, CallerInput) else CallerInput("keys", i) for i in inputs],
                     dial_status, hangup, outcomes or {}, outputs or {}, result)
        walk.context = self.context(trigger, caller, message, data or {})
        try:
            walk.run()
        except CannotSimulate as error:
            error.result = result
            raise
        result.unused = walk.inputs
        result.context = walk.context
        return result

    def wired_triggers(self) -> list[str] | None:
        """The trigger events that lead somewhere (None when the flow does not start at a trigger)."""
        state = self.graph.by_name.get(self.graph.initial) or {}
        if state.get("type") != "trigger":
            return None
        return [str(t.get("event")) for t in listed(state.get("transitions")) if t.get("next")]

    def choose_trigger(self, trigger: str | None) -> str:
        """The given event, else incomingCall when the flow wires it, else the one event it wires."""
        wired = self.wired_triggers()
        if wired is None:
            return trigger or "incomingCall"
        if trigger is None and len(wired) == 1:
            trigger = wired[0]
        if trigger is None and "incomingCall" not in wired:
            raise SimulationError(f"the flow starts on {', '.join(wired) or 'nothing (no trigger event has a next)'}"
                                  + (": choose one with --trigger" if wired else ""))
        trigger = trigger or "incomingCall"
        if trigger not in wired:
            raise SimulationError(f"the flow does not handle {trigger}: its trigger's {trigger} has no next "
                                  f"(it starts on {', '.join(wired) or 'nothing'})")
        return trigger

    def _check_choices(self, outcomes: dict[str, str], outputs: dict[str, Any]) -> None:
        for name in [*outcomes, *outputs]:
            if name not in self.graph.by_name:
                raise SimulationError(f"there is no widget {name!r} in the flow")
        for name, event in outcomes.items():
            state = self.graph.by_name[name]
            if state.get("type") in ("trigger", "split-based-on"):
                raise SimulationError(f"widget {name} is a {state.get('type')}: its event follows from the flow "
                                      "(use --trigger, or the inputs that lead to a branch)")
            known = set(WIDGET_EVENTS.get(str(state.get("type")), ())) | {
                t.get("event") for t in listed(state.get("transitions"))}
            if event not in known:
                raise SimulationError(f"widget {name} has no event {event!r} (it has {', '.join(sorted(known))})")

    def context(self, trigger: str, caller: str, message: str, data: dict[str, str]) -> dict[str, Any]:
        if trigger not in TRIGGER_EVENTS:
            raise SimulationError(f"trigger {trigger!r} is not one of {', '.join(TRIGGER_EVENTS)}")
        sender = {"From": caller, "To": self.line_number}
        details = {
            "incomingCall": {"call": {**sender, "Caller": caller, "Called": self.line_number,
                                      "CallSid": "CA" + "0" * 32, "Direction": "inbound"}},
            "incomingMessage": {"message": {**sender, "Body": message, "MessageSid": "SM" + "0" * 32}},
            "incomingConversationMessage": {"conversation": {"Author": caller, "Body": message,
                                                             "ConversationSid": "CH" + "0" * 32}},
            "incomingRequest": {"request": {**sender, "parameters": dict(data)}},
            "incomingParent": {"parent": {"parameters": dict(data)}},
        }[trigger]
        return {"trigger": details,
                "flow": {"channel": {"address": self.line_number}, "data": dict(data), "variables": {},
                         "flow_sid": "FW" + "0" * 32},
                "contact": {"channel": {"address": caller}}, "widgets": {}}


class _Walk:
    """One execution in progress: the pending inputs, the Liquid context and the steps taken."""

    def __init__(self, simulator: CallSimulator, inputs: list[CallerInput], dial_status: str, hangup: bool,
                 outcomes: dict[str, str], outputs: dict[str, dict[str, Any]], result: CallResult):
        self.simulator, self.graph = simulator, simulator.graph
        self.inputs, self.dial_status, self.hangup = inputs, dial_status, hangup
        self.outcomes, self.outputs, self.result = outcomes, outputs, result
        self.context: dict[str, Any] = {}
        self.ended: str | None = None  # the outcome of a call that ended outside the flow

    def run(self) -> None:
        result = self.result
        current: str | None = self.graph.initial
        while current is not None:
            if len(result.steps) >= MAX_STEPS:
                raise SimulationError(f"the execution did not end after {MAX_STEPS} widgets: the flow loops")
            state = self.graph.by_name.get(current)
            if state is None:
                raise SimulationError(f"the flow moves to {current!r}, which does not exist")
            step, index = self.step(state)
            result.steps.append(step)
            if step.event is None:  # the caller hung up, or the call ended outside the flow
                result.outcome = self.ended or "hangup"
                return
            if step.widget in self.outputs:
                self.context["widgets"].setdefault(step.widget, {}).update(self.outputs[step.widget])
            transitions = [t for t in listed(state.get("transitions")) if isinstance(t, dict)]
            chosen = (transitions[index] if index is not None
                      else next((t for t in transitions if t.get("event") == step.event), {}))
            current = chosen.get("next")
            result.next_widgets.append(current)

    def render(self, text: Any, widget: str) -> str:
        return self.simulator.render(text, self.context, widget)

    def hangs_up(self) -> bool:
        """The caller hangs up where they would otherwise go on waiting, their inputs spent."""
        return self.hangup and not self.inputs

    def next_input(self, widget: str, wanted: tuple[str, ...]) -> CallerInput | None:
        if not self.inputs:
            return None
        if self.inputs[0].kind not in wanted:
            raise SimulationError(f"widget {widget} waits for {' or '.join(wanted)}, but the next input is "
                                  f"{self.inputs[0].kind} {self.inputs[0].value!r}")
        return self.inputs.pop(0)

    def step(self, state: dict[str, Any]) -> tuple[Step, int | None]:
        """The step a widget makes, and (for a split) the index of the transition taken."""
        name, kind = str(state.get("name")), str(state.get("type"))
        props = state.get("properties") if isinstance(state.get("properties"), dict) else {}
        step = Step(name, kind, None)
        if name in self.outcomes:  # never a trigger or a split: run() refuses those
            step.event, step.note = self.outcomes[name], "chosen with --outcome"
            return step, None
        handler = getattr(self, "_" + kind.replace("-", "_"), None)
        if kind == "trigger":
            step.event = self.result.trigger
        elif kind == "split-based-on":
            return self.split(state, step)
        elif handler is not None:
            handler(step, props)
        elif kind in EXTERNAL_OUTCOME_TYPES:
            step.event = WIDGET_EVENTS[kind][0]
            step.note = f"assumed {step.event}; choose another with --outcome {name}=EVENT"
        elif kind in RETIRED_TYPES:
            raise CannotSimulate(name, f"{kind} was retired by Twilio in {RETIRED_TYPES[kind][0]} and no longer runs; "
                                       f"tell the simulator which event to assume with --outcome {name}=EVENT")
        else:
            raise CannotSimulate(name, f"type {kind!r} decides its own event; tell the simulator which with "
                                       f"--outcome {name}=EVENT")
        return step, None

    # ---- widgets that need more than their first event ----
    def _say_play(self, step: Step, props: dict[str, Any]) -> None:
        step.say = self.render(props.get("say"), step.widget) if props.get("say") else None
        step.play = self.render(props.get("play"), step.widget) if props.get("play") else None
        step.event = "audioComplete"

    def _set_variables(self, step: Step, props: dict[str, Any]) -> None:
        variables = props.get("variables")
        for item in variables if isinstance(variables, list) else []:
            if isinstance(item, dict) and item.get("key"):
                value = self.render(item.get("value"), step.widget)
                self.context["flow"]["variables"][str(item["key"])] = value
        step.note = ", ".join(f"{k} = {v!r}" for k, v in self.context["flow"]["variables"].items()) or None
        step.event = "next"

    def _gather_input_on_call(self, step: Step, props: dict[str, Any]) -> None:
        step.say = self.render(props.get("say"), step.widget) if props.get("say") else None
        given = self.next_input(step.widget, ("keys", "speech"))
        if given is None and self.hangup:
            return  # event None: the caller hangs up here
        outputs: dict[str, Any] = {"Digits": "", "SpeechResult": "", "Confidence": ""}
        if given is not None and given.kind == "speech":
            outputs.update(SpeechResult=given.value, Confidence="0.9")
            step.speech, step.event = given.value, "speech"
        else:
            digits = gather(props, given.value if given else "")
            outputs["Digits"] = digits
            step.digits, step.event = digits, "keypress" if digits else "timeout"
            if not digits and self.result.outcome == "ended":
                self.result.outcome = "no_input"
        self.context["widgets"][step.widget] = outputs

    def _connect_call_to(self, step: Step, props: dict[str, Any]) -> None:
        to = self.render(props.get("to"), step.widget)
        caller_id = self.render(props.get("caller_id"), step.widget)
        step.dial = {"to": to, "caller_id": caller_id}
        self.context["widgets"][step.widget] = {"DialCallStatus": self.dial_status}
        step.event = "hangup" if self.hangs_up() else "callCompleted"
        # Studio ends the dial with callCompleted whatever the callee did; DialCallStatus tells.
        answered = self.dial_status in ("completed", "answered")
        self.result.outcome = "connected" if answered else f"callee_{self.dial_status}"
        self.result.dialed = to

    def _send_message(self, step: Step, props: dict[str, Any]) -> None:
        step.message = self._message(step.widget, props)
        step.event = "sent"

    def _send_and_wait_for_reply(self, step: Step, props: dict[str, Any]) -> None:
        step.message = self._message(step.widget, props)
        reply = self.next_input(step.widget, ("reply",))
        if reply is None:
            step.event = "timeout"
            return
        step.reply, step.event = reply.value, "incomingMessage"
        self.context["widgets"][step.widget] = {"inbound": {"Body": reply.value,
                                                            "From": self.context["contact"]["channel"]["address"]}}

    def _message(self, widget: str, props: dict[str, Any]) -> dict[str, str]:
        to = props.get("to") or "{{contact.channel.address}}"
        return {"to": self.render(to, widget), "body": self.render(props.get("body"), widget)}

    def _record_voicemail(self, step: Step, props: dict[str, Any]) -> None:
        step.event = "hangup" if self.hangs_up() else "recordingComplete"
        self.context["widgets"][step.widget] = {"RecordingUrl": "https://api.twilio.com/recording-simulated"}

    def _add_twiml_redirect(self, step: Step, props: dict[str, Any]) -> None:
        service = self.simulator.twiml_service
        if service is None:
            step.event = "return"
            step.note = f"assumed return; choose another with --outcome {step.widget}=EVENT"
            return
        call = self.context["trigger"].get("call", {})
        params = {"AccountSid": SIMULATED_ACCOUNT, "CallSid": call.get("CallSid", ""), "From": call.get("From", ""),
                  "To": call.get("To", ""), "Direction": "inbound"}
        webhook = f"https://webhooks.twilio.com/v1/Accounts/{SIMULATED_ACCOUNT}/Flows/{self.context['flow']['flow_sid']}"

        hung_up = []

        def keys() -> str | None:
            given = self.next_input(step.widget, ("keys",))
            if given is None and self.hangup:
                hung_up.append(True)
            return given.value if given else None

        played = twiml_call.play(service, self.render(props.get("url"), step.widget), params, webhook, keys)
        step.say = " ".join(played.said) or None
        step.digits = played.digits
        if hung_up:
            return  # event None: the caller hangs up at the Function's gather
        if played.returned is None:
            step.note = played.ended
            self.ended = "ended_outside_flow"
            return
        step.event = "return"
        step.note = "returned " + (", ".join(f"{key}={value}" for key, value in played.returned.items()) or "nothing")
        self.context["widgets"][step.widget] = dict(played.returned)
        if played.digits == "" and self.result.outcome == "ended":
            self.result.outcome = "no_input"

    def _capture_payments(self, step: Step, props: dict[str, Any]) -> None:
        step.event = "hangup" if self.hangs_up() else "success"
        step.note = f"assumed the payment succeeded; choose another with --outcome {step.widget}=EVENT"

    def split(self, state: dict[str, Any], step: Step) -> tuple[Step, int | None]:
        props = state.get("properties") if isinstance(state.get("properties"), dict) else {}
        value = self.render(props.get("input"), step.widget)
        for index, transition in enumerate(listed(state.get("transitions"))):
            if not isinstance(transition, dict) or transition.get("event") != "match":
                continue
            tests = [c for c in listed(transition.get("conditions")) if isinstance(c, dict)]
            if tests and all(self._holds(step.widget, value, c) for c in tests):
                step.event = "match"
                names = [str(c.get("friendly_name")) for c in tests if c.get("friendly_name")]
                step.note = ", ".join(names) or None
                return step, index
        step.event = "noMatch"
        if self.result.outcome == "ended":
            if step.widget in self.simulator.pin_checks:
                self.result.outcome = "rejected_pin"
            elif step.widget in self.simulator.number_checks:
                self.result.outcome = "rejected_number"
        return step, None

    def _holds(self, widget: str, value: str, condition: dict[str, Any]) -> bool:
        target = self.render(condition.get("value"), widget)
        try:
            return compare(value, str(condition.get("type")), target)
        except ValueError as error:
            raise CannotSimulate(widget, str(error)) from None


def gather(props: dict[str, Any], pressed: str) -> str:
    """The digits a gather submits for what the caller pressed (control key excluded)."""
    limit = props.get("number_of_digits")
    limit = int(limit) if isinstance(limit, (int, str)) and str(limit).isdigit() else None
    return twiml_call.gathered_digits(pressed, props.get("finish_on_key", "#"), limit)


def nested_output(assignments: list[str]) -> dict[str, dict[str, Any]]:
    """`NAME.key.sub=value` assignments as {NAME: {key: {sub: value}}}; a JSON value is parsed."""
    found: dict[str, dict[str, Any]] = {}
    for assignment in assignments:
        path, separator, text = assignment.partition("=")
        parts = path.split(".")
        if not separator or len(parts) < 2 or not all(parts):
            raise SimulationError(f"--output {assignment!r}: expected WIDGET.KEY=VALUE, e.g. lookup.parsed.open=true")
        try:
            value: Any = json.loads(text)
        except ValueError:
            value = text
        _set_path(found.setdefault(parts[0], {}), parts[1:], value)
    return found
