"""The flow a `callmask` command works on: a stack's (rendered as `pulumi up` would), a flow file, or the
revision deployed on Twilio; and, for a stack whose Function checks the PIN, that Function run under Node
so a simulated call meets the same code Twilio runs."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from callmask.config.settings import E164, LineSettings, list_labels, parse_settings
from callmask.config.stack_config import PROJECT_DIR, from_files, is_encrypted
from callmask.function import pin_function
from callmask.line.flow_gate import gate_problems, stack_definition
from callmask.studio import call_simulation, flow_validation
from callmask.studio.flow_template import flow_file, load_template, placeholders
from callmask.studio.twiml_call import TwimlService

PINS_VARIABLE = "CALLMASK_PINS"
PLACEHOLDER_TEST_USERS = "+1500555"  # Twilio's range of magic test numbers
PLACEHOLDER_ALERT_URL = "https://alert-url.invalid/secret"  # stands in for a secret pinGuard.alertUrl


class CommandError(Exception):
    """Bad input: printed as one message, exit status 1."""


@dataclass
class LoadedFlow:
    definition: dict[str, Any]
    source: str
    pin_length: int | None = None
    line_number: str = call_simulation.DEFAULT_LINE_NUMBER
    pins: list[str] = field(default_factory=list)
    gate: list[str] | None = None  # for a stack: what the deploy's gate says (None for a flow file)
    allowed_countries: tuple[str, ...] = ()
    allowed_number_types: tuple[str, ...] = ()
    settings: LineSettings | None = None  # a stack's
    template: str = ""  # a stack's template, e.g. flow/conference.json


def placeholder_pins(length: int) -> list[str]:
    """Obviously fake, yet valid, PINs for when none are given."""
    return ["135792468013"[:length], "975310864297"[:length]]


def chosen_pins(args: argparse.Namespace, pin_length: int) -> list[str]:
    if given := given_pins(args):
        return given
    announce(args, f"callmask: no PINs given (--pins or {PINS_VARIABLE}); using placeholder PINs, not the stack's.")
    return placeholder_pins(pin_length)


def announce(args: argparse.Namespace, line: str) -> None:
    """A notice about the PINs, said once per command (a diff loads the stack twice)."""
    if not getattr(args, "placeholders_announced", False):
        print(line, file=sys.stderr)
        args.placeholders_announced = True


def stack_secret_pins(args: argparse.Namespace, stack: str, project_dir: Path, encrypted: Any) -> Any:
    """The stack's own PINs, decrypted by the `pulumi` CLI as `pulumi up` decrypts them (a list or a labeled
    map, exactly as the program gets it), when its file holds them encrypted and none were given; else None,
    saying why the placeholders stand in."""
    if given_pins(args) is not None or getattr(args, "placeholders_announced", False) or not is_encrypted(encrypted):
        return None
    if not hasattr(args, "secret_pins"):  # one `pulumi` call per command (a diff loads the stack twice)
        from callmask.operations.deployed_stack import StackUnreadable, read_config
        try:
            args.secret_pins = read_config(stack, project_dir).get("callmask:pins")
        except StackUnreadable as error:
            announce(args, f"callmask: cannot read stack {stack}'s PINs ({error}); using placeholder PINs, not the "
                           f"stack's (or give them with --pins or {PINS_VARIABLE}).")
            return None
    return args.secret_pins


def known_pins(args: argparse.Namespace) -> list[str]:
    """Every PIN the command was given or decrypted, for masking what it prints."""
    secret = getattr(args, "secret_pins", None)
    decrypted = secret.values() if isinstance(secret, dict) else secret if isinstance(secret, list) else []
    return (given_pins(args) or []) + [str(pin) for pin in decrypted]


def stand_in_alert_url(values: dict[str, Any]) -> dict[str, Any]:
    """The values with a secret pinGuard.alertUrl replaced by a stand-in: it is the Function's alone."""
    guard = values.get("pinGuard")
    if isinstance(guard, dict) and is_encrypted(guard.get("alertUrl")):
        values["pinGuard"] = {**guard, "alertUrl": PLACEHOLDER_ALERT_URL}
    return values


def load_stack_flow(stack: str, args: argparse.Namespace, project_dir: Path = PROJECT_DIR,
                    template_file: Path | None = None) -> LoadedFlow:
    """The exact definition `pulumi up` would deploy for a stack (same settings and renderer), with the
    stack's own PINs where the `pulumi` CLI can decrypt them."""
    values, others = from_files(stack, project_dir)
    if (secret := stack_secret_pins(args, stack, project_dir, values.get("pins"))) is not None:
        values["pins"] = secret  # validated below exactly as the program validates it
    else:
        length = str(values.get("pinLength"))
        pins = chosen_pins(args, int(length) if length.isascii() and length.isdigit() and len(length) < 3 else 8)
        labels = list(values["pins"]) if isinstance(values.get("pins"), dict) else []
        values["pins"] = dict(zip(labels, pins)) if len(labels) == len(pins) else pins  # a labeled map keeps its labels
    if isinstance(values.get("testUsers"), list):  # a secret test user stands in as a number that is no one's
        values["testUsers"] = [f"{PLACEHOLDER_TEST_USERS}{index:04d}" if is_encrypted(user) else user
                               for index, user in enumerate(values["testUsers"])]
    settings = parse_settings(stand_in_alert_url(values), others)
    template_path = template_file or project_dir / flow_file(settings.pin_check).relative_to(PROJECT_DIR)
    template = load_template(template_path)
    definition = stack_definition(settings, template)
    line_number = settings.phone_number.number or call_simulation.DEFAULT_LINE_NUMBER
    source = f"{template_path.name} for stack {stack}"
    return LoadedFlow(definition, source, settings.pin_length, line_number, list(settings.pins),
                      gate_problems(settings, template, source), settings.allowed_countries,
                      settings.allowed_number_types, settings, f"flow/{template_path.name}")


