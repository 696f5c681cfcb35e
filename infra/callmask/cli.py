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
from fnmatch import fnmatch
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

from callmask import call_simulation, flow_diagram, flow_diff, flow_validation
from callmask.call_transcript import TRIGGER_TEXT, transcript
from callmask.command_flow import (
    PINS_VARIABLE,
    CommandError,
    given_pins,
    known_pins,
    load_file_flow,
    load_flow,
    load_stack_flow,
    pin_check_service,
    stand_in_flow,
)
from callmask.deployed_stack import StackUnreadable
from callmask.flow_gate import FlowRefused
from callmask.flow_graph import mask_pins
from callmask.flow_template import TemplateError, load_template
from callmask.settings import SettingsError
from callmask.stack_config import StackFileError, from_files, is_encrypted


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
    with pin_check_service(flow) as function:
        return simulated(args, flow, call_simulation.CallSimulator(flow.definition, flow.line_number,
                                                                  flow.pins or None, function))


def simulated(args: argparse.Namespace, flow, simulator: call_simulation.CallSimulator) -> int:
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
    print(mask("\n".join(sections), known_pins(args), args.reveal))
    return 0


def diff_against_base(args: argparse.Namespace) -> list[str]:
    """`flow/` (and with --stack, that stack's rendered flow) at GIT_REF against the working tree."""
    with tempfile.TemporaryDirectory() as checkout:
        base_dir = Path(checkout)
        project_dir = args.project_dir
        export_revision(args.base, project_dir, base_dir)
        if args.stack:
            return [stack_diff_against_base(args, project_dir, base_dir)]
        sections = []
        for current in sorted((project_dir / "flow").glob("*.json")):
            relative = current.relative_to(project_dir)
            base_file = base_dir / relative
            old = load_template(base_file) if base_file.exists() else {"states": []}
            changes = flow_diff.compare(old, load_template(current))
            sections.append(flow_diff.markdown(changes, f"Call flow template {relative}: {args.base} → working tree"))
        return sections


def stack_diff_against_base(args: argparse.Namespace, project_dir: Path, base_dir: Path) -> str:
    """The stack's rendered flow at GIT_REF against the working tree's (each from the template its
    pinCheck picks)."""
    new = load_stack_flow(args.stack, args, project_dir)
    had_stack = (base_dir / f"Pulumi.{args.stack}.yaml").exists()
    old = load_stack_flow(args.stack, args, base_dir) if had_stack else None
    changes = flow_diff.compare(old.definition if old else {"states": []}, new.definition, new.pins)
    changes.pins_added = changes.pins_removed = 0  # the same PINs were rendered on both sides
    if encrypted_pins(base_dir, args.stack) != encrypted_pins(project_dir, args.stack):
        changes.notes.append("the stack's encrypted PIN list changed (values not shown)")
    before = f"{old.template} at {args.base}" if old else f"no stack at {args.base}"
    after = "working tree" if old and old.template == new.template else f"{new.template} in the working tree"
    title = f"Call flow for stack `{args.stack}`: {before} → {after}"
    return flow_diff.markdown(changes, title)


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
    audit.add_argument("--outcome", help="only the calls that ended so: refused-pin (PINs keyed wrong), "
                                         "refused-number, no-input, connected, busy, ... (every outcome the table shows)")
    audit.add_argument("--json", action="store_true", help="one object per call")
    audit.add_argument("--project-dir", type=Path, default=None, help=argparse.SUPPRESS)
    permissions = commands.add_parser("account", help="the account's voice dialing permissions against what the "
                                                      "stack's line needs (read-only)")
    permissions.add_argument("--stack", required=True, help="a stack (its credentials as Pulumi takes them)")
    permissions.add_argument("--json", action="store_true", help="machine-readable")
    permissions.add_argument("--project-dir", type=Path, default=None, help=argparse.SUPPRESS)
    ring = commands.add_parser("call", help="ring a stack deployed to the local Twilio: the caller's keypresses "
                                            "played through the deployed line, kept as a call `calls` shows")
    ring.add_argument("--stack", required=True, help="a stack deployed to the local Twilio (callmask local-twilio)")
    ring.add_argument("--from", dest="caller", required=True, metavar="NUMBER", help="the caller's number, E.164")
    ring.add_argument("--press", action="append", dest="presses", metavar="KEYS",
                      help="what the caller presses at the next prompt, e.g. 24681357# (repeat per prompt)")
    ring.add_argument("--dial-status", default="completed", choices=call_simulation.DIAL_STATUSES,
                      help="what the dialed party does (default: answers)")
    ring.add_argument("--hangup", action="store_true", help="the caller hangs up once the presses run out")
    ring.add_argument("--project-dir", type=Path, default=None, help=argparse.SUPPRESS)
    local = commands.add_parser("local-twilio", help="serve a local Twilio on 127.0.0.1 for a stack to deploy to")
    local.add_argument("--port", type=int, default=4010, help="the port to listen on (default 4010; 0: any free port)")
    commands.add_parser("demo", help="deploy the line to a local Twilio, call it and destroy it (make demo)")
    return top


def cmd_calls(args: argparse.Namespace) -> int:
    from callmask.deployed_commands import calls
    flow = stand_in_flow(args)
    print(calls(args, flow.definition, flow.pins, flow.allowed_countries))
    return 0


def cmd_call(args: argparse.Namespace) -> int:
    from callmask.deployed_commands import call
    print(call(args))
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
            "diff": cmd_diff, "calls": cmd_calls, "call": cmd_call, "account": cmd_account, "local-twilio": cmd_local_twilio,
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
