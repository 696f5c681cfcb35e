"""The one gate a stack's flow passes before `pulumi up` registers anything, and that `callmask validate
--stack` runs too: no PIN in a non-secret value, and every check of `flow_validation` on the rendered
flow (the dial-out rules, PINs only in the PIN check, nothing that reads the PIN back)."""

from __future__ import annotations

from typing import Any

from callmask.config.settings import LineSettings
from callmask.function.pin_function import FUNCTION_PATH
from callmask.studio.flow_graph import mask_pins
from callmask.studio.flow_template import render_flow
from callmask.studio.flow_validation import validate

# Where a flow rendered before its Function exists (the gate, the offline commands) sends the PIN check.
STAND_IN_PIN_CHECK_URL = f"https://callmask-pin-check.twil.io{FUNCTION_PATH}"


class FlowRefused(ValueError):
    """The stack's flow failed the gate; the message has one line per problem, PINs masked."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("The flow cannot be deployed:\n" + "\n".join(f"  - {p}" for p in problems))


def gate_problems(settings: LineSettings, template: dict[str, Any], source: str) -> list[str]:
    """Every reason the stack's flow must not be deployed, PINs masked; empty when it may be."""
    problems = [f"callmask:{key}: contains one of the PINs, and this value is not secret (it shows in previews "
                "and the state); keep PINs only in callmask:pins"
                for key, value in shown_values(settings).items()
                if isinstance(value, str) and any(pin in value for pin in settings.pins)]
    definition = stack_definition(settings, template)
    problems += [problem.line(source) for problem in validate(definition, settings.pin_length, settings.pins)
                 if not problem.warning]
    return [mask_pins(problem, settings.pins) for problem in problems]


def shown_values(settings: LineSettings) -> dict[str, Any]:
    """The stack's values that previews and the state show, by config key: the flow's, and every prompt
    (with pinCheck function the greeting is the Function's)."""
    return {**settings.flow_values(), **{f"prompts.{key}": text for key, text in vars(settings.prompts).items()}}


def check_flow(settings: LineSettings, template: dict[str, Any], source: str) -> None:
    if problems := gate_problems(settings, template, source):
        raise FlowRefused(problems)


def stack_definition(settings: LineSettings, template: dict[str, Any],
                     pin_check_url: str = STAND_IN_PIN_CHECK_URL) -> dict[str, Any]:
    """The stack's flow: with its PINs in the PIN check, or (pinCheck function) with none and the URL of
    the Function that checks them."""
    if settings.checks_pin_in_function:
        return render_flow(template, settings.flow_values(), (), pin_check_url)
    return render_flow(template, settings.flow_values(), settings.pins)
