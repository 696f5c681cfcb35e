"""`callmask`: render, validate, simulate, draw and diff the call flow offline, with no credentials; read a
deployed stack's calls, account and revisions from Twilio.

PIN values are never printed unless --reveal is given (and never by the commands that read Twilio).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from fnmatch import fnmatch
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

from callmask import call_simulation, flow_diagram, flow_diff, flow_validation
from callmask.call_transcript import TRIGGER_TEXT, transcript
from callmask.flow_gate import FlowRefused, gate_problems
from callmask.flow_graph import mask_pins
from callmask.flow_template import (
    DEFAULT_FLOW_FILE,
    TemplateError,
    load_template,
    placeholders,
    render_flow,
)
from callmask.deployed_stack import StackUnreadable
from callmask.settings import SettingsError, parse_settings
from callmask.stack_config import PROJECT_DIR, StackFileError, from_files, is_encrypted

PINS_VARIABLE = "CALLMASK_PINS"
PLACEHOLDER_TEST_USERS = "+1500555"  # Twilio's range of magic test numbers


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


def placeholder_pins(length: int) -> list[str]:
    """Obviously fake, yet valid, PINs for when none are given."""
    return ["135792468013"[:length], "975310864297"[:length]]


def chosen_pins(args: argparse.Namespace, pin_length: int) -> list[str]:
    if given := given_pins(args):
        return given
    if not getattr(args, "placeholders_announced", False):
        print(f"callmask: no PINs given (--pins or {PINS_VARIABLE}); using placeholder PINs, not the stack's.",
              file=sys.stderr)
        args.placeholders_announced = True
    return placeholder_pins(pin_length)


def load_stack_flow(stack: str, args: argparse.Namespace, project_dir: Path = PROJECT_DIR,
                    template_file: Path | None = None) -> LoadedFlow:
    """The exact definition `pulumi up` would deploy for a stack (same settings and renderer)."""
    values, others = from_files(stack, project_dir)
    length = str(values.get("pinLength"))
    values["pins"] = chosen_pins(args, int(length) if length.isascii() and length.isdigit() and len(length) < 3 else 8)
    if isinstance(values.get("testUsers"), list):  # a secret test user stands in as a number that is no one's
        values["testUsers"] = [f"{PLACEHOLDER_TEST_USERS}{index:04d}" if is_encrypted(user) else user
                               for index, user in enumerate(values["testUsers"])]
    settings = parse_settings(values, others)
    template_path = template_file or project_dir / DEFAULT_FLOW_FILE.relative_to(PROJECT_DIR)
    template = load_template(template_path)
    definition = render_flow(template, settings.flow_values(), settings.pins)
    line_number = settings.phone_number.number or call_simulation.DEFAULT_LINE_NUMBER
    source = f"{template_path.name} for stack {stack}"
    return LoadedFlow(definition, source, settings.pin_length, line_number, list(settings.pins),
                      gate_problems(settings, template, source), settings.allowed_countries,
                      settings.allowed_number_types)


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
        from callmask.deployed_commands import deployed_flow
        definition, source, pins, number = deployed_flow(args)
        return LoadedFlow(definition, source, pins=pins, line_number=number or call_simulation.DEFAULT_LINE_NUMBER)
    if args.stack:
        return load_stack_flow(args.stack, args, args.project_dir, Path(args.file) if args.file else None)
    if args.file:
        return load_file_flow(Path(args.file), pins=given_pins(args))
    raise CommandError("give --stack NAME (a Pulumi.NAME.yaml) or a flow FILE")


def mask(text: str, pins: list[str], reveal: bool) -> str:
    return text if reveal else mask_pins(text, pins)


# ---- subcommands ----

def cmd_render(args: argparse.Namespace) -> int:
    flow = load_flow(args)
    print(mask(json.dumps(flow.definition, indent=2, ensure_ascii=False), flow.pins, args.reveal))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    """For a stack, the same gate `pulumi up` passes; for a file, the flow checks."""
    flow = load_flow(args)
    if args.dial_out and flow.gate is None and not flow.pins:
        raise CommandError("--dial-out checks a flow against the line's PINs: give them with --pins or "
                           f"{PINS_VARIABLE}")
    dial_out_pins = flow.pins if args.dial_out else None
    found = flow_validation.validate(flow.definition, flow.pin_length, dial_out_pins)
    errors = flow.gate if flow.gate is not None else [p.line(flow.source) for p in found if not p.warning]
    for line in errors + [p.line(flow.source) for p in found if p.warning]:
        print(mask(line, flow.pins, args.reveal))
    if not errors:
        print(f"{flow.source}: sound ({len(flow.definition['states'])} widgets)")
    return 1 if errors else 0


def cmd_simulate(args: argparse.Namespace) -> int:
    """Exit 0 when the execution ran to its end, 3 when it reached something the simulator cannot play."""
    flow = load_flow(args)
    simulator = call_simulation.CallSimulator(flow.definition, flow.line_number, flow.pins or None)
    try:
        result = simulator.run(args.inputs or [], dial_status=args.dial_status, hangup=args.hangup,
                               caller=args.caller, trigger=args.trigger, message=args.message,
                               data=dict(assignment(item, "--data") for item in args.data or []),
                               outcomes=dict(assignment(item, "--outcome") for item in args.outcome or []),
                               outputs=call_simulation.nested_output(args.output or []))
        stopped = None
    except call_simulation.CannotSimulate as error:
        result, stopped = error.result or call_simulation.CallResult(), str(error)
    report = result.as_dict() | ({"cannot_simulate": stopped} if stopped else {})
    text = json.dumps(report, indent=2, ensure_ascii=False) if args.json else transcript(result, stopped)
    print(mask(text, flow.pins, args.reveal))
    return 3 if stopped else 0


def assignment(text: str, option: str) -> tuple[str, str]:
    key, separator, value = text.partition("=")
    if not separator or not key:
        raise CommandError(f"{option} {text!r}: expected NAME=VALUE")
    return key, value


def cmd_diagram(args: argparse.Namespace) -> int:
    flow = load_flow(args)
    sys.stdout.write(flow_diagram.draw(flow.definition, args.format, flow.pins or None, args.reveal))
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    if args.deployed:
        if not args.stack or args.base or args.files:
            raise CommandError("--deployed compares a stack's draft with its published revision: give --stack NAME "
                               "and no files or --base")
        from callmask.deployed_commands import deployed_diff
        print(deployed_diff(args))
        return 0
    if args.base:
        sections = diff_against_base(args)
    else:
        if len(args.files) != 2:
            raise CommandError("give two flow files (OLD NEW), or --base GIT_REF")
        if args.stack:  # two templates, each rendered with the stack's values
            old, new = (load_stack_flow(args.stack, args, args.project_dir, Path(f)) for f in args.files)
        else:
            old, new = (load_file_flow(Path(f), allow_template=True, pins=given_pins(args)) for f in args.files)
        changes = flow_diff.compare(old.definition, new.definition, new.pins or None)
        sections = [flow_diff.markdown(changes, f"Call flow: {args.files[0]} → {args.files[1]}")]
    print(mask("\n".join(sections), given_pins(args) or [], args.reveal))
    return 0


def diff_against_base(args: argparse.Namespace) -> list[str]:
    """`flow/` (and with --stack, that stack's rendered flow) at GIT_REF against the working tree."""
    with tempfile.TemporaryDirectory() as checkout:
        base_dir = Path(checkout)
        project_dir = args.project_dir
        export_revision(args.base, project_dir, base_dir)
        sections = []
        for current in sorted((project_dir / "flow").glob("*.json")):
            relative = current.relative_to(project_dir)
            base_file = base_dir / relative
            if args.stack:
                new = load_stack_flow(args.stack, args, project_dir, current)
                old = (load_stack_flow(args.stack, args, base_dir, base_file).definition
                       if base_file.exists() and (base_dir / f"Pulumi.{args.stack}.yaml").exists()
                       else {"states": []})
                changes = flow_diff.compare(old, new.definition, new.pins)
                changes.pins_added = changes.pins_removed = 0  # the same PINs were rendered on both sides
                if encrypted_pins(base_dir, args.stack) != encrypted_pins(project_dir, args.stack):
                    changes.notes.append("the stack's encrypted PIN list changed (values not shown)")
                title = f"Call flow for stack `{args.stack}`: {relative} at {args.base} → working tree"
                sections.append(flow_diff.markdown(changes, title))
            else:
                old = load_template(base_file) if base_file.exists() else {"states": []}
                changes = flow_diff.compare(old, load_template(current))
                sections.append(flow_diff.markdown(changes, f"Call flow template {relative}: {args.base} → working tree"))
        return sections


def export_revision(ref: str, project_dir: Path, target: Path) -> None:
    """flow/ and the Pulumi files as they were at `ref`, written under `target`."""
    listed = subprocess.run(["git", "ls-tree", "-r", "--name-only", ref], cwd=project_dir, capture_output=True, text=True)
    if listed.returncode != 0:
        raise CommandError(f"git cannot read {ref!r}: {listed.stderr.strip()}")
    wanted = [path for path in listed.stdout.splitlines()
              if path.startswith("flow/") or fnmatch(path, "Pulumi.yaml") or fnmatch(path, "Pulumi.*.yaml")]
    archive = subprocess.run(["git", "archive", "--format=tar", ref, "--", *wanted],
                             cwd=project_dir, capture_output=True)
    if archive.returncode != 0:
        raise CommandError(f"git cannot export {ref!r}: {archive.stderr.decode().strip()}")
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)


