"""The commands on a flow, offline: render, validate, simulate, diagram and diff (a stack's flow, a flow file,
or with --deployed the revision on Twilio)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from callmask.config.stack_config import StackFileError, from_files, is_encrypted
from callmask.operations.command_flow import (
    PINS_VARIABLE,
    CommandError,
    given_pins,
    known_pins,
    load_file_flow,
    load_flow,
    load_stack_flow,
    pin_check_service,
)
from callmask.studio import call_simulation, flow_diagram, flow_diff, flow_validation
from callmask.studio.call_transcript import transcript
from callmask.studio.flow_graph import mask_pins
from callmask.studio.flow_template import load_template


def mask(text: str, pins: list[str], reveal: bool) -> str:
    return text if reveal else mask_pins(text, pins)


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
    with pin_check_service(flow, args.caller, args.locked) as function:
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
        from callmask.operations.deployed_commands import deployed_diff
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
