"""Benchmark of the flow toolkit: prints figures, asserts nothing (run: .venv/bin/python tests/bench_flow.py).

Target: at least 2,000 simulated calls per second on one core.
"""

from __future__ import annotations

import os
import time

from callmask.studio.call_simulation import CallSimulator
from callmask.studio.flow_template import load_template, render_flow
from callmask.studio.flow_validation import validate
from callmask.config.settings import parse_settings
from callmask.config.stack_config import from_files

PINS = ["24681357", "86420135"]
CALLS = [  # the mix of calls: happy path, wrong PIN, no input, refused number, busy callee, hang-up
    ([f"{PINS[0]}#", "14155550123#"], "completed", False),
    (["13572468#"], "completed", False),
    ([], "completed", False),
    ([f"{PINS[1]}#", "882161234567#"], "completed", False),
    ([f"{PINS[0]}#", "14155550123#"], "busy", False),
    ([f"{PINS[0]}#"], "completed", True),
]


def best_of(repeats: int, action) -> float:
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        timings.append(time.perf_counter() - start)
    return min(timings)


def large_flow(widgets: int) -> dict:
    """A valid flow of `widgets` widgets: a long menu of gathers and splits, each saying back the
    previous answer (a Liquid reference), with branches that rejoin."""
    states = [{"name": "Trigger", "type": "trigger", "properties": {"offset": {"x": 0, "y": 0}},
               "transitions": [{"event": "incomingCall", "next": "ask_0"}, {"event": "incomingMessage"},
                               {"event": "incomingRequest"}]}]
    steps = (widgets - 2) // 3
    for step in range(steps):
        after = f"ask_{step + 1}" if step + 1 < steps else "bye"
        said = f"You chose {{{{widgets.ask_{step - 1}.Digits}}}}." if step else "Welcome."
        states += [
            {"name": f"ask_{step}", "type": "gather-input-on-call", "properties": {"say": said, "number_of_digits": 1},
             "transitions": [{"event": "keypress", "next": f"menu_{step}"}, {"event": "speech"},
                             {"event": "timeout", "next": after}]},
            {"name": f"menu_{step}", "type": "split-based-on", "properties": {"input": f"{{{{widgets.ask_{step}.Digits}}}}"},
             "transitions": [{"event": "noMatch", "next": after},
                             {"event": "match", "next": f"tell_{step}",
                              "conditions": [{"type": "equal_to", "value": "1", "arguments": ["x"]}]}]},
            {"name": f"tell_{step}", "type": "say-play", "properties": {"say": "Option one."},
             "transitions": [{"event": "audioComplete", "next": after}]},
        ]
    states.append({"name": "bye", "type": "say-play", "properties": {"say": "Bye."},
                   "transitions": [{"event": "audioComplete"}]})
    return {"description": "benchmark", "initial_state": "Trigger", "flags": {}, "states": states}


def main() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    values, _ = from_files("prod")
    values["pins"] = PINS
    settings = parse_settings(values)
    template = load_template()

    def render_and_validate() -> None:
        assert not validate(render_flow(template, settings.flow_values(), settings.pins), settings.pin_length)

    per_render = best_of(5, lambda: [render_and_validate() for _ in range(100)]) / 100
    simulator = CallSimulator(render_flow(template, settings.flow_values(), settings.pins))
    count = 6_000

    def simulate() -> None:
        for index in range(count):
            presses, status, hangup = CALLS[index % len(CALLS)]
            simulator.run(presses, dial_status=status, hangup=hangup)

    per_batch = best_of(3, simulate)
    print(f"render + validate (prod stack): {per_render * 1000:.2f} ms")
    for widgets in (1_000, 10_000):
        flow = large_flow(widgets)
        seconds = best_of(3, lambda: validate(flow))
        print(f"validate a {len(flow['states']):,}-widget flow: {seconds:.2f} s")
    print(f"simulated calls: {count / per_batch:,.0f} calls/s on one core (mix of {len(CALLS)} call paths)")


if __name__ == "__main__":
    main()