def encrypted_pins(project_dir: Path, stack: str) -> Any:
    try:
        values, _ = from_files(stack, project_dir)
    except StackFileError:
        return None
    return values.get("pins") if is_encrypted(values.get("pins")) else None


# ---- entry point ----

def project_dir_of(start: Path) -> Path:
    """The project the command runs in: the nearest folder with a Pulumi.yaml, as `pulumi` finds it."""
    for folder in (start, *start.parents):
        if (folder / "Pulumi.yaml").exists():
            return folder
    raise CommandError(f"no Pulumi.yaml in {start} or any folder above it: run callmask inside the project "
                       "(or give a rendered flow FILE instead of --stack)")


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--stack", help="stack name: reads Pulumi.NAME.yaml with the defaults in Pulumi.yaml")
    common.add_argument("--pins", help=f"comma-separated PINs to render with (or set {PINS_VARIABLE})")
    common.add_argument("--reveal", action="store_true", help="print PIN values instead of masking them")
    common.add_argument("--project-dir", type=Path, default=None, help=argparse.SUPPRESS)

    top = argparse.ArgumentParser(prog="callmask", description=" ".join(__doc__.split("\n\n")[0].split()))
    top.add_argument("--version", action="version", version=f"callmask {package_version('callmask')}")
    commands = top.add_subparsers(dest="command", required=True)
    render = commands.add_parser("render", parents=[common], help="print the Studio definition a stack deploys")
    validate = commands.add_parser("validate", parents=[common], help="check a flow; exit 1 with one line per problem")
    simulate = commands.add_parser("simulate", parents=[common], help="walk one call through the flow")
    diagram = commands.add_parser("diagram", parents=[common], help="draw the flow (Mermaid or SVG)")
    for sub in (render, validate, simulate, diagram):
        sub.add_argument("file", nargs="?", help="a rendered flow definition (or, with --stack, a template)")
    validate.add_argument("--dial-out", action="store_true",
                          help="also apply the dial-out rules (PIN gate, checked destinations, PINs only in the PIN "
                               "check) to a flow FILE, with the PINs from --pins; a --stack flow always gets them")
    simulate.add_argument("--press", action="append", dest="inputs", metavar="KEYS",
                          type=lambda keys: call_simulation.CallerInput("keys", keys),
                          help="what the caller presses at the next gather, e.g. 24681357# (repeat per gather)")
    simulate.add_argument("--speak", action="append", dest="inputs", metavar="TEXT",
                          type=lambda text: call_simulation.CallerInput("speech", text),
                          help="what the caller says at the next gather instead of pressing keys")
    simulate.add_argument("--reply", action="append", dest="inputs", metavar="TEXT",
                          type=lambda text: call_simulation.CallerInput("reply", text),
                          help="the sender's reply at the next send-and-wait-for-reply (none: it times out)")
    simulate.add_argument("--trigger", choices=TRIGGER_TEXT,
                          help="what starts the execution: incomingCall (the default when the flow wires it), "
                               "incomingMessage, incomingConversationMessage, incomingRequest or incomingParent")
    simulate.add_argument("--message", default="", metavar="TEXT",
                          help="the body of the incoming message (with --trigger incomingMessage)")
    simulate.add_argument("--data", action="append", metavar="KEY=VALUE",
                          help="a flow.data parameter of a REST API request or parent flow (repeat)")
    simulate.add_argument("--caller", default=call_simulation.DEFAULT_CALLER, metavar="NUMBER",
                          help=f"the caller's or sender's number (default {call_simulation.DEFAULT_CALLER})")
    simulate.add_argument("--outcome", action="append", metavar="WIDGET=EVENT",
                          help="the event a widget that others decide ends with, e.g. lookup=fail or "
                               "subflow=failed (default: its first event, such as success)")
    simulate.add_argument("--output", action="append", metavar="WIDGET.KEY=VALUE",
                          help="a value that widget returns, e.g. lookup.parsed.open=true (JSON values parsed)")
    simulate.add_argument("--dial-status", default="completed", choices=call_simulation.DIAL_STATUSES,
                          help="what the dialed party does (Twilio's DialCallStatus): completed (answered, the "
                               "default), busy, no-answer, failed or canceled; the outcome says which")
    simulate.add_argument("--hangup", action="store_true",
                          help="the caller hangs up instead of waiting once the presses run out")
    simulate.add_argument("--json", action="store_true", help="machine-readable steps and outcome")
    diagram.add_argument("--format", choices=("mermaid", "svg"), default="mermaid",
                         help="Mermaid text (renders in GitHub Markdown, the default) or an SVG picture")
    diff = commands.add_parser("diff", parents=[common], help="Markdown review of a flow change")
    diff.add_argument("files", nargs="*", metavar="OLD NEW", help="two flow files (or, with --stack, templates)")
    diff.add_argument("--base", metavar="GIT_REF", help="compare flow/ at GIT_REF with the working tree")
    diff.add_argument("--deployed", action="store_true",
                      help="with --stack: the draft only test users reach against the revision every caller gets, "
                           "read from Twilio with the stack's credentials")
    simulate.add_argument("--deployed", choices=("published", "draft"),
                          help="with --stack: play the flow deployed on Twilio (the published revision, or the latest "
                               "one, which test users get) instead of rendering it")
    audit = commands.add_parser("calls", help="the stack's calls from Twilio: caller, PIN, destination, outcome")
    audit.add_argument("--stack", required=True, help="a deployed stack (its credentials as Pulumi takes them)")
    audit.add_argument("--since", default="24h", help="30m, 24h, 7d, or an ISO date (default 24h)")
    audit.add_argument("--json", action="store_true", help="one object per call")
    audit.add_argument("--project-dir", type=Path, default=None, help=argparse.SUPPRESS)
    permissions = commands.add_parser("account", help="the account's voice dialing permissions against what the "
                                                      "stack's line needs (read-only)")
    permissions.add_argument("--stack", required=True, help="a stack (its credentials as Pulumi takes them)")
    permissions.add_argument("--json", action="store_true", help="machine-readable")
    permissions.add_argument("--project-dir", type=Path, default=None, help=argparse.SUPPRESS)
    local = commands.add_parser("local-twilio", help="serve a local Twilio on 127.0.0.1 for a stack to deploy to")
    local.add_argument("--port", type=int, default=4010, help="the port to listen on (default 4010; 0: any free port)")
    commands.add_parser("demo", help="deploy the line to a local Twilio, call it and destroy it (make demo)")
    return top