def load_file_flow(path: Path, allow_template: bool = False, pins: list[str] | None = None) -> LoadedFlow:
    """A flow file; its PINs are known (and masked) only when the user gives them."""
    definition = load_template(path)
    if placeholders(definition) and not allow_template:
        raise CommandError(f"{path} is a flow template (it has ${{...}} placeholders); "
                           f"render it for a stack with --stack NAME")
    if problems := flow_validation.shape_problems(definition):
        raise CommandError("; ".join(problem.line(str(path)) for problem in problems))
    return LoadedFlow(definition, str(path), pins=pins or [])


def given_pins(args: argparse.Namespace) -> list[str] | None:
    given = args.pins if args.pins is not None else os.environ.get(PINS_VARIABLE)
    return [pin.strip() for pin in given.split(",") if pin.strip()] if given else None


def load_flow(args: argparse.Namespace) -> LoadedFlow:
    if getattr(args, "deployed", None):
        if not args.stack:
            raise CommandError("--deployed reads a stack's flow from Twilio: give --stack NAME")
        from callmask.operations.deployed_commands import deployed_flow
        definition, source, pins, number = deployed_flow(args)
        flow = LoadedFlow(definition, source, pins=list(pins.values()),
                          line_number=number or call_simulation.DEFAULT_LINE_NUMBER)
        flow.settings = deployed_settings(args, pins)
        return flow
    if args.stack:
        return load_stack_flow(args.stack, args, args.project_dir, Path(args.file) if args.file else None)
    if args.file:
        return load_file_flow(Path(args.file), pins=given_pins(args))
    raise CommandError("give --stack NAME (a Pulumi.NAME.yaml) or a flow FILE")


def deployed_settings(args: argparse.Namespace, pins: dict[str, str]) -> LineSettings:
    """The stack's settings with its real PINs (from the `pulumi` CLI): what its Function was deployed with."""
    values, others = from_files(args.stack, args.project_dir)
    values["pins"] = list(pins.values()) if list(pins) == list_labels(len(pins)) else pins
    values.pop("testUsers", None)  # may be secret in the file; not what the Function needs
    values.pop("publish", None)
    return parse_settings(stand_in_alert_url(values), others)


def stand_in_flow(args: argparse.Namespace) -> LoadedFlow:
    """The stack's flow rendered with placeholder PINs, said nothing of: for the commands that read Twilio,
    which need only the widgets' roles and the destinations."""
    args.pins, args.placeholders_announced = None, True
    return load_stack_flow(args.stack, args, args.project_dir)


@contextmanager
def pin_check_service(flow: LoadedFlow, caller: str = call_simulation.DEFAULT_CALLER, locked: bool = False
                      ) -> Iterator[TwimlService | None]:
    """For a stack whose Function checks the PIN: that Function's code with digests of the flow's PINs
    (and a fresh salt), run under Node, answering the flow's TwiML Redirect. Its PIN guard counts in the Sync
    of a local Twilio started for the call; `locked`: `caller` starts out locked. None for any other flow."""
    settings = flow.settings
    if settings is None or not settings.checks_pin_in_function:
        if locked:
            raise CommandError("--locked plays a caller locked out by the PIN guard: it needs a --stack with "
                               "callmask:pinCheck function")
        yield None
        return
    salt = pin_function.new_salt()
    code = pin_function.deployed_code(pin_function.source(), settings.function_values(), settings.labeled_pins(), salt)
    try:
        with tempfile.TemporaryDirectory(prefix="callmask-function-") as scratch, \
                pin_function.LocalFunction(code, Path(scratch)) as function, \
                guard_sync(settings, salt, caller if locked else None) as guard:
            yield function.service({pin_function.SALT_VARIABLE: salt, **guard})
    except pin_function.NodeUnavailable as error:
        raise CommandError(str(error)) from None


@contextmanager
def guard_sync(settings: LineSettings, salt: str, locked_caller: str | None) -> Iterator[dict[str, str]]:
    """The PIN guard's variables, its Sync on a local Twilio for the length of one command (none without
    a guard); `locked_caller` is locked out, as pinGuard.lockMinutes after lockAfter failures would."""
    if not settings.guards_callers:
        if locked_caller:
            raise CommandError("--locked plays a caller locked out by the PIN guard, which is off "
                               "(callmask:pinGuard.enabled false)")
        yield {}
        return
    from callmask.local.twilio import LocalTwilio, SpecsMissing  # the specs load only for a guarded line
    from callmask.operations.call_audit import guarded_caller
    from callmask.twilio.twilio_api import BASE_URL_VARIABLE

    try:
        local = LocalTwilio().start()
    except SpecsMissing as error:
        raise CommandError(f"simulating the PIN guard needs the local Twilio's Sync: {error}") from None
    try:
        variables = local.pin_guard("callmask PIN guard (simulated)")
        if locked_caller:
            caller = locked_caller if E164.fullmatch(locked_caller) else pin_function.ANONYMOUS
            local.lock_caller(variables, pin_function.caller_key(salt, caller), guarded_caller(caller),
                              settings.pin_guard.lock_minutes)
        yield {**variables, BASE_URL_VARIABLE: local.base_url}
    finally:
        local.stop()
