"""Rendered flows of the committed stacks, as the `callmask` command and `pulumi up` produce them."""

from __future__ import annotations

import copy
from functools import lru_cache

from callmask.flow_template import load_template, render_flow
from callmask.settings import LineSettings, parse_settings
from callmask.stack_config import from_files
from conftest import TEST_PINS


@lru_cache
def stack_settings(stack: str) -> LineSettings:
    values, _ = from_files(stack)
    values["pins"] = TEST_PINS
    return parse_settings(values)


def rendered(stack: str = "dev") -> dict:
    settings = stack_settings(stack)
    return copy.deepcopy(render_flow(load_template(), settings.flow_values(), settings.pins))


def widget(definition: dict, name: str) -> dict:
    return next(state for state in definition["states"] if state["name"] == name)


def transition(definition: dict, name: str, event: str) -> dict:
    return next(t for t in widget(definition, name)["transitions"] if t["event"] == event)