def stand_in_flow(args: argparse.Namespace) -> LoadedFlow:
    """The stack's flow rendered with placeholder PINs, said nothing of: for the commands that read Twilio,
    which need only the widgets' roles and the destinations."""
    args.pins, args.placeholders_announced = None, True
    return load_stack_flow(args.stack, args, args.project_dir)


def cmd_calls(args: argparse.Namespace) -> int:
    from callmask.deployed_commands import calls
    flow = stand_in_flow(args)
    print(calls(args, flow.definition, flow.pins, flow.allowed_countries))
    return 0


def cmd_account(args: argparse.Namespace) -> int:
    from callmask.account_report import account
    from callmask.deployed_stack import read_stack
    flow = stand_in_flow(args)
    stack = read_stack(args.stack, args.project_dir)
    print(account(stack, flow.allowed_countries, flow.allowed_number_types, as_text=not args.json))
    return 0


def cmd_local_twilio(args: argparse.Namespace) -> int:
    from callmask import local_twilio  # the spec validator loads only for this command
    try:
        local_twilio.serve(args.port)
    except OSError as error:
        raise CommandError(f"--port {args.port}: cannot listen on 127.0.0.1:{args.port} ({error.strerror}); "
                           "pick another port, or 0 for any free one") from None
    except local_twilio.SpecsMissing as error:
        raise CommandError(str(error)) from None
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from callmask import demo
    return demo.run_demo()


HANDLERS = {"render": cmd_render, "validate": cmd_validate, "simulate": cmd_simulate, "diagram": cmd_diagram,
            "diff": cmd_diff, "calls": cmd_calls, "account": cmd_account, "local-twilio": cmd_local_twilio,
            "demo": cmd_demo}


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        needs_project = getattr(args, "stack", None) or getattr(args, "base", None)
        if needs_project and args.project_dir is None:
            args.project_dir = project_dir_of(Path.cwd())
        return HANDLERS[args.command](args)
    except (CommandError, SettingsError, TemplateError, StackFileError, FlowRefused,
            call_simulation.SimulationError, StackUnreadable) as error:
        print(f"callmask: error: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `callmask render | head`: the reader left, end quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
