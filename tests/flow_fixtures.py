"""Rendered flows of the committed stacks, as the `callmask` command and `pulumi up` produce them."""

from __future__ import annotations

import atexit
import dataclasses
import copy
import json
import tempfile
from functools import lru_cache
from pathlib import Path

from callmask.function import pin_function
from callmask.studio.call_simulation import CallSimulator
from callmask.studio.twiml_call import TwimlService

from callmask.line.flow_gate import stack_definition
from callmask.studio.flow_template import flow_file, load_template
from callmask.config.settings import LineSettings, PinGuard, parse_settings
from callmask.config.stack_config import from_files
from conftest import TEST_PINS


@lru_cache
def _stack_files(stack: str) -> str:
    return json.dumps(from_files(stack)[0])


def stack_values(stack: str) -> dict:
    """The stack file's callmask values, as the command reads them (read once; a fresh copy each time)."""
    return json.loads(_stack_files(stack))


@lru_cache
def stack_settings(stack: str) -> LineSettings:
    values, _ = from_files(stack)
    values["pins"] = TEST_PINS
    return parse_settings(values)


def rendered(stack: str = "dev") -> dict:
    """The stack's flow as `pulumi up` renders it (a function-mode stack's with the stand-in Function URL)."""
    settings = stack_settings(stack)
    return copy.deepcopy(stack_definition(settings, load_template(flow_file(settings.pin_check))))


def widget(definition: dict, name: str) -> dict:
    return next(state for state in definition["states"] if state["name"] == name)


def transition(definition: dict, name: str, event: str) -> dict:
    return next(t for t in widget(definition, name)["transitions"] if t["event"] == event)


# scrypt at a small cost, for tests that run the Function many times (its real cost: functions/pin-kdf.json,
# tested in tests/test_functions.py).
FAST_KDF = {"N": 1024, "r": 8, "p": 1, "keylen": 32, "maxmem": 16 * 1024 * 1024}


@lru_cache
def pin_check_service(stack: str) -> TwimlService:
    """The stack's PIN-check Function with digests of the test PINs, running under Node for the test run.
    Without its PIN guard's lockouts (each test plays calls of its own; the guard has tests of its own)."""
    settings = dataclasses.replace(stack_settings(stack), pin_guard=PinGuard(enabled=False))
    salt = pin_function.new_salt()
    code = pin_function.deployed_code(pin_function.source(), settings.function_values(), settings.labeled_pins(),
                                      salt, FAST_KDF)
    scratch = tempfile.TemporaryDirectory(prefix="callmask-test-function-")
    function = pin_function.LocalFunction(code, Path(scratch.name))
    atexit.register(scratch.cleanup)  # after the runtimes stop (atexit runs last-registered first)
    atexit.register(function.close)
    return function.service({pin_function.SALT_VARIABLE: salt})


def stack_simulator(stack: str) -> CallSimulator:
    """A simulator of the stack's flow; where its Function checks the PIN, that Function answers."""
    settings = stack_settings(stack)
    service = pin_check_service(stack) if settings.checks_pin_in_function else None
    return CallSimulator(rendered(stack), pins=TEST_PINS, twiml_service=service)
