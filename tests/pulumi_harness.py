"""Runs the real Pulumi program (infra/__main__.py) under Pulumi mocks, the way the engine would feed it.

Config comes from the committed stack files (Pulumi.yaml defaults applied), turned into the strings the
engine passes; encrypted values are replaced by test values. A recording monitor keeps every
RegisterResource request so options (parent, retainOnDelete, additionalSecretOutputs) can be asserted.
"""

from __future__ import annotations

import asyncio
import json
import runpy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from callmask.config.stack_config import from_files, is_encrypted
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc, settings
from pulumi.runtime.settings import get_root_resource
from callmask.local.twilio import ACCOUNT_SID, AUTH_TOKEN

PROGRAM = Path(__file__).resolve().parents[1] / "infra" / "__main__.py"
WEBHOOK = "https://webhooks.twilio.com/v1/Accounts/{account}/Flows/{sid}"


def engine_value(value: Any) -> str:
    """Config values as the engine hands them to a program: strings, JSON for lists and objects."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def engine_config(stack: str, pins: list[str], **overrides: Any) -> tuple[dict[str, str], list[str]]:
    values, others = from_files(stack)
    values = {key: value for key, value in values.items() if not is_encrypted(value)}
    values.update(pins=pins, **overrides)
    config = {f"callmask:{key}": engine_value(value) for key, value in values.items() if value is not None}
    config.update({key: engine_value(value) for key, value in others.items() if not is_encrypted(value)})
    config.update({"twilio:accountSid": ACCOUNT_SID, "twilio:authToken": AUTH_TOKEN})
    return config, ["callmask:pins", "twilio:authToken"]


class LineMocks(pulumi.runtime.Mocks):
    """Answers for the three Twilio resources, as their providers would after `pulumi up`."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        outputs = dict(args.inputs)
        if args.typ.endswith(":StudioFlow"):
            sid = "FW" + "1" * 32
            outputs.update(sid=sid, webhook_url=WEBHOOK.format(account=ACCOUNT_SID, sid=sid), revision=1, drift="")
            return sid, outputs
        if args.typ.endswith(":ServerlessEnvironment"):
            outputs.update(sid="ZE" + "3" * 32, domain_name=f"callmask-{args.name}-1234.twil.io")
            return outputs["sid"], outputs
        if args.typ.endswith(":PinSalt"):
            outputs.update(salt="c2FsdHNhbHRzYWx0c2FsdA==")
            return args.name + "-id", outputs
        if args.typ.endswith(":PhoneNumber"):
            sid = "PN" + "2" * 32
            outputs.update(sid=sid, phone_number=args.inputs["selection"].get("number", "+14155550100"), purchased=True)
            return sid, outputs
        return args.name + "-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}


@dataclass
class Registration:
    type: str
    name: str
    parent: str
    inputs: dict[str, Any]
    raw_inputs: Any
    retain_on_delete: bool
    protect: bool
    additional_secret_outputs: list[str]
    deleted_with: str = ""
    dependencies: list[str] = field(default_factory=list)
    urn: str = ""


class RecordingMonitor(pulumi_mocks.MockMonitor):
    def __init__(self, mocks: pulumi.runtime.Mocks):
        super().__init__(mocks)
        self.registrations: list[Registration] = []

    def RegisterResource(self, request):
        if request.type != "pulumi:pulumi:Stack":
            self.registrations.append(Registration(
                type=request.type, name=request.name, parent=request.parent,
                inputs=rpc.deserialize_properties(request.object),
                raw_inputs=request.object, retain_on_delete=request.retainOnDelete, protect=request.protect,
                additional_secret_outputs=list(request.additionalSecretOutputs), deleted_with=request.deletedWith,
                dependencies=list(request.dependencies)))
        response = super().RegisterResource(request)
        for registration in self.registrations:  # registrations may answer out of order
            if registration.name == request.name and registration.type == request.type:
                registration.urn = response.urn
        return response


@dataclass
class ProgramRun:
    registrations: list[Registration]
    outputs: dict[str, Any] = field(default_factory=dict)
    error: Exception | None = None

    def resource(self, type_suffix: str) -> Registration:
        return next(r for r in self.registrations if r.type.endswith(type_suffix))


def run_program(stack: str, config: dict[str, str], secret_keys: list[str],
                root_directory: Path | None = None) -> ProgramRun:
    """The program as the engine runs it for `stack`; `root_directory` is the project folder that holds its
    stack file (by default this repository)."""
    ensure_event_loop()
    mocks = LineMocks()
    monitor = RecordingMonitor(mocks)
    settings.ROOT.set(None)  # each run gets its own root stack resource, named for its stack
    pulumi.runtime.set_mocks(mocks, project="callmask", stack=stack, preview=False, monitor=monitor)
    settings.SETTINGS.root_directory = str(root_directory or PROGRAM.parents[1])
    pulumi.runtime.set_all_config(config, secret_keys)
    run = ProgramRun(monitor.registrations)

    @pulumi.runtime.test
    def program():
        runpy.run_path(str(PROGRAM), run_name="__main__")
        exported = get_root_resource().outputs
        return pulumi.Output.all(**exported).apply(run.outputs.update)

    try:
        program()
    except Exception as error:  # the program's own error is what the test asserts on
        run.error = error
    return run


def ensure_event_loop() -> None:
    """Pulumi's mocks run on the thread's event loop; a test that ran `asyncio.run()` before this one on the
    same worker (in whatever order the workers took them) leaves the thread with none."""
    try:
        asyncio.get_event_loop()
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())
