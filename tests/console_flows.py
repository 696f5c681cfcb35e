"""Dial-out lines as the Studio editor exports them (every event listed, offsets, conditions with friendly
names and arguments), built the way Twilio's articles show: gather a PIN, split on the PINs, gather the
number, Connect Call To, goodbye. Variants change what a user of the editor changes."""

from __future__ import annotations

import copy
from typing import Any

from studio_corpus import ALL_TRIGGER_EVENTS, trigger, widget

CONSOLE_PINS = ["27184926", "73920561"]


def console_line(pin_gather: str = "gather_1", pin_check: str = "split_1", number_gather: str = "gather_2",
                 dial: str = "connect_call_1", pins: list[str] = CONSOLE_PINS, pin_length: int = 8,
                 equal_to: bool = False, goodbye: bool = True, extra: bool = False) -> dict[str, Any]:
    digits = f"{{{{widgets.{pin_gather}.Digits}}}}"
    if equal_to:
        branches = [{"event": "match", "next": number_gather, "conditions": [
            {"friendly_name": f"If value equal_to {pin}", "arguments": [digits], "type": "equal_to", "value": pin}]}
            for pin in pins]
    else:
        branches = [{"event": "match", "next": number_gather, "conditions": [
            {"friendly_name": "Known PIN", "arguments": [digits], "type": "matches_any_of", "value": ",".join(pins)}]}]
    check = {"name": pin_check, "type": "split-based-on", "transitions": [
        {"event": "noMatch", "next": "say_wrong_pin"}, *branches], "properties": {"input": digits,
                                                                                   "offset": {"x": 0, "y": 400}}}
    states = [
        trigger(ALL_TRIGGER_EVENTS, incomingCall=pin_gather),
        widget(pin_gather, "gather-input-on-call", {"keypress": pin_check, "speech": None, "timeout": "say_silence"},
               say="Welcome. Enter your access code, then press pound.", voice="Polly.Amy", language="en-GB",
               timeout=7, number_of_digits=pin_length, finish_on_key="#", stop_gather=True, loop=1,
               speech_timeout="auto", profanity_filter="true", offset={"x": 0, "y": 200}),
        check,
        widget("say_wrong_pin", "say-play", {"audioComplete": None}, say="Wrong code. Goodbye.", voice="Polly.Amy",
               language="en-GB", loop=1, offset={"x": 400, "y": 600}),
        widget("say_silence", "say-play", {"audioComplete": None}, say="We heard nothing. Goodbye.", voice="Polly.Amy",
               language="en-GB", loop=1, offset={"x": 800, "y": 400}),
        widget(number_gather, "gather-input-on-call", {"keypress": dial, "speech": None, "timeout": "say_silence"},
               say="Enter the number to call, then pound.", voice="Polly.Amy", language="en-GB", timeout=7,
               finish_on_key="#", stop_gather=True, loop=1, offset={"x": 0, "y": 600}),
        widget(dial, "connect-call-to", {"callCompleted": "say_bye" if goodbye else None,
                                         "hangup": "say_bye" if goodbye else None},
               noun="number", to=f"+{{{{widgets.{number_gather}.Digits}}}}", caller_id="{{flow.channel.address}}",
               timeout=40, record=False, offset={"x": 0, "y": 800}),
    ]
    if goodbye:
        states.append(widget("say_bye", "say-play", {"audioComplete": None}, say="Thank you. Goodbye.",
                             voice="Polly.Amy", language="en-GB", loop=1, offset={"x": 0, "y": 1000}))
    if extra:  # a step the editor's user added that callmask's flow has no place for
        states[-1 if goodbye else -2]["transitions"][0]["next"] = "log_call"
        states.append(widget("log_call", "make-http-request", {"success": None, "failed": None},
                             method="POST", url="https://log.example.com/calls", content_type="application/json",
                             body="{}", offset={"x": 0, "y": 1200}))
    return {"description": "A New Flow", "states": states, "initial_state": "Trigger",
            "flags": {"allow_concurrent_calls": True}}


VARIANTS = {
    "as the articles build it": {},
    "other widget names": dict(pin_gather="ask_code", pin_check="code_ok", number_gather="ask_dest", dial="dial_out"),
    "equal_to branches": dict(equal_to=True),
    "no goodbye": dict(goodbye=False),
    "a 6-digit PIN": dict(pins=["271849", "739205"], pin_length=6),
    "a PIN that breaks callmask's rules": dict(pins=["27184926", "11111111"]),
    "an extra widget": dict(extra=True),
}


def not_a_line() -> dict[str, Any]:
    """A menu, not a PIN-protected dial-out line."""
    flow = console_line()
    menu = copy.deepcopy(flow["states"][1])
    menu["properties"]["number_of_digits"] = 1
    flow["states"][1] = menu
    flow["states"][2]["transitions"] = [{"event": "noMatch"}]
    return flow
