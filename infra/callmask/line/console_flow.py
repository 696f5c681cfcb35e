"""A dial-out line built in the Studio editor, recognised by the roles of its widgets (never their names):
a gather of N digits, a split comparing those digits with a list of PINs, a gather of the number, a Connect
Call To dialling those digits, and the prompts around them. What it finds becomes a stack's settings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from callmask.config.settings import E164, FLOW_OWN_NUMBER, Prompts
from callmask.studio.flow_graph import FlowGraph

PIN_CONDITIONS = ("matches_any_of", "equal_to")


class NotTheLine(ValueError):
    """The flow cannot be read as a PIN-protected dial-out line; one reason per line."""

    def __init__(self, reasons: list[str]):
        self.reasons = reasons
        super().__init__("the flow is not a dial-out line callmask can take over:\n" +
                         "\n".join(f"  - {reason}" for reason in reasons))


@dataclass
class ConsoleLine:
    values: dict[str, Any]  # the stack's callmask:* values (keys without the prefix), PINs aside
    pins: list[str]
    roles: dict[str, str]  # widget name -> what it is in the line
    unmapped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    number_gather: str = ""


def digits_of(widget: str) -> re.Pattern[str]:
    return re.compile(r"\{\{\s*widgets\." + re.escape(widget) + r"\.Digits\s*\}\}")


def recognise(definition: dict[str, Any]) -> ConsoleLine:
    graph = FlowGraph(definition)
    by_name, reasons, roles = graph.by_name, [], {}

    def following(name: str | None, event: str) -> str | None:
        state = by_name.get(name or "")
        return next((t.get("next") for t in (state or {}).get("transitions") or [] if t.get("event") == event), None)

    def of_type(name: str | None, kind: str) -> dict[str, Any] | None:
        state = by_name.get(name or "")
        return state if state and state.get("type") == kind else None

    trigger = next((s for s in graph.states if s.get("type") == "trigger"), None)
    pin_gather = of_type(following(trigger and trigger.get("name"), "incomingCall"), "gather-input-on-call")
    if pin_gather is None:
        raise NotTheLine(["an incoming call does not start with a gather of digits (the PIN prompt)"])
    pin_props = pin_gather.get("properties") or {}
    pin_length = pin_props.get("number_of_digits")
    if not isinstance(pin_length, int) or isinstance(pin_length, bool):
        reasons.append(f"{pin_gather['name']}: the PIN gather has no number_of_digits (how long a PIN is)")
    roles[pin_gather["name"]] = "the PIN gather"

    check = of_type(following(pin_gather["name"], "keypress"), "split-based-on")
    pins, number_name = pin_list(check, pin_gather["name"]) if check else ([], None)
    if check is None or not pins:
        raise NotTheLine(reasons + [f"{pin_gather['name']}'s keypress does not lead to a split comparing its digits "
                                    "with a list of PINs (matches_any_of or equal_to)"])
    roles[check["name"]] = "the PIN check"
    number_gather = of_type(number_name, "gather-input-on-call")
    if number_gather is None:
        raise NotTheLine(reasons + [f"{check['name']}: a matched PIN does not lead to a gather of the number to call"])
    roles[number_gather["name"]] = "the number gather"

    after_number = following(number_gather["name"], "keypress")
    if of_type(after_number, "split-based-on"):  # the Console's own destination check: callmask's replaces it
        roles[after_number] = "a destination check (replaced by callmask's allowedCountries check)"
        invalid_number = following(after_number, "noMatch")
        after_number = next((t.get("next") for t in by_name[after_number].get("transitions") or []
                             if t.get("event") == "match"), None)
    else:
        invalid_number = None
    dial = of_type(after_number, "connect-call-to")
    dial_props = (dial or {}).get("properties") or {}
    if dial is None or not digits_of(number_gather["name"]).search(str(dial_props.get("to", ""))):
        raise NotTheLine(reasons + [f"{number_gather['name']}: the number gathered is not dialled by a Connect Call "
                                    "To widget (noun number, to the gathered digits)"])
    roles[dial["name"]] = "the dial"
    if reasons:
        raise NotTheLine(reasons)

    prompts: dict[str, str] = {"greeting": pin_props.get("say"),
                               "dialPrompt": (number_gather.get("properties") or {}).get("say")}
    for key, name in (("invalidPin", following(check["name"], "noMatch")),
                      ("noInput", following(pin_gather["name"], "timeout")),
                      ("invalidNumber", invalid_number),
                      ("goodbye", following(dial["name"], "callCompleted"))):
        if said := of_type(name, "say-play"):
            prompts[key] = (said.get("properties") or {}).get("say")
            roles[said["name"]] = f"the {key} prompt"
    line = ConsoleLine(values={}, pins=pins, roles=roles, number_gather=number_gather["name"])
    line.values["prompts"] = {key: text for key, text in prompts.items() if isinstance(text, str) and text.strip()}
    for key in sorted(set(Prompts.__dataclass_fields__) - set(line.values["prompts"])):
        line.notes.append(f"prompts.{key}: the flow has none, so callmask's default is used")
    line.values.update(pinLength=pin_length, voice=pin_props.get("voice") or "Polly.Joanna",
                       language=pin_props.get("language") or "en-US")
    line.values.update(bounded("gatherTimeout", pin_props.get("timeout"), 1, 30, 5, line.notes))
    line.values.update(bounded("dialTimeout", dial_props.get("timeout"), 5, 600, 30, line.notes))
    caller_id = str(dial_props.get("caller_id") or FLOW_OWN_NUMBER)
    if E164.fullmatch(caller_id):
        line.values["callerId"] = caller_id
    elif caller_id.replace(" ", "") != FLOW_OWN_NUMBER:
        line.notes.append(f"{dial['name']}: caller ID {caller_id!r} becomes the line's own number (callmask shows "
                          "the line's number, or a fixed callerId)")
    line.unmapped = [str(s.get("name")) for s in graph.states
                     if s.get("type") != "trigger" and str(s.get("name")) not in roles]
    return line


def pin_list(check: dict[str, Any], gather: str) -> tuple[list[str], str | None]:
    """The PINs a split compares the gather's digits with, and where a match goes (every match branch
    must go to one widget)."""
    pins, targets = [], set()
    for transition in check.get("transitions") or []:
        for condition in transition.get("conditions") or []:
            arguments = " ".join(map(str, condition.get("arguments") or [])) + str(
                (check.get("properties") or {}).get("input", ""))
            if condition.get("type") in PIN_CONDITIONS and digits_of(gather).search(arguments):
                pins += [value.strip() for value in str(condition.get("value", "")).split(",") if value.strip()]
                targets.add(transition.get("next"))
    return list(dict.fromkeys(pins)), (targets.pop() if len(targets) == 1 else None)


def bounded(key: str, value: Any, low: int, high: int, default: int, notes: list[str]) -> dict[str, int]:
    """A timeout within callmask's range: the flow's own when it fits, else the nearest bound (said)."""
    number = int(value) if isinstance(value, (int, str)) and str(value).isdigit() else default
    if not low <= number <= high:
        notes.append(f"{key}: the flow's {number} s is outside {low}-{high}, so {min(max(number, low), high)} s")
    return {key: min(max(number, low), high)}
